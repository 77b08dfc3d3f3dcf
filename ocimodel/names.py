"""Display names for what ocimodel creates when the caller gives none, in the reference's
style: easy to remember, with a timestamp (``strange-spider-2026-11-29-23:55.02``)."""

from __future__ import annotations

import random
from datetime import datetime

_ADJECTIVES = (
    "amber", "bold", "brisk", "calm", "clever", "crisp", "eager", "fancy", "gentle", "glad",
    "golden", "happy", "humble", "jolly", "keen", "lively", "lucky", "mellow", "merry", "noble",
    "proud", "quick", "quiet", "rapid", "shiny", "silent", "strange", "sunny", "swift", "tidy",
)  # fmt: skip
_ANIMALS = (
    "badger", "beaver", "bison", "crane", "eagle", "falcon", "ferret", "gecko", "heron", "ibis",
    "jaguar", "koala", "lemur", "lynx", "marten", "moose", "otter", "owl", "panda", "puffin",
    "quail", "raven", "salmon", "spider", "stork", "tapir", "tiger", "walrus", "wombat", "yak",
)  # fmt: skip


def generate_display_name(now: datetime | None = None) -> str:
    """``<adjective>-<animal>-<YYYY-MM-DD-HH:MM.SS>``."""
    stamp = (now or datetime.now()).strftime("%Y-%m-%d-%H:%M.%S")
    return f"{random.choice(_ADJECTIVES)}-{random.choice(_ANIMALS)}-{stamp}"
