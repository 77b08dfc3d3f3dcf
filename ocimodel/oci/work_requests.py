"""Waiting on Data Science work requests, with a wall-clock deadline, progress and typed ends.

Long Data Science operations (artifact export/import, model deployment create/update/delete,
model version set delete) answer with an ``opc-work-request-id`` and finish in the background.
:func:`wait_for_work_request` polls that work request, fast at first (0.2 s, doubling up to
``poll_interval``), until it ends:

- SUCCEEDED: the :class:`oci.data_science.models.WorkRequest` is returned;
- FAILED or CANCELED: :class:`WorkRequestFailedError`, carrying the service's errors and the
  last log lines of the work request, and the OCIDs of its resources;
- the deadline passes first: :class:`WorkRequestTimeoutError`. The work request goes on in the
  service; call :func:`wait_for_work_request` again with the same id to keep waiting.

Every status change is logged once (std :mod:`logging`, logger ``ocimodel.oci.work_requests``).
A ``progress`` object (``start(total, description)``, ``advance(n)``, ``finish()``) sees the
work request's percent complete as a total of 100.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterator, Sequence
from typing import Any, Protocol

import oci
import oci.data_science.models as dsm

from ocimodel.errors import OcimodelError
from ocimodel.oci.auth import AuthLike, resolve_auth

__all__ = [
    "DEFAULT_MAX_WAIT_TIME",
    "DEFAULT_POLL_INTERVAL",
    "FIRST_POLL_DELAY",
    "LOG_LINES_KEPT",
    "ProgressLike",
    "WorkRequestArgumentError",
    "WorkRequestFailedError",
    "WorkRequestPollError",
    "WorkRequestTimeoutError",
    "WorkRequestWaitError",
    "backoff_delays",
    "wait_for_work_request",
]

logger = logging.getLogger(__name__)

DEFAULT_MAX_WAIT_TIME = 1200
"""Seconds :func:`wait_for_work_request` waits by default (as the reference's ``max_wait_time``)."""
DEFAULT_POLL_INTERVAL = 10
"""The longest pause between two polls by default (the reference's ``poll_interval``)."""
BACKOFF_FACTOR = 1.25
"""Growth of the pause between polls."""
FIRST_POLL_DELAY = 0.2
"""The first pause between polls; each next pause doubles, up to ``poll_interval``."""
LOG_LINES_KEPT = 10
"""How many of the last log lines of a failed work request its error keeps."""

SUCCEEDED = dsm.WorkRequest.STATUS_SUCCEEDED
FAILED_STATUSES = (dsm.WorkRequest.STATUS_FAILED, dsm.WorkRequest.STATUS_CANCELED)
_ERRORS_SHOWN = 5


class ProgressLike(Protocol):
    """What a ``progress=`` argument provides (a rich bar, a Prefect progress artifact...)."""

    def start(self, total: float, description: str) -> Any: ...

    def advance(self, n: float) -> Any: ...

    def finish(self) -> Any: ...


# --- errors -----------------------------------------------------------------------------------


class _DetailedError(OcimodelError):
    """An error whose details are attributes; it pickles with them (Prefect stores exceptions
    in task states), whatever its ``__init__`` signature."""

    def __reduce__(self) -> tuple:
        return (_rebuild_error, (type(self), self.args, dict(self.__dict__)))


def _rebuild_error(cls: type, args: tuple, state: dict) -> BaseException:
    error = cls.__new__(cls)
    error.args = args
    error.__dict__.update(state)
    return error


class WorkRequestWaitError(_DetailedError):
    """Waiting on a work request did not end in SUCCEEDED.

    Attributes: ``work_request_id``, ``operation_type``, ``last_status`` (the work request's
    status when the wait ended, None if it was never read), ``percent_complete``, ``describe``.
    """

    def __init__(
        self,
        message: str,
        *,
        work_request_id: str,
        operation_type: str | None = None,
        last_status: str | None = None,
        percent_complete: float | None = None,
        describe: str = "",
    ):
        super().__init__(message)
        self.work_request_id = work_request_id
        self.operation_type = operation_type
        self.last_status = last_status
        self.percent_complete = percent_complete
        self.describe = describe


class WorkRequestFailedError(WorkRequestWaitError):
    """The work request ended FAILED or CANCELED.

    Also carries ``resources`` (OCIDs of the resources it worked on), ``errors`` (the service's
    work request errors as ``{"code", "message", "timestamp"}`` dicts) and ``logs`` (its last
    :data:`LOG_LINES_KEPT` log messages).
    """

    def __init__(
        self,
        message: str,
        *,
        resources: Sequence[str] = (),
        errors: Sequence[dict[str, Any]] = (),
        logs: Sequence[str] = (),
        **details: Any,
    ):
        super().__init__(message, **details)
        self.resources = list(resources)
        self.errors = [dict(e) for e in errors]
        self.logs = list(logs)


class WorkRequestTimeoutError(WorkRequestWaitError):
    """The deadline passed before the work request ended; it goes on in the service.

    Also carries ``waited`` (seconds) and ``max_wait_time``. Resume with
    ``wait_for_work_request(auth, err.work_request_id)``.
    """

    def __init__(self, message: str, *, waited: float, max_wait_time: float, **details: Any):
        super().__init__(message, **details)
        self.waited = waited
        self.max_wait_time = max_wait_time


class WorkRequestPollError(WorkRequestWaitError):
    """Reading the work request failed (after the SDK's own retries).

    ``status`` (HTTP) and ``code`` come from the service's answer, so a retry policy can tell a
    transient failure (429, 5xx) from a lasting one (404: no such work request).
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        opc_request_id: str | None = None,
        **details: Any,
    ):
        super().__init__(message, **details)
        self.status = status
        self.code = code
        self.opc_request_id = opc_request_id


class WorkRequestArgumentError(ValueError, OcimodelError):
    """A wait got an argument it cannot use (a non-numeric or non-positive interval...)."""


# --- waiting ----------------------------------------------------------------------------------


def backoff_delays(poll_interval: float, first: float = FIRST_POLL_DELAY) -> Iterator[float]:
    """Pauses between polls: ``first``, a quarter longer each time, never above
    ``poll_interval`` (a copy that takes 2 s is seen within about 0.4 s of its end)."""
    delay = min(first, poll_interval)
    while True:
        yield delay
        delay = min(delay * BACKOFF_FACTOR, poll_interval)


def _check_times(max_wait_time: Any, poll_interval: Any) -> None:
    for name, value in (("max_wait_time", max_wait_time), ("poll_interval", poll_interval)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
            raise WorkRequestArgumentError(f"{name} must be a number of seconds, not {value!r}.")
    if poll_interval <= 0:
        raise WorkRequestArgumentError(
            f"poll_interval must be more than 0 seconds, not {poll_interval!r}; "
            f"the default is {DEFAULT_POLL_INTERVAL}."
        )


def _label(operation_type: str | None, describe: str) -> str:
    return describe or (operation_type or "work request")


def wait_for_work_request(
    auth: AuthLike,
    work_request_id: str,
    *,
    max_wait_time: float = DEFAULT_MAX_WAIT_TIME,
    poll_interval: float = DEFAULT_POLL_INTERVAL,
    progress: ProgressLike | None = None,
    describe: str = "",
) -> dsm.WorkRequest:
    """Poll a Data Science work request until it ends; return it when it SUCCEEDED.

    Args:
        auth: how to reach OCI (an OCIAuth, an ADS auth dict or None for the default).
        work_request_id: the ``opc-work-request-id`` of the operation.
        max_wait_time: the wall-clock deadline in seconds, from the call (negative: none).
        poll_interval: the longest pause between polls; the first pauses are shorter.
        progress: optional; ``start(100, description)`` at the first poll, ``advance(delta)``
            as the percent complete grows, ``finish()`` when the wait ends, however it ends.
        describe: what the work request does, for logs, progress and error messages
            (e.g. ``"export of the artifact of model ocid1..."``).

    Raises:
        WorkRequestFailedError: it ended FAILED or CANCELED.
        WorkRequestTimeoutError: it had not ended when the deadline passed.
        WorkRequestPollError: the work request could not be read.
    """
    _check_times(max_wait_time, poll_interval)
    if not isinstance(work_request_id, str) or not work_request_id.strip():
        raise WorkRequestArgumentError(
            f"work_request_id must be the OCID of a work request (the opc-work-request-id "
            f"header of the operation), not {work_request_id!r}."
        )
    client = resolve_auth(auth).client("data_science")
    started_at = time.monotonic()
    deadline = None if max_wait_time < 0 else started_at + max_wait_time
    delays = backoff_delays(poll_interval)
    last_status: str | None = None
    reported = 0.0
    progress_started = False
    try:
        while True:
            wr = _get_work_request(client, work_request_id, last_status, describe)
            label = _label(wr.operation_type, describe)
            percent = min(100.0, max(0.0, float(wr.percent_complete or 0.0)))
            if wr.status != last_status:
                logger.info(
                    "Work request %s (%s): %s, %.0f%% complete.",
                    work_request_id,
                    label,
                    wr.status,
                    percent,
                )
                last_status = wr.status
            if progress is not None:
                if not progress_started:
                    progress.start(100, label)
                    progress_started = True
                if wr.status == SUCCEEDED:
                    percent = 100.0
                if percent > reported:
                    progress.advance(percent - reported)
                    reported = percent
            if wr.status == SUCCEEDED:
                return wr
            if wr.status in FAILED_STATUSES:
                raise _failed(client, wr, describe)
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                waited = now - started_at
                raise WorkRequestTimeoutError(
                    f"Gave up waiting on work request {work_request_id} ({label}) after "
                    f"{waited:.1f} s (max_wait_time={max_wait_time}): it is still "
                    f"{wr.status} at {percent:.0f}%. It goes on in the service: call "
                    f"wait_for_work_request(auth, {work_request_id!r}) to keep waiting, or "
                    "pass a longer max_wait_time.",
                    work_request_id=work_request_id,
                    operation_type=wr.operation_type,
                    last_status=wr.status,
                    percent_complete=percent,
                    describe=describe,
                    waited=waited,
                    max_wait_time=max_wait_time,
                )
            delay = next(delays)
            if deadline is not None:
                delay = min(delay, max(0.0, deadline - now))
            time.sleep(delay)
    finally:
        if progress is not None and progress_started:
            progress.finish()


def _get_work_request(
    client: Any, work_request_id: str, last_status: str | None, describe: str
) -> dsm.WorkRequest:
    try:
        return client.get_work_request(work_request_id).data
    except oci.exceptions.ServiceError as exc:
        if exc.status == 404:
            fix = (
                "Check the OCID and the region: it must be the opc-work-request-id of an "
                "operation of this tenancy."
            )
        else:
            fix = "The service did not answer after the SDK's retries; wait again later."
        raise WorkRequestPollError(
            f"Could not read work request {work_request_id}"
            f"{f' ({describe})' if describe else ''}: the service answered {exc.status} "
            f"{exc.code}: {exc.message} (opc-request-id {exc.request_id}). {fix}",
            work_request_id=work_request_id,
            last_status=last_status,
            describe=describe,
            status=exc.status,
            code=exc.code,
            opc_request_id=exc.request_id,
        ) from exc


def _failed(client: Any, wr: dsm.WorkRequest, describe: str) -> WorkRequestFailedError:
    """The error of a FAILED/CANCELED work request, with its errors and last log lines."""
    errors: list[dict[str, Any]] = []
    logs: list[str] = []
    unread: list[str] = []
    try:
        for item in oci.pagination.list_call_get_all_results_generator(
            client.list_work_request_errors, "record", wr.id
        ):
            errors.append({"code": item.code, "message": item.message, "timestamp": item.timestamp})
    except oci.exceptions.ServiceError as exc:
        unread.append(f"its errors ({exc.status} {exc.code})")
    try:
        entries = list(
            oci.pagination.list_call_get_all_results_generator(
                client.list_work_request_logs, "record", wr.id
            )
        )
        logs = [entry.message for entry in entries[-LOG_LINES_KEPT:] if entry.message]
    except oci.exceptions.ServiceError as exc:
        unread.append(f"its logs ({exc.status} {exc.code})")
    resources = [r.identifier for r in wr.resources or [] if r.identifier]
    label = _label(wr.operation_type, describe)
    percent = float(wr.percent_complete or 0.0)
    parts = [f"Work request {wr.id} ({label}) ended {wr.status} at {percent:.0f}%"]
    if errors:
        shown = "; ".join(f"{e['code']}: {e['message']}" for e in errors[:_ERRORS_SHOWN])
        more = len(errors) - _ERRORS_SHOWN
        parts.append(f": {shown}{f' (and {more} more)' if more > 0 else ''}")
    elif logs:
        parts.append(f"; its last log line: {logs[-1]}")
    message = "".join(parts) + "."
    if resources:
        message += f" Resources: {', '.join(resources)}."
    if unread:
        message += f" Could not read {' and '.join(unread)}."
    if wr.status == dsm.WorkRequest.STATUS_CANCELED:
        message += " It was canceled; run the operation again if it is still wanted."
    else:
        message += " Fix the cause named above, then run the operation again."
    logger.warning("%s", message)
    return WorkRequestFailedError(
        message,
        work_request_id=wr.id,
        operation_type=wr.operation_type,
        last_status=wr.status,
        percent_complete=percent,
        describe=describe,
        resources=resources,
        errors=errors,
        logs=logs,
    )
