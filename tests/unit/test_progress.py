"""Progress reporting: the protocol, thread safety, the context-var factory and the rich bar."""

from __future__ import annotations

import io
import sys
import threading
import time

import pytest

from ocimodel import progress as progress_mod
from ocimodel.progress import (
    NullProgress,
    Progress,
    RecordingProgress,
    RichProgress,
    default_factory,
    new_progress,
    synchronized,
    use_progress,
)


class Racy:
    """A Progress that loses updates when called from several threads at once."""

    def __init__(self) -> None:
        self.total = None
        self.done = 0
        self.finished = 0

    def start(self, total, description=""):
        self.total = total

    def advance(self, n):
        current = self.done
        time.sleep(0)  # let another thread in between the read and the write
        self.done = current + n

    def finish(self):
        self.finished += 1


class Broken:
    def start(self, total, description=""):
        raise RuntimeError("display gone")

    def advance(self, n):
        raise RuntimeError("display gone")

    def finish(self):
        raise RuntimeError("display gone")


class TTY(io.StringIO):
    def isatty(self) -> bool:
        return True


def advance_from_threads(progress: Progress, threads: int = 8, calls: int = 500) -> None:
    def work() -> None:
        for _ in range(calls):
            progress.advance(1)

    workers = [threading.Thread(target=work) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()


def test_implementations_satisfy_the_protocol():
    for impl in (NullProgress(), RecordingProgress(), RichProgress("x"), synchronized(Racy())):
        assert isinstance(impl, Progress)


def test_null_progress_accepts_everything():
    p = NullProgress()
    p.start(None, "x")
    p.start(10)
    p.advance(5)
    p.finish()
    p.finish()


def test_recording_progress_keeps_every_call():
    p = RecordingProgress()
    p.start(None, "Uploading a.zip")
    p.advance(3)
    p.start(10)
    p.advance(7)
    p.finish()
    assert p.starts == [(None, "Uploading a.zip"), (10, "")]
    assert (p.total, p.description, p.done, p.advances, p.finished) == (
        10,
        "Uploading a.zip",
        10,
        [3, 7],
        True,
    )


def test_synchronized_serializes_a_racy_progress():
    racy = Racy()
    advance_from_threads(synchronized(racy))
    assert racy.done == 8 * 500


def test_synchronized_ignores_calls_after_finish_and_finishes_once():
    racy = Racy()
    p = synchronized(racy)
    p.start(5)
    p.advance(2)
    p.finish()
    p.advance(3)
    p.finish()
    assert (racy.total, racy.done, racy.finished) == (5, 2, 1)


def test_synchronized_never_lets_a_display_error_through():
    p = synchronized(Broken())
    p.start(1)
    p.advance(1)
    p.finish()


def test_synchronized_is_idempotent_and_maps_none_to_null():
    p = synchronized(RecordingProgress())
    assert synchronized(p) is p
    assert isinstance(synchronized(None), NullProgress)


def test_default_factory_is_null_without_a_terminal(monkeypatch):
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    assert isinstance(default_factory("x", 10), NullProgress)
    assert isinstance(new_progress("x", 10), NullProgress)


def test_default_factory_is_rich_on_a_terminal(monkeypatch):
    monkeypatch.setattr(sys, "stderr", TTY())
    assert isinstance(default_factory("x", 10), RichProgress)


def test_default_factory_survives_a_closed_stderr(monkeypatch):
    closed = io.StringIO()
    closed.close()
    monkeypatch.setattr(sys, "stderr", closed)
    assert isinstance(default_factory("x"), NullProgress)


def test_use_progress_installs_a_factory_for_the_block_only():
    made: list[tuple[str, int | None]] = []

    def factory(description, total):
        made.append((description, total))
        return RecordingProgress()

    with use_progress(factory):
        p = new_progress("Uploading model.zip", 42)
        with use_progress(None):  # back to the default inside
            assert isinstance(new_progress("inner"), (NullProgress, RichProgress, type(p)))
    p.advance(1)
    assert made == [("Uploading model.zip", 42)]
    assert isinstance(p.inner, RecordingProgress)
    assert p.inner.done == 1
    assert progress_mod._factory.get() is None


def test_progress_made_in_the_calling_thread_reaches_workers_without_the_context():
    """Pool threads do not inherit context variables: a worker calling new_progress itself
    would get the default; the object made in the calling thread still reports there."""
    recorded = RecordingProgress()
    seen_in_worker: list[object] = []
    with use_progress(lambda d, t: recorded):
        p = new_progress("x", 4000)

        def work() -> None:
            seen_in_worker.append(progress_mod._factory.get())
            for _ in range(1000):
                p.advance(1)

        workers = [threading.Thread(target=work) for _ in range(4)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
    assert recorded.done == 4000
    assert seen_in_worker == [None] * 4


def test_rich_progress_draws_a_bar_and_takes_a_late_total():
    from rich.console import Console

    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=100)
    p = RichProgress("Uploading model.zip", console=console)
    p.start(None)
    p.advance(10)
    p.start(100, "Uploading model.zip (100 B)")
    advance_from_threads(p, threads=3, calls=30)
    assert p._bar.tasks[0].completed == 100
    assert p._bar.tasks[0].total == 100
    p.finish()
    p.finish()
    p.advance(5)  # ignored after finish
    assert p._bar.tasks[0].completed == 100
    assert "Uploading model.zip" in out.getvalue()


def test_rich_is_imported_only_when_a_bar_starts():
    import subprocess

    code = (
        "import sys, ocimodel.progress as p; r = p.RichProgress('x'); "
        "assert 'rich' not in sys.modules, 'imported early'; "
        "print('ok')"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "ok"


@pytest.mark.parametrize("total", [None, 0, 5])
def test_recording_start_accepts_unknown_and_zero_totals(total):
    p = RecordingProgress()
    p.start(total)
    assert p.total == total
