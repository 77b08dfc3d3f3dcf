"""When a failed task attempt is worth retrying: only for transient remote errors.

The oci SDK already retries every remote call itself (8 attempts with backoff, about 93 s
against a service that keeps answering 503), so a task that still fails has outlasted a
long outage. One more Prefect attempt after ~10 s covers a task whose whole attempt broke
(a dropped connection mid-stream); more would only multiply the SDK's wait before failing.
"""

from __future__ import annotations

from typing import Any

from prefect.cache_policies import NO_CACHE

TRANSIENT_HTTP_STATUS = frozenset({408, 429, 500, 502, 503, 504})
TRANSIENT_CONFLICT_CODES = frozenset({"IncorrectState", "LockConflict"})
REMOTE_RETRIES = 1
REMOTE_RETRY_DELAYS = [10]


def is_transient(exc: BaseException | None) -> bool:
    """True for network failures and throttling/5xx answers, looking through wrapped causes.

    A 409 is transient only for a resource busy in another operation (IncorrectState,
    LockConflict), not for a conflict such as an existing name. Wrapping is followed through
    ``__cause__`` and through ``raise ... from None`` (the context it suppresses); an error that
    merely happened while another was being handled is judged on its own.
    """
    seen = 0
    while exc is not None and seen < 10:
        status = getattr(exc, "status", None)
        if isinstance(status, int) and status in TRANSIENT_HTTP_STATUS:
            return True
        if status == 409 and getattr(exc, "code", None) in TRANSIENT_CONFLICT_CODES:
            return True
        if isinstance(exc, (ConnectionError, TimeoutError)):
            return True
        name = type(exc).__name__
        if name in ("RequestException", "ConnectionError", "ConnectTimeout", "ReadTimeout"):
            return True
        exc = exc.__cause__ or (exc.__context__ if exc.__suppress_context__ else None)
        seen += 1
    return False


def retry_on_transient(task: Any, task_run: Any, state: Any) -> bool:
    """Prefect ``retry_condition_fn``: retry only when the failure was transient."""
    try:
        state.result()
    except BaseException as exc:
        return is_transient(exc)
    return False


def retry_unless_waited(task: Any, task_run: Any, state: Any) -> bool:
    """Prefect ``retry_condition_fn`` of tasks that wait on a deployment: retry transient
    failures, never an ended wait (a timeout retried would wait ``max_wait_time`` again; a
    FAILED deployment stays FAILED)."""
    from ocimodel.deploy import DeploymentWaitError  # here: the prepare tasks never need it

    try:
        state.result()
    except BaseException as exc:
        return is_transient(exc) and not isinstance(exc, DeploymentWaitError)
    return False


REMOTE_TASK = dict(
    retries=REMOTE_RETRIES,
    retry_delay_seconds=REMOTE_RETRY_DELAYS,
    retry_condition_fn=retry_on_transient,
    cache_policy=NO_CACHE,
)
"""Options of a task that calls OCI: one retry of a transient failure; never cached (its
inputs hold auth objects and data, and the remote state is what counts)."""
WAITING_TASK = {**REMOTE_TASK, "retry_condition_fn": retry_unless_waited}
"""Options of a task that waits on a deployment: as REMOTE_TASK, never retrying an ended wait."""
