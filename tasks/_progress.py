"""Progress of long core operations shown in the Prefect UI as a progress artifact.

The core reports through :mod:`ocimodel.progress`; inside a task, :func:`progress_artifacts`
installs a factory whose Progress keeps a Prefect progress artifact up to date. Workers of an
upload call ``advance`` from their own threads, which do not see the task's Prefect context, so
every update runs in the context captured when the Progress was made (calls are serialized by
``ocimodel.progress``, so that context is never entered twice at once).
"""

from __future__ import annotations

import contextlib
import contextvars
import re
import time
from collections.abc import Iterator
from uuid import UUID

from prefect.artifacts import create_progress_artifact, update_progress_artifact
from prefect.logging import get_run_logger

from ocimodel.progress import Progress, use_progress

MIN_UPDATE_SECONDS = 0.5
"""At most about two updates a second; the first and the last are always sent."""


def artifact_key(text: str) -> str:
    """A Prefect artifact key (lowercase letters, digits and dashes) made from ``text``."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:100] or "progress"


class ArtifactProgress:
    """A Progress shown as a Prefect progress artifact (percent of the total)."""

    def __init__(self, description: str, total: int | None, key: str):
        self.description, self.total, self.key = description, total, key
        self.done = 0
        self.artifact_id: UUID | None = None
        self._sent_at = 0.0
        self._finished = False
        self._context = contextvars.copy_context()

    def _percent(self) -> float:
        if not self.total:
            return 0.0
        return min(100.0, 100.0 * self.done / self.total)

    def _send(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._sent_at < MIN_UPDATE_SECONDS:
            return
        self._sent_at = now
        try:
            if self.artifact_id is None:
                self.artifact_id = self._context.run(
                    create_progress_artifact,
                    progress=self._percent(),
                    key=self.key,
                    description=self.description,
                )
            else:
                self._context.run(update_progress_artifact, self.artifact_id, self._percent())
        except Exception as exc:  # progress must never fail the operation it reports on
            self._context.run(_warn, f"Progress artifact {self.key} not updated: {exc}")

    def start(self, total: int | None, description: str = "") -> None:
        if total is not None:
            self.total = total
        self.description = description or self.description
        self._send(force=self.artifact_id is None)

    def advance(self, n: int) -> None:
        self.done += n
        self._send()

    def finish(self) -> None:
        if self._finished:
            return
        self._finished = True
        if self.total is None or self.done >= (self.total or 0):
            self.total = self.total or self.done or 1
            self.done = max(self.done, self.total)
        self._send(force=True)


def _warn(message: str) -> None:
    with contextlib.suppress(Exception):
        get_run_logger().warning("%s", message)


@contextlib.contextmanager
def progress_artifacts(key: str) -> Iterator[None]:
    """Within the block, each core operation's progress is a Prefect progress artifact under
    ``key`` (one key per kind of work, such as ``model-upload``, so the UI keeps its history)."""

    def factory(description: str, total: int | None = None) -> Progress:
        return ArtifactProgress(description, total, artifact_key(key))

    with use_progress(factory):
        yield
