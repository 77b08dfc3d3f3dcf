"""Progress of long operations (uploads, downloads, waits) without a UI library in the core.

A long operation reports through one small protocol, :class:`Progress`::

    progress = new_progress("Uploading model.zip", total=size)   # in the calling thread
    progress.start(size, "Uploading model.zip")
    ...  progress.advance(n)  ...                                  # from any thread
    progress.finish()

Who shows it is chosen by a factory in a context variable, so the core never knows: by default
a ``rich`` bar on stderr when stderr is a terminal, else nothing. A caller installs another
factory for a block of code with :func:`use_progress` (the Prefect task layer installs one that
updates a progress artifact)::

    with use_progress(lambda description, total: MyProgress(description)):
        upload_file(...)

Context variables are not inherited by threads a pool started earlier, so an operation creates
its Progress once, in the calling thread (:func:`new_progress`), and hands the object to its
workers. Every object :func:`new_progress` returns is thread-safe: its calls are serialized by a
lock, whatever the factory built.

Semantics every implementation follows:

- ``start(total, description)`` begins (or re-labels) the bar. ``total`` may be None while it
  is unknown (a file still being written); a later ``start`` with the total sets it and keeps
  the amount already advanced.
- ``advance(n)`` adds ``n`` units (bytes) done.
- ``finish()`` ends it; calls after ``finish`` are ignored. It is safe to call twice.
"""

from __future__ import annotations

import contextlib
import contextvars
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any, Protocol, runtime_checkable

__all__ = [
    "NullProgress",
    "Progress",
    "ProgressFactory",
    "RecordingProgress",
    "RichProgress",
    "default_factory",
    "new_progress",
    "synchronized",
    "use_progress",
]


@runtime_checkable
class Progress(Protocol):
    """What a long operation reports to. Implementations must tolerate calls from worker
    threads (or be wrapped with :func:`synchronized`)."""

    def start(self, total: int | None, description: str = "") -> None:
        """Begin, or update the total and description; ``total`` None: not known yet."""

    def advance(self, n: int) -> None:
        """``n`` more units (bytes) are done."""

    def finish(self) -> None:
        """The operation ended (done or failed); later calls are ignored."""


ProgressFactory = Callable[[str, "int | None"], Progress]
"""Builds the Progress of one operation from its description and total (None: unknown)."""


class NullProgress:
    """Reports nothing."""

    def start(self, total: int | None, description: str = "") -> None:
        pass

    def advance(self, n: int) -> None:
        pass

    def finish(self) -> None:
        pass

    def __repr__(self) -> str:
        return "NullProgress()"


class RecordingProgress:
    """Remembers every call (for tests and for callers that poll): ``total``, ``description``,
    ``done`` (the sum of advances), ``advances`` (each ``n``), ``starts`` and ``finished``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.total: int | None = None
        self.description = ""
        self.done = 0
        self.advances: list[int] = []
        self.starts: list[tuple[int | None, str]] = []
        self.finished = False

    def start(self, total: int | None, description: str = "") -> None:
        with self._lock:
            self.starts.append((total, description))
            self.total = total
            if description:
                self.description = description

    def advance(self, n: int) -> None:
        with self._lock:
            self.advances.append(n)
            self.done += n

    def finish(self) -> None:
        with self._lock:
            self.finished = True

    def __repr__(self) -> str:
        return (
            f"RecordingProgress(description={self.description!r}, done={self.done}, "
            f"total={self.total}, finished={self.finished})"
        )


class RichProgress:
    """A ``rich`` progress bar (bytes, speed, time left) on stderr; rich is imported only
    when the bar starts."""

    def __init__(self, description: str = "", *, console: Any = None, transient: bool = False):
        self._lock = threading.Lock()
        self._description = description
        self._console = console
        self._transient = transient
        self._bar: Any = None
        self._task: Any = None
        self._finished = False

    def start(self, total: int | None, description: str = "") -> None:
        with self._lock:
            if self._finished:
                return
            if description:
                self._description = description
            if self._bar is None:
                from rich.console import Console
                from rich.progress import (
                    BarColumn,
                    DownloadColumn,
                    TextColumn,
                    TimeRemainingColumn,
                    TransferSpeedColumn,
                )
                from rich.progress import Progress as _RichBar

                console = self._console or Console(stderr=True)
                self._bar = _RichBar(
                    TextColumn("{task.description}"),
                    BarColumn(),
                    DownloadColumn(),
                    TransferSpeedColumn(),
                    TimeRemainingColumn(),
                    console=console,
                    transient=self._transient,
                )
                self._bar.start()
                self._task = self._bar.add_task(self._description, total=total)
            else:
                self._bar.update(self._task, total=total, description=self._description)

    def advance(self, n: int) -> None:
        with self._lock:
            if self._bar is not None and not self._finished:
                self._bar.advance(self._task, n)

    def finish(self) -> None:
        with self._lock:
            if self._finished:
                return
            self._finished = True
            if self._bar is not None:
                self._bar.stop()

    def __repr__(self) -> str:
        return f"RichProgress({self._description!r})"


class _Synchronized:
    """Serializes the calls of a Progress that may not be thread-safe; ignores calls after
    finish and never lets an exception of the display reach the operation."""

    __slots__ = ("_finished", "_lock", "inner")

    def __init__(self, inner: Progress) -> None:
        self.inner = inner
        self._lock = threading.Lock()
        self._finished = False

    def _call(self, name: str, *args: Any) -> None:
        with self._lock:
            if self._finished:
                return
            if name == "finish":
                self._finished = True
            with contextlib.suppress(Exception):  # a broken display must not fail an upload
                getattr(self.inner, name)(*args)

    def start(self, total: int | None, description: str = "") -> None:
        self._call("start", total, description)

    def advance(self, n: int) -> None:
        self._call("advance", n)

    def finish(self) -> None:
        self._call("finish")

    def __repr__(self) -> str:
        return f"synchronized({self.inner!r})"


def synchronized(progress: Progress | None) -> Progress:
    """``progress`` made safe to call from several threads (NullProgress for None); a Progress
    already wrapped is returned as is."""
    if progress is None:
        return NullProgress()
    if isinstance(progress, (_Synchronized, NullProgress)):
        return progress
    return _Synchronized(progress)


def _stderr_is_terminal() -> bool:
    try:
        return bool(sys.stderr and sys.stderr.isatty())
    except (AttributeError, ValueError):  # replaced or closed stderr
        return False


def default_factory(description: str, total: int | None = None) -> Progress:
    """A rich bar when stderr is a terminal, else a NullProgress."""
    if _stderr_is_terminal():
        return RichProgress(description)
    return NullProgress()


_factory: contextvars.ContextVar[ProgressFactory | None] = contextvars.ContextVar(
    "ocimodel_progress_factory", default=None
)


@contextlib.contextmanager
def use_progress(factory: ProgressFactory | None) -> Iterator[None]:
    """Within the block, :func:`new_progress` builds with ``factory`` (None: the default).
    Context-local: other threads and tasks keep theirs."""
    token = _factory.set(factory)
    try:
        yield
    finally:
        _factory.reset(token)


def new_progress(description: str, total: int | None = None) -> Progress:
    """The thread-safe Progress of one operation, built by the factory of the current context
    (see :func:`use_progress`). Call it in the thread that starts the operation and hand the
    object to its workers. It is not started: the operation calls ``start``."""
    factory = _factory.get() or default_factory
    return synchronized(factory(description, total))
