"""Background jobs behind Data Science work requests.

A long operation creates a work request, records what to do in it, and runs in a thread that
moves it ACCEPTED -> IN_PROGRESS -> SUCCEEDED/FAILED, so the SDK's waiters really wait. Jobs left
unfinished when the service stopped are run again when it starts. Tests can close a gate to hold
every job in ACCEPTED until they open it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from .core import OCIError
from .state import PENDING_STATUSES, WORK_REQUEST, ServiceState

Job = Callable[[ServiceState, str, str, dict], None]  # (state, tenancy, wr_id, params)

_JOBS: dict[str, Job] = {}


def job(kind: str) -> Callable[[Job], Job]:
    """Register a job function under ``kind`` (so a restarted service can resume it)."""

    def deco(fn: Job) -> Job:
        _JOBS[kind] = fn
        return fn

    return deco


@dataclass
class _Runner:
    gate: threading.Event = field(default_factory=threading.Event)
    threads: set[threading.Thread] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)
    start_delay: float = 0.1

    def __post_init__(self) -> None:
        self.gate.set()


def _runner(state: ServiceState) -> _Runner:
    runner = state.extras.get("datascience_jobs")
    if runner is None:
        runner = state.extras.setdefault("datascience_jobs", _Runner())
    return runner


def work_gate(state: ServiceState) -> threading.Event:
    """The gate jobs wait on before starting: ``clear()`` holds them, ``set()`` releases them."""
    return _runner(state).gate


def submit(state: ServiceState, tenancy: str, wr_id: str, kind: str, params: dict) -> None:
    """Record the job in its work request and start it in the background."""

    def remember(doc: dict) -> None:
        doc["_job"] = {"kind": kind, "tenancy": tenancy, "params": params}

    state.store.modify(WORK_REQUEST, wr_id, remember)
    _start(state, tenancy, wr_id, kind, params)


def _start(state: ServiceState, tenancy: str, wr_id: str, kind: str, params: dict) -> None:
    runner = _runner(state)
    thread = threading.Thread(
        target=_run,
        args=(state, tenancy, wr_id, kind, params),
        name=f"ds-job-{kind}",
        daemon=True,
    )
    with runner.lock:
        runner.threads.add(thread)
    thread.start()


def _run(state: ServiceState, tenancy: str, wr_id: str, kind: str, params: dict) -> None:
    runner = _runner(state)
    wrs = state.work_requests
    try:
        # A short pause keeps the request ACCEPTED for the caller's first poll.
        time.sleep(runner.start_delay)
        while not runner.gate.wait(0.05):
            if state.extras.get("datascience_jobs_stopping"):
                return
        wrs.progress(wr_id, 0.0, f"{kind} started.")
        _JOBS[kind](state, tenancy, wr_id, params)
        wrs.succeed(wr_id, f"{kind} succeeded.")
    except OCIError as exc:
        _fail_quietly(state, wr_id, exc.code, exc.message)
    except Exception as exc:
        _fail_quietly(state, wr_id, "InternalError", f"{type(exc).__name__}: {exc}")
    finally:
        with runner.lock:
            runner.threads.discard(threading.current_thread())


def _fail_quietly(state: ServiceState, wr_id: str, code: str, message: str) -> None:
    try:
        state.work_requests.fail(wr_id, code, message)
    except Exception:
        pass


def resume_pending(state: ServiceState) -> None:
    """Start again every job whose work request was unfinished when the service stopped."""
    state.extras.pop("datascience_jobs_stopping", None)
    for doc in state.store.list(WORK_REQUEST, None):
        spec = doc.get("_job")
        if spec and doc.get("status") in PENDING_STATUSES and spec.get("kind") in _JOBS:
            _start(state, spec["tenancy"], doc["id"], spec["kind"], spec["params"])


def stop_all(state: ServiceState, timeout: float = 10.0) -> None:
    """Let running jobs finish (up to ``timeout`` seconds) before the service stops."""
    runner = _runner(state)
    state.extras["datascience_jobs_stopping"] = True
    runner.gate.set()
    deadline = time.monotonic() + timeout
    with runner.lock:
        threads = list(runner.threads)
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))


def install(state: ServiceState) -> None:
    """Hook job resume/stop into the service's startup and shutdown."""
    state.extras.setdefault("startup", []).append(lambda *_: resume_pending(state))
    state.extras.setdefault("shutdown", []).append(lambda *_: stop_all(state))
