"""Removal of blobs nothing refers to any more, when the service starts.

Blobs are shared by sha256 between Object Storage objects and model artifacts, so a blob may go
only when no object and no model holds it. Deletes and overwrites leave their blob behind; the
sweep runs at startup, before any request or background job can take a new reference to a blob
it is about to remove.
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

from .datascience_common import MODEL
from .objectstorage_db import ensure_tables
from .state import ServiceState

log = logging.getLogger("ocimodel.local")


def referenced_blobs(state: ServiceState) -> set[str]:
    """The sha256 of every blob an object or a model artifact refers to."""
    ensure_tables(state)
    objects = state.store.execute("SELECT DISTINCT sha256 FROM os_objects")
    artifacts = state.store.execute(
        "SELECT DISTINCT json_extract(data, '$._artifact.sha256') FROM resources "
        "WHERE kind=? AND json_extract(data, '$._artifact.sha256') IS NOT NULL",
        (MODEL,),
    )
    return {row[0] for row in objects} | {row[0] for row in artifacts}


def remove_unreferenced_blobs(state: ServiceState) -> tuple[int, int]:
    """Delete blobs no object or artifact refers to, and leftover partial bodies.

    Returns (files removed, bytes freed). Only safe while no request is being served.
    """
    keep = referenced_blobs(state)
    root = state.blobs.root
    removed = freed = 0
    for shard in root.iterdir():
        if not shard.is_dir():
            continue
        if shard.name == "tmp":
            for leftover in shard.iterdir():
                removed, freed = _remove(leftover, removed, freed)
            continue
        for blob in shard.iterdir():
            if blob.name not in keep:
                removed, freed = _remove(blob, removed, freed)
    if removed:
        log.info("removed %d unreferenced blob file(s), %d bytes", removed, freed)
    return removed, freed


def _remove(path: Path, removed: int, freed: int) -> tuple[int, int]:
    try:
        size = path.stat().st_size
        if path.is_dir():
            shutil.rmtree(path)
        else:
            os.unlink(path)
    except OSError:
        return removed, freed
    return removed + 1, freed + size


def install(state: ServiceState) -> None:
    """Sweep unreferenced blobs as the first startup hook of the service."""
    state.extras.setdefault("startup", []).insert(0, lambda: remove_unreferenced_blobs(state))
