"""The deploy stage: a saved model in, a live model deployment (an HTTPS endpoint) out.

:func:`deploy_model` checks everything it can before creating anything (the settings, that the
model exists and holds an artifact), then creates the deployment and waits for it to be
ACTIVE. It is idempotent: the deployment carries a freeform tag ``ocimodel-deploy-id`` (a
digest of the model and the complete settings) and is created with a retry token derived from
it, so a re-run finds the deployment an earlier attempt created and waits for it instead of
creating another: CREATING is awaited, ACTIVE is returned, FAILED raises (or, with
``replace_failed=True``, is deleted and created again).

:func:`wait_for_active` waits with a wall-clock deadline. Each read spends one request of a
budget of one a second since the wait began (so a wait of any length averages at most one
request a second), and the pauses start at 0.2 s and grow 25% each time towards
``poll_interval``. Most reads are of the deployment, whose state ends the wait, so a
deployment that turns ACTIVE is noticed within about a second at first, while a long wait
costs little; every fourth read is of the work request (its percent complete, and an operation
that failed), and its log lines are read when its status changes, every few seconds while it
progresses, and once more at the end when the budget allows. Each state change and each new
log line is logged once (std :mod:`logging`, logger ``ocimodel.deploy``); a progress bar
(:mod:`ocimodel.progress`) shows the work request's percent complete. It ends with:

- the deployment, once ACTIVE;
- :class:`DeploymentFailedError` when it ends FAILED, carrying the deployment OCID, its last
  state and the work request's errors and log lines (e.g. a ``score.py`` traceback);
- :class:`DeploymentTimeoutError` at the deadline, carrying the OCID and the last state: the
  service goes on, and calling :func:`wait_for_active` (or :func:`deploy_model`) again resumes.

:func:`update_deployment`, :func:`restart_deployment` and :func:`delete_deployment` manage a
deployment afterwards, each waited the same way.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import json
import logging
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any

import oci.data_science.models as dsm

from ocimodel.oci import catalog
from ocimodel.oci import deployment as md
from ocimodel.oci.deployment import (
    DeploymentError,
    DeploymentInputError,
    DeploymentNotFoundError,
)
from ocimodel.progress import Progress, new_progress, synchronized

if TYPE_CHECKING:
    from ocimodel.oci.auth import AuthLike

__all__ = [
    "DEFAULT_MAX_WAIT_TIME",
    "DEFAULT_POLL_INTERVAL",
    "DEPLOY_TAG",
    "DeploySpec",
    "DeployedModel",
    "DeploymentError",
    "DeploymentFailedError",
    "DeploymentInputError",
    "DeploymentNotFoundError",
    "DeploymentStateError",
    "DeploymentTimeoutError",
    "DeploymentWaitError",
    "ModelNotSavedError",
    "activate_deployment",
    "deactivate_deployment",
    "delete_deployment",
    "deploy_identity",
    "deploy_model",
    "restart_deployment",
    "update_deployment",
    "wait_for_active",
    "wait_for_state",
]

_log = logging.getLogger(__name__)

DEPLOY_TAG = "ocimodel-deploy-id"
"""Freeform tag on every deployment ocimodel creates: which model and settings made it."""
DEFAULT_MAX_WAIT_TIME = 1200
DEFAULT_POLL_INTERVAL = 10
FIRST_POLL_DELAY = 0.2
"""The first pause between two reads of a wait."""
BACKOFF_FACTOR = 1.25
"""Each next pause is this much longer, up to ``poll_interval``."""
REQUESTS_PER_SECOND = 1.0
"""The most requests a wait makes per second on average."""
WR_EVERY = 4
"""A wait reads the work request every this many reads (the deployment the others)."""
LOG_EVERY = 10.0
"""Seconds between two reads of the work request's log lines while it only progresses."""
LOG_LINES_KEPT = 20
"""Log lines of the work request a DeploymentFailedError keeps."""
_ERRORS_SHOWN = 5
_ERROR_TEXT_LIMIT = 4000

MD = dsm.ModelDeployment
ACTIVE = MD.LIFECYCLE_STATE_ACTIVE
CREATING = MD.LIFECYCLE_STATE_CREATING
UPDATING = MD.LIFECYCLE_STATE_UPDATING
INACTIVE = MD.LIFECYCLE_STATE_INACTIVE
FAILED = MD.LIFECYCLE_STATE_FAILED
DELETING = MD.LIFECYCLE_STATE_DELETING
DELETED = MD.LIFECYCLE_STATE_DELETED
NEEDS_ATTENTION = MD.LIFECYCLE_STATE_NEEDS_ATTENTION
_CHANGING = frozenset({CREATING, UPDATING, DELETING, NEEDS_ATTENTION})
"""States a deployment leaves on its own."""
_SETTLED = frozenset({ACTIVE, INACTIVE, FAILED, DELETED, NEEDS_ATTENTION})
WR_ACCEPTED = dsm.WorkRequest.STATUS_ACCEPTED
WR_SUCCEEDED = dsm.WorkRequest.STATUS_SUCCEEDED
WR_ENDED_BADLY = frozenset({dsm.WorkRequest.STATUS_FAILED, dsm.WorkRequest.STATUS_CANCELED})


# --- errors -----------------------------------------------------------------------------------


class ModelNotSavedError(DeploymentInputError):
    """The model to deploy is not in the catalog, not ACTIVE, or holds no artifact yet.
    ``model_id`` names it; nothing was created."""

    def __init__(self, message: str, *, model_id: str | None = None):
        super().__init__(message)
        self.model_id = model_id


class DeploymentStateError(DeploymentError):
    """The deployment is in a state the operation cannot use (``state``): an update of a
    FAILED deployment, a wait for ACTIVE on an INACTIVE one..."""

    def __init__(self, message: str, *, deployment_id: str, state: str | None, **details: Any):
        details.setdefault("operation", "model_deployment")
        super().__init__(message, resource_id=deployment_id, **details)
        self.state = state


class DeploymentWaitError(DeploymentError):
    """A wait on a deployment did not end in the awaited state.

    Attributes: ``deployment_id``, ``last_state`` (the deployment's state when the wait ended,
    None if never read), ``work_request_id`` (the work request waited on, if known)."""

    def __init__(
        self,
        message: str,
        *,
        deployment_id: str,
        last_state: str | None,
        work_request_id: str | None = None,
        **details: Any,
    ):
        details.setdefault("operation", "wait_for_active")
        super().__init__(message, resource_id=deployment_id, **details)
        self.last_state = last_state
        self.work_request_id = work_request_id


class DeploymentFailedError(DeploymentWaitError):
    """The deployment (or the operation on it) ended FAILED; it is never returned as a success.

    Also carries ``errors`` (the work request's errors as ``{"code", "message"}`` dicts: the
    service's explanation, e.g. a score.py traceback), ``logs`` (its last log lines) and
    ``lifecycle_details``."""

    def __init__(
        self,
        message: str,
        *,
        errors: Sequence[Mapping[str, Any]] = (),
        logs: Sequence[str] = (),
        lifecycle_details: str | None = None,
        **details: Any,
    ):
        super().__init__(message, **details)
        self.errors = [dict(e) for e in errors]
        self.logs = list(logs)
        self.lifecycle_details = lifecycle_details


class DeploymentTimeoutError(DeploymentWaitError, TimeoutError):
    """The deadline passed first; the service goes on. ``waited`` and ``max_wait_time`` are in
    seconds. Resume with ``wait_for_active(auth, err.deployment_id)`` (or deploy again)."""

    def __init__(self, message: str, *, waited: float, max_wait_time: float, **details: Any):
        super().__init__(message, **details)
        self.waited = waited
        self.max_wait_time = max_wait_time


# --- the spec ---------------------------------------------------------------------------------


def _frozen(value: Any) -> Any:
    """Lists as tuples (so a spec stays immutable); other values as given."""
    if isinstance(value, list):
        return tuple(value)
    return value


@dataclass(frozen=True, repr=False)
class DeploySpec:
    """Every setting of a deployment, by the reference's names; None means "from the model
    properties, the environment or the default" (see :meth:`resolve`).

    The container runtime is chosen by ``deployment_image`` (with ``image_digest``, ``cmd``,
    ``entrypoint``, ``server_port``, ``health_check_port``); else the conda runtime.
    Autoscaling is ``autoscaling_policy`` (a dict in the shape of the SDK's ScalingPolicy) or
    ``autoscaling_min_instances``/``autoscaling_max_instances`` with an optional
    ``autoscaling_cpu_threshold`` (%), instead of ``deployment_instance_count``.
    ``compartment_id`` and ``project_id`` default to the model's."""

    display_name: str | None = None
    description: str | None = None
    deployment_instance_shape: str | None = None
    deployment_ocpus: float | None = None
    deployment_memory_in_gbs: float | None = None
    deployment_instance_count: int | None = None
    deployment_bandwidth_mbps: int | None = None
    deployment_instance_subnet_id: str | None = None
    deployment_instance_private_endpoint_id: str | None = None
    deployment_log_group_id: str | None = None
    deployment_access_log_id: str | None = None
    deployment_predict_log_id: str | None = None
    deployment_image: str | None = None
    image_digest: str | None = None
    cmd: Sequence[str] | None = None
    entrypoint: Sequence[str] | None = None
    server_port: int | None = None
    health_check_port: int | None = None
    environment_variables: Mapping[str, str] | None = None
    deployment_mode: str | None = None
    input_stream_ids: Sequence[str] | None = None
    output_stream_ids: Sequence[str] | None = None
    autoscaling_policy: Any = None
    autoscaling_min_instances: int | None = None
    autoscaling_max_instances: int | None = None
    autoscaling_cpu_threshold: int | None = None
    freeform_tags: Mapping[str, str] | None = None
    defined_tags: Mapping[str, Mapping[str, Any]] | None = None
    compartment_id: str | None = None
    project_id: str | None = None

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, list):
                object.__setattr__(self, f.name, _frozen(value))

    @classmethod
    def of(cls, **options: Any) -> DeploySpec:
        """A spec from keyword options; an unknown option is a DeploymentInputError naming the
        closest known one (wait options such as max_wait_time go to deploy_model)."""
        names = [f.name for f in fields(cls)]
        unknown = [k for k in options if k not in names]
        if unknown:
            hints = []
            for name in unknown:
                close = difflib.get_close_matches(name, names, n=1)
                hints.append(f"{name!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
            raise DeploymentInputError(
                f"Unknown deployment option(s) {', '.join(hints)}. Deployment options are "
                f"{', '.join(names)}; pass wait_for_completion, max_wait_time and "
                "poll_interval to deploy_model itself."
            )
        return cls(**options)

    def to_dict(self) -> dict[str, Any]:
        """The set options (None left out), lists as lists."""
        out = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if value is None:
                continue
            out[f.name] = list(value) if isinstance(value, tuple) else value
        return out

    def resolve(self, properties: Any = None) -> DeploySpec:
        """The complete spec: each unset option from ``properties`` (a ModelProperties or a
        dict of its fields), then from the environment (the variables
        ``ModelProperties.with_env`` reads: DEPLOYMENT_INSTANCE_SHAPE...,
        PROJECT_COMPARTMENT_OCID, PROJECT_OCID...), then the reference's default
        (:func:`ocimodel.oci.deployment.with_defaults`). An autoscaled spec takes no instance
        count from them."""
        from ocimodel.properties import ModelProperties

        props = ModelProperties()
        if properties is not None:
            given = properties.to_dict() if hasattr(properties, "to_dict") else properties
            props.with_dict(given)
        props.with_env()
        autoscaled = self.autoscaling_policy is not None or any(
            getattr(self, n) is not None
            for n in ("autoscaling_min_instances", "autoscaling_max_instances")
        )
        values = self.to_dict()
        for name in _PROPERTY_FIELDS:
            if name == "deployment_instance_count" and autoscaled:
                continue
            if values.get(name) is None and getattr(props, name, None) is not None:
                values[name] = getattr(props, name)
        complete = md.with_defaults(values)
        return dataclasses.replace(
            DeploySpec(), **{k: v for k, v in complete.items() if v is not None}
        )

    def details(self, **more: Any) -> dict[str, Any]:
        """The flat deployment spec (:data:`ocimodel.oci.deployment.DEPLOYMENT_FIELDS`) of
        this spec, with ``more`` (model_id...) added."""
        return {**self.to_dict(), **{k: v for k, v in more.items() if v is not None}}

    def __repr__(self) -> str:
        parts = []
        for name, value in self.to_dict().items():
            if name == "environment_variables" and isinstance(value, Mapping):
                value = {k: "<redacted>" for k in value}
            parts.append(f"{name}={value!r}")
        return f"DeploySpec({', '.join(parts)})"

    __str__ = __repr__


_PROPERTY_FIELDS = tuple(
    name
    for name in (f.name for f in fields(DeploySpec))
    if name.startswith("deployment_") or name in ("compartment_id", "project_id")
)
"""Options ModelProperties also holds (the deployment_* fields, compartment and project)."""

_missing = set(md.DEPLOYMENT_FIELDS) - {f.name for f in fields(DeploySpec)} - {"model_id"}
if _missing:  # pragma: no cover - the two lists are kept in step
    raise ImportError(f"DeploySpec lacks deployment fields {sorted(_missing)}")


@dataclass(frozen=True)
class DeployedModel:
    """A deployment of a model: its OCID, endpoint URL (``predict`` is ``url + "/predict"``),
    lifecycle state, whether this call created it, and the SDK's ModelDeployment."""

    id: str
    url: str | None
    state: str
    created: bool
    deployment: Any = dataclasses.field(default=None, repr=False, compare=False)

    @classmethod
    def of(cls, deployment: Any, created: bool) -> DeployedModel:
        return cls(
            deployment.id,
            deployment.model_deployment_url,
            deployment.lifecycle_state,
            created,
            deployment,
        )


# --- waiting ----------------------------------------------------------------------------------


def _check_times(max_wait_time: Any, poll_interval: Any) -> None:
    for name, value in (("max_wait_time", max_wait_time), ("poll_interval", poll_interval)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
            raise DeploymentInputError(f"{name} must be a number of seconds, not {value!r}.")
    if poll_interval <= 0:
        raise DeploymentInputError(
            f"poll_interval must be more than 0 seconds, not {poll_interval!r}; the default is "
            f"{DEFAULT_POLL_INTERVAL}."
        )


class _Pacer:
    """When to read next: pauses growing from FIRST_POLL_DELAY by BACKOFF_FACTOR up to
    ``poll_interval``, and never ahead of the request budget: the n-th request of a wait goes
    out no sooner than n seconds after its start, so a wait of any length makes at most one
    request a second on average."""

    def __init__(self, poll_interval: float, deadline: float | None):
        self.started = time.monotonic()
        self.deadline = deadline
        self.poll_interval = poll_interval
        self.delay = min(FIRST_POLL_DELAY, poll_interval)
        self.requests = 0

    def count(self, n: int = 1) -> None:
        self.requests += n

    def expired(self) -> bool:
        return self.deadline is not None and time.monotonic() >= self.deadline

    def affords(self, n: int = 1) -> bool:
        """Whether ``n`` more requests now stay within the budget."""
        spent = self.requests + n
        return spent <= (time.monotonic() - self.started) * REQUESTS_PER_SECOND

    def sleep(self) -> None:
        now = time.monotonic()
        budget = self.started + (self.requests + 1) / REQUESTS_PER_SECOND
        wake = max(now + self.delay, budget)
        if self.deadline is not None:
            wake = min(wake, self.deadline)
        self.delay = min(self.delay * BACKOFF_FACTOR, self.poll_interval)
        if wake > now:
            time.sleep(wake - now)


class _Watch:
    """What a wait has seen: states and log lines (each logged once) and the progress bar."""

    def __init__(self, deployment_id: str, describe: str, progress: Progress):
        self.deployment_id = deployment_id
        self.describe = describe
        self.progress = progress
        self.state: str | None = None
        self.wr_status: str | None = None
        self.percent = 0.0
        self.reported = 0
        self.seen: set[tuple[str, str]] = set()
        self.lines: list[str] = []

    def deployment(self, state: str) -> None:
        if state != self.state:
            _log.info("Model deployment %s is %s.", self.deployment_id, state)
            self.state = state

    def work_request(self, wr: Any) -> bool:
        """Record a read of the work request; True when its status or percent changed."""
        percent = min(100.0, max(0.0, float(wr.percent_complete or 0.0)))
        if wr.status == WR_SUCCEEDED:
            percent = 100.0
        changed = wr.status != self.wr_status or percent != self.percent
        if wr.status != self.wr_status:
            _log.info(
                "Work request %s (%s of %s): %s, %.0f%% complete.",
                wr.id,
                wr.operation_type,
                self.deployment_id,
                wr.status,
                percent,
            )
            self.wr_status = wr.status
        self.percent = percent
        self.advance(percent)
        return changed

    def advance(self, percent: float) -> None:
        whole = int(percent)
        if whole > self.reported:
            self.progress.advance(whole - self.reported)
            self.reported = whole

    def log_lines(self, entries: Sequence[Any]) -> None:
        for entry in entries:
            message = entry.message or ""
            key = (str(entry.timestamp), message)
            if key in self.seen or not message:
                continue
            self.seen.add(key)
            self.lines.append(message)
            _log.info("Work request log of %s: %s", self.deployment_id, message)


def wait_for_active(
    auth: AuthLike,
    deployment_id: str,
    *,
    work_request_id: str | None = None,
    max_wait_time: float = DEFAULT_MAX_WAIT_TIME,
    poll_interval: float = DEFAULT_POLL_INTERVAL,
    progress: Progress | None = None,
) -> dsm.ModelDeployment:
    """Wait until the deployment is ACTIVE and return it (see the module docstring).

    Args:
        auth: how to reach OCI (an OCIAuth, an ADS auth dict or None for the default).
        deployment_id: the deployment's OCID.
        work_request_id: the operation's ``opc-work-request-id``; without it, the latest
            work request on the deployment is looked up while it is changing.
        max_wait_time: the wall-clock deadline in seconds (negative: none).
        poll_interval: the longest pause between two reads.
        progress: a :class:`ocimodel.progress.Progress` (default: the current context's).

    Raises:
        DeploymentFailedError: it ended FAILED (errors and logs attached).
        DeploymentTimeoutError: it was not ACTIVE at the deadline (it may still get there).
        DeploymentStateError: it settled in another state (INACTIVE, DELETED...).
    """
    return wait_for_state(
        auth,
        deployment_id,
        frozenset({ACTIVE}),
        work_request_id=work_request_id,
        max_wait_time=max_wait_time,
        poll_interval=poll_interval,
        progress=progress,
    )


def wait_for_state(
    auth: AuthLike,
    deployment_id: str,
    targets: frozenset[str] | set[str],
    *,
    work_request_id: str | None = None,
    max_wait_time: float = DEFAULT_MAX_WAIT_TIME,
    poll_interval: float = DEFAULT_POLL_INTERVAL,
    progress: Progress | None = None,
    describe: str | None = None,
    starts_from: str | None = None,
) -> dsm.ModelDeployment | None:
    """Wait until the deployment's state is one of ``targets`` (DELETED: None is returned when
    the deployment is gone). With ``work_request_id``, a target state counts once the
    deployment was seen changing or the work request ended (it may be the state the operation
    starts from), unless ``starts_from``, the state the operation began in, is no target. See
    :func:`wait_for_active` for the arguments and errors."""
    _check_times(max_wait_time, poll_interval)
    if not isinstance(deployment_id, str) or not deployment_id.strip():
        raise DeploymentInputError(
            f"deployment_id must be the OCID of a model deployment, not {deployment_id!r}."
        )
    targets = frozenset(targets)
    awaited = " or ".join(sorted(targets))
    describe = describe or f"Waiting for model deployment {deployment_id} to be {awaited}"
    started = time.monotonic()
    deadline = None if max_wait_time < 0 else started + max_wait_time
    wr_id = work_request_id
    pacer = _Pacer(poll_interval, deadline)
    bar = synchronized(progress) if progress is not None else new_progress(describe, 100)
    bar.start(100, describe)
    watch = _Watch(deployment_id, describe, bar)
    poll = _Poll(
        auth,
        deployment_id,
        wr_id,
        pacer,
        watch,
        changing=starts_from is not None and starts_from not in targets,
    )
    # A wait on a deployment as it is (no operation given) reads it at once, ahead of the
    # budget; a new operation's first step takes a moment, so its first read waits for it.
    poll.first = wr_id is None
    deployment: Any = None
    try:
        while True:
            if not poll.first:
                if pacer.expired() and pacer.requests:
                    raise _timed_out(
                        auth,
                        deployment_id,
                        deployment,
                        poll.wr_id,
                        watch,
                        started,
                        max_wait_time,
                        targets,
                    )
                pacer.sleep()
            poll.first = False
            if poll.work_request_due():
                wr = poll.read_work_request()
                if wr.status in WR_ENDED_BADLY:
                    deployment = _read(auth, deployment_id, pacer, watch)
                    raise _failed(auth, deployment_id, deployment, poll.wr_id, watch, wr.status)
                continue
            if poll.logs_due():
                poll.read_logs()
                continue
            deployment = _read(auth, deployment_id, pacer, watch)
            state = deployment.lifecycle_state if deployment is not None else DELETED
            if state in targets and poll.confirmed():
                poll.last_logs()
                watch.advance(100.0)
                return deployment
            if state in targets:  # maybe the state the operation starts from: ask its request
                wr = poll.read_work_request()
                if wr.status == WR_SUCCEEDED:
                    poll.last_logs()
                    watch.advance(100.0)
                    return deployment
                if wr.status in WR_ENDED_BADLY:
                    raise _failed(auth, deployment_id, deployment, poll.wr_id, watch, wr.status)
                continue
            poll.changing = True
            if deployment is None:
                raise DeploymentNotFoundError(
                    f"Model deployment {deployment_id} does not exist (any more) while "
                    f"waiting for it to be {awaited}. Check the OCID and the region.",
                    operation="get_model_deployment",
                    status=404,
                    code="NotAuthorizedOrNotFound",
                    resource_id=deployment_id,
                )
            if state == FAILED:
                raise _failed(auth, deployment_id, deployment, poll.wr_id, watch, None)
            gone = state == DELETING and DELETED not in targets
            if state not in _CHANGING or gone:
                raise DeploymentStateError(
                    f"Model deployment {deployment_id} is {state}, not {awaited}, and will "
                    f"not change on its own: {_fix_for(state, targets, deployment_id)}",
                    deployment_id=deployment_id,
                    state=state,
                    operation="wait_for_state",
                )
            if poll.wr_id is None and state != NEEDS_ATTENTION:
                poll.look_up(deployment.compartment_id)
    finally:
        bar.finish()
        _log.debug(
            "Waited %.1f s on model deployment %s with %d requests.",
            time.monotonic() - started,
            deployment_id,
            pacer.requests,
        )


class _Poll:
    """Which read a wait makes next, one per turn of the request budget: mostly the deployment
    (whose state ends the wait, so ACTIVE is seen within a turn), the work request every
    WR_EVERY turns (its progress, and an operation that failed), and its log lines when its
    status changed or, while it progresses, every LOG_EVERY seconds."""

    def __init__(
        self,
        auth: AuthLike,
        deployment_id: str,
        wr_id: str | None,
        pacer: _Pacer,
        watch: _Watch,
        changing: bool = False,
    ):
        self.auth = auth
        self.deployment_id = deployment_id
        self.wr_id = wr_id
        self.pacer = pacer
        self.watch = watch
        self.first = False
        self.turns = 0
        self.wr_turn = 0  # the deployment first: its state ends the wait
        self.wr_status: str | None = None
        self.logs_pending = False
        self.logs_read_at = time.monotonic()
        self.looked_up = wr_id is not None
        self.changing = changing

    @property
    def wr_open(self) -> bool:
        return self.wr_id is not None and self.wr_status not in (WR_SUCCEEDED, *WR_ENDED_BADLY)

    def work_request_due(self) -> bool:
        self.turns += 1
        return self.wr_open and self.turns - self.wr_turn >= WR_EVERY

    def read_work_request(self) -> Any:
        wr = md.get_work_request(self.auth, self.wr_id)
        self.pacer.count()
        self.wr_turn = self.turns
        changed = self.watch.work_request(wr)
        if changed and time.monotonic() - self.logs_read_at >= LOG_EVERY:
            self.logs_pending = True
        self.wr_status = wr.status
        return wr

    def logs_due(self) -> bool:
        """Log lines to read now; once the work request ended, the deployment's state comes
        first and the last lines are read at the end (:meth:`last_logs`)."""
        return self.logs_pending and self.wr_open

    def read_logs(self) -> None:
        self.watch.log_lines(md.work_request_logs(self.auth, self.wr_id))
        self.pacer.count()
        self.logs_pending = False
        self.logs_read_at = time.monotonic()

    def confirmed(self) -> bool:
        """A target state counts once the deployment was seen changing, or its operation's
        work request ended; before that it may be the state the operation starts from."""
        return self.changing or not self.wr_open

    def last_logs(self) -> None:
        """The work request's last log lines, when the budget has room for one more read."""
        if self.wr_id is not None and self.pacer.affords():
            self.read_logs()

    def look_up(self, compartment_id: str) -> None:
        """The latest work request on the deployment, once, when no operation was given."""
        if self.looked_up:
            return
        self.looked_up = True
        summary = md.latest_work_request(self.auth, compartment_id, self.deployment_id)
        self.pacer.count()
        if summary is not None and summary.status not in (WR_SUCCEEDED, *WR_ENDED_BADLY):
            self.wr_id = summary.id


def _read(auth: AuthLike, deployment_id: str, pacer: _Pacer, watch: _Watch) -> Any:
    """The deployment, or None when it is gone (404)."""
    pacer.count()
    try:
        deployment = md.get_model_deployment(auth, deployment_id)
    except DeploymentNotFoundError:
        watch.deployment(DELETED)
        return None
    watch.deployment(deployment.lifecycle_state)
    return deployment


def _fix_for(state: str, targets: frozenset[str], deployment_id: str) -> str:
    if state == INACTIVE and ACTIVE in targets:
        return f"activate it (activate_deployment(auth, {deployment_id!r}))."
    if state in (DELETED, DELETING):
        return "deploy the model again."
    return "check it in the console."


def _failed(
    auth: AuthLike,
    deployment_id: str,
    deployment: Any,
    wr_id: str | None,
    watch: _Watch,
    wr_status: str | None,
) -> DeploymentFailedError:
    """The error of a FAILED deployment (or failed work request), with the service's errors
    and the work request's log lines."""
    unread = []
    if wr_id is None and deployment is not None:
        try:
            summary = md.latest_work_request(auth, deployment.compartment_id, deployment_id)
            wr_id = summary.id if summary is not None else None
        except DeploymentError as err:
            unread.append(f"its work request ({err.status} {err.code})")
    errors: list[dict[str, Any]] = []
    if wr_id is not None:
        try:
            errors = [
                {"code": e.code, "message": e.message, "timestamp": e.timestamp}
                for e in md.work_request_errors(auth, wr_id)
            ]
        except DeploymentError as err:
            unread.append(f"the work request's errors ({err.status} {err.code})")
        try:
            watch.log_lines(md.work_request_logs(auth, wr_id))
        except DeploymentError as err:
            unread.append(f"the work request's logs ({err.status} {err.code})")
    state = deployment.lifecycle_state if deployment is not None else None
    details = getattr(deployment, "lifecycle_details", None)
    what = f"Model deployment {deployment_id}"
    if wr_status and state != FAILED:
        head = f"The work request {wr_id} on {what} ended {wr_status} (the deployment is {state})"
    else:
        head = f"{what} ended FAILED" + (f" (work request {wr_id})" if wr_id else "")
    if errors:
        shown = "\n".join(
            f"{e['code']}: {str(e['message'])[:_ERROR_TEXT_LIMIT]}" for e in errors[:_ERRORS_SHOWN]
        )
        more = len(errors) - _ERRORS_SHOWN
        body = f":\n{shown}" + (f"\n(and {more} more errors)" if more > 0 else "")
    elif details:
        body = f": {details}"
    elif watch.lines:
        body = f"; its last log line: {watch.lines[-1]}"
    else:
        body = "."
    if state == FAILED:
        fix = (
            f"\nFix the cause named above (for a model that fails to load, its score.py and "
            f"artifact, then save it again), then deploy again. A FAILED deployment is not "
            f"reused: delete it (delete_deployment(auth, {deployment_id!r})) or pass "
            "replace_failed=True to deploy_model."
        )
    else:
        fix = "\nFix the cause named above, then run the operation again."
    if unread:
        fix += f" Could not read {' and '.join(unread)}."
    message = head + body + fix
    _log.warning("%s", message)
    return DeploymentFailedError(
        message,
        deployment_id=deployment_id,
        last_state=state,
        work_request_id=wr_id,
        errors=errors,
        logs=watch.lines[-LOG_LINES_KEPT:],
        lifecycle_details=details,
    )


def _timed_out(
    auth: AuthLike,
    deployment_id: str,
    deployment: Any,
    wr_id: str | None,
    watch: _Watch,
    started: float,
    max_wait_time: float,
    targets: frozenset[str],
) -> DeploymentTimeoutError:
    if deployment is None or watch.state is None:
        try:
            deployment = md.get_model_deployment(auth, deployment_id)
            watch.deployment(deployment.lifecycle_state)
        except DeploymentError:
            pass
    waited = time.monotonic() - started
    state = watch.state
    progress = f" ({watch.percent:.0f}% complete)" if wr_id else ""
    if targets == {ACTIVE}:
        resume = f"call wait_for_active(auth, {deployment_id!r}) (or deploy again)"
    else:
        resume = f"call wait_for_state(auth, {deployment_id!r}, {set(targets)!r})"
    return DeploymentTimeoutError(
        f"Gave up waiting on model deployment {deployment_id} after {waited:.1f} s "
        f"(max_wait_time={max_wait_time}): it is still {state}{progress}. The service goes "
        f"on: {resume} to keep waiting, or pass a longer max_wait_time.",
        deployment_id=deployment_id,
        last_state=state,
        work_request_id=wr_id,
        waited=waited,
        max_wait_time=max_wait_time,
    )


# --- deploy -----------------------------------------------------------------------------------


def _saved_model(auth: AuthLike, model_id: str) -> Any:
    """The catalog's model, checked to be ACTIVE with an artifact (ModelNotSavedError)."""
    if not isinstance(model_id, str) or not model_id.strip():
        raise ModelNotSavedError(
            f"model_id must be the OCID of a saved model, not {model_id!r}; save the model "
            "first (save_model / GenericModel.save()).",
            model_id=str(model_id),
        )
    try:
        model = catalog.get_model(auth, model_id)
    except catalog.ModelNotFoundError as exc:
        raise ModelNotSavedError(
            f"Model {model_id} is not in the model catalog (or this user may not read it): "
            "save the model first (save_model / GenericModel.save()) and deploy the OCID it "
            "returns.",
            model_id=model_id,
        ) from exc
    if model.lifecycle_state != dsm.Model.LIFECYCLE_STATE_ACTIVE:
        raise ModelNotSavedError(
            f"Model {model_id} is {model.lifecycle_state}; only an ACTIVE model can be "
            "deployed (activate it, or save the model again).",
            model_id=model_id,
        )
    if catalog.artifact_info(auth, model_id) is None:
        raise ModelNotSavedError(
            f"Model {model_id} holds no artifact yet, so there is nothing to serve: save the "
            "model again (its artifact upload did not finish).",
            model_id=model_id,
        )
    return model


def deploy_identity(model_id: str, spec: DeploySpec) -> str:
    """A digest of the model and the complete spec: the same deployment gives the same value
    (the value of the :data:`DEPLOY_TAG` tag)."""

    def plain(value: Any) -> Any:
        if isinstance(value, Mapping):
            return {str(k): plain(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [plain(v) for v in value]
        if hasattr(value, "swagger_types"):
            import oci

            return plain(oci.util.to_dict(value))
        return value

    payload = {"model_id": model_id, "spec": plain(spec.to_dict())}
    text = json.dumps(payload, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _retry_token(identity: str, tagged: Sequence[Any]) -> str:
    """The create's retry token: the identity and the deployments this identity already had
    (a deleted or failed one changes it, so the service does not answer with that one)."""
    earlier = ",".join(sorted(d.id for d in tagged))
    digest = hashlib.sha256(f"{identity}|{earlier}".encode()).hexdigest()[:40]
    return f"ocimodel-deploy-{digest}"


_PREFERENCE = {ACTIVE: 0, CREATING: 1, UPDATING: 1, NEEDS_ATTENTION: 2, INACTIVE: 3, FAILED: 4}


def _pick(tagged: Sequence[Any]) -> Any:
    """The deployment a retry goes on with: ACTIVE, else settling, else the newest other."""
    usable = [d for d in tagged if d.lifecycle_state in _PREFERENCE]
    if not usable:
        return None
    return min(
        reversed(usable),  # newest first among equals
        key=lambda d: _PREFERENCE[d.lifecycle_state],
    )


def _default_name(model: Any) -> str:
    base = (model.display_name or "model").strip() or "model"
    return f"{base[:240]}-deployment"


def deploy_model(
    model_id: str,
    spec: DeploySpec | None = None,
    *,
    auth: AuthLike = None,
    properties: Any = None,
    wait_for_completion: bool = True,
    max_wait_time: float = DEFAULT_MAX_WAIT_TIME,
    poll_interval: float = DEFAULT_POLL_INTERVAL,
    progress: Progress | None = None,
    replace_failed: bool = False,
) -> DeployedModel:
    """Deploy a saved model; return its deployment (ACTIVE when ``wait_for_completion``).

    The settings are ``spec`` completed by :meth:`DeploySpec.resolve` (``properties``, the
    environment, the defaults; compartment and project default to the model's). They are
    checked, and the model must be ACTIVE with an artifact (:class:`ModelNotSavedError`),
    before anything is created. A deployment this call made before (same model and settings)
    is found again by its :data:`DEPLOY_TAG` tag: ACTIVE is returned, CREATING or UPDATING
    awaited, INACTIVE activated; FAILED raises :class:`DeploymentFailedError` unless
    ``replace_failed``, which deletes it and creates a new one.

    Raises the errors of :func:`wait_for_active` (the deployment is left in the service:
    a timeout resumes on the next call), DeploymentInputError and DeploymentError.
    """
    _check_times(max_wait_time, poll_interval)
    spec = (spec or DeploySpec()).resolve(properties)
    md.check_details(spec.details())  # bad settings fail here, before any request
    model = _saved_model(auth, model_id)
    spec = dataclasses.replace(
        spec,
        compartment_id=spec.compartment_id or model.compartment_id,
        project_id=spec.project_id or model.project_id,
    )
    identity = deploy_identity(model_id, spec)
    wait = dict(max_wait_time=max_wait_time, poll_interval=poll_interval, progress=progress)
    tagged = md.find_model_deployments_by_tag(
        auth, spec.compartment_id, DEPLOY_TAG, identity, include_deleted=True
    )
    found = _pick(tagged)
    if found is not None and found.lifecycle_state == FAILED and replace_failed:
        _log.warning(
            "Model deployment %s of model %s is FAILED; deleting it to deploy again.",
            found.id,
            model_id,
        )
        delete_deployment(auth, found.id, wait_for_completion=True, **{**wait, "progress": None})
        found = None
    if found is not None:
        return _resume(auth, found, model_id, wait_for_completion, wait)
    details = spec.details(
        model_id=model_id,
        display_name=spec.display_name or _default_name(model),
        freeform_tags={**dict(spec.freeform_tags or {}), DEPLOY_TAG: identity},
    )
    created, wr_id = md.create_model_deployment(
        auth, details, retry_token=_retry_token(identity, tagged)
    )
    _log.info(
        "Deploying model %s as model deployment %s (%s).",
        model_id,
        created.id,
        created.display_name,
    )
    if not wait_for_completion:
        return DeployedModel.of(created, created=True)
    deployment = wait_for_state(
        auth, created.id, frozenset({ACTIVE}), work_request_id=wr_id, starts_from=CREATING, **wait
    )
    return DeployedModel.of(deployment, created=True)


def _resume(
    auth: AuthLike, found: Any, model_id: str, wait_for_completion: bool, wait: dict
) -> DeployedModel:
    """Go on with the deployment an earlier attempt created."""
    state = found.lifecycle_state
    _log.info(
        "Model %s was deployed before by this call: model deployment %s is %s.",
        model_id,
        found.id,
        state,
    )
    if state == FAILED:
        watch = _Watch(found.id, "", synchronized(None))
        deployment = md.get_model_deployment(auth, found.id)
        raise _failed(auth, found.id, deployment, None, watch, None)
    if state == ACTIVE:
        return DeployedModel.of(md.get_model_deployment(auth, found.id), created=False)
    wr_id = None
    if state == INACTIVE:
        _, wr_id = md.activate_model_deployment(auth, found.id)
    if not wait_for_completion:
        return DeployedModel.of(md.get_model_deployment(auth, found.id), created=False)
    deployment = wait_for_state(
        auth, found.id, frozenset({ACTIVE}), work_request_id=wr_id, starts_from=state, **wait
    )
    return DeployedModel.of(deployment, created=False)


# --- managing a deployment --------------------------------------------------------------------

_INFRA_LIVE_GROUPS = (
    frozenset({"infrastructure"}),
    frozenset({"bandwidth"}),
    frozenset({"logs"}),
)


def _check_update_allowed(deployment_id: str, state: str, groups: frozenset[str]) -> None:
    """What the service takes in each state: anything while INACTIVE; while ACTIVE or
    NEEDS_ATTENTION, metadata with at most one of (shape/instances/model), bandwidth or logs,
    and no runtime change."""
    if state == INACTIVE:
        return
    live = groups - {"metadata"}
    if not live or live in _INFRA_LIVE_GROUPS:
        return
    if "environment" in live:
        why = "its runtime (image, environment variables) changes only while it is INACTIVE"
    else:
        why = (
            f"while {state} it takes one of these at a time: the shape, instance count and "
            f"model; the bandwidth; the logs (this update changes {', '.join(sorted(live))})"
        )
    raise DeploymentStateError(
        f"Model deployment {deployment_id} is {state}: {why}. Split the update, or deactivate "
        "the deployment, update it and activate it (the changes apply on activation).",
        deployment_id=deployment_id,
        state=state,
        operation="update_model_deployment",
    )


def _settled(auth: AuthLike, deployment_id: str, wait: dict, allow_wait: bool, what: str) -> Any:
    """The deployment once it is not changing (waited for when allowed); None when gone."""
    try:
        current = md.get_model_deployment(auth, deployment_id)
    except DeploymentNotFoundError:
        return None
    if current.lifecycle_state in (CREATING, UPDATING):
        if not allow_wait:
            raise DeploymentStateError(
                f"Model deployment {deployment_id} is {current.lifecycle_state}; {what} "
                "needs it settled: wait for it (wait_for_active) and run again.",
                deployment_id=deployment_id,
                state=current.lifecycle_state,
            )
        settle = {**wait, "progress": None}  # a bar of its own; the caller's is for the operation
        current = wait_for_state(
            auth,
            deployment_id,
            _SETTLED,
            describe=f"Waiting for {deployment_id} to settle",
            **settle,
        )
    return current


def update_deployment(
    auth: AuthLike,
    deployment_id: str,
    *,
    wait: bool = True,
    max_wait_time: float = DEFAULT_MAX_WAIT_TIME,
    poll_interval: float = DEFAULT_POLL_INTERVAL,
    progress: Progress | None = None,
    **changes: Any,
) -> dsm.ModelDeployment:
    """Change a deployment: ``changes`` are :class:`DeploySpec` options (display_name,
    description, freeform_tags, defined_tags, deployment_instance_shape, deployment_ocpus,
    deployment_instance_count, deployment_bandwidth_mbps, the log ids, environment_variables,
    deployment_image..., and model_id to serve another model); None leaves a value as is.

    What the service takes depends on the state: anything while INACTIVE (applied on the next
    activation); while ACTIVE, metadata plus one of (shape, instance count and model), the
    bandwidth or the logs, served without downtime. Otherwise :class:`DeploymentStateError`
    before any change is sent. An update that changes nothing sends nothing. The
    :data:`DEPLOY_TAG` tag is kept when the freeform tags are replaced. With ``wait``, returns
    the deployment once the update ended (ACTIVE again, or INACTIVE)."""
    _check_times(max_wait_time, poll_interval)
    unknown = sorted(set(changes) - set(md.UPDATE_FIELDS))
    if unknown:
        raise DeploymentInputError(
            f"update_deployment got unknown or unchangeable option(s) {unknown}; it changes "
            f"{', '.join(md.UPDATE_FIELDS)}."
        )
    if changes.get("model_id") is not None:
        _saved_model(auth, changes["model_id"])
    timing = dict(max_wait_time=max_wait_time, poll_interval=poll_interval, progress=progress)
    current = _settled(auth, deployment_id, timing, wait, "an update")
    if current is None or current.lifecycle_state in (FAILED, DELETING, DELETED):
        state = current.lifecycle_state if current is not None else DELETED
        raise DeploymentStateError(
            f"Model deployment {deployment_id} is {state} and cannot be updated; deploy the "
            "model again instead.",
            deployment_id=deployment_id,
            state=state,
            operation="update_model_deployment",
        )
    tag = (current.freeform_tags or {}).get(DEPLOY_TAG)
    if (
        changes.get("freeform_tags") is not None
        and tag
        and DEPLOY_TAG not in changes["freeform_tags"]
    ):
        changes["freeform_tags"] = {**dict(changes["freeform_tags"]), DEPLOY_TAG: tag}
    details, groups = md.build_update_details(current, changes)
    if details is None:
        _log.info("Model deployment %s already has these settings.", deployment_id)
        return current
    before = current.lifecycle_state
    _check_update_allowed(deployment_id, before, groups)
    _, wr_id = md.update_model_deployment(auth, deployment_id, details)
    _log.info("Updating %s of model deployment %s.", ", ".join(sorted(groups)), deployment_id)
    if not wait:
        return md.get_model_deployment(auth, deployment_id)
    target = frozenset({INACTIVE}) if before == INACTIVE else frozenset({ACTIVE})
    return wait_for_state(
        auth,
        deployment_id,
        target,
        work_request_id=wr_id,
        describe=f"Updating model deployment {deployment_id}",
        starts_from=before,
        **timing,
    )


def activate_deployment(
    auth: AuthLike,
    deployment_id: str,
    *,
    max_wait_time: float = DEFAULT_MAX_WAIT_TIME,
    poll_interval: float = DEFAULT_POLL_INTERVAL,
    progress: Progress | None = None,
) -> dsm.ModelDeployment:
    """Activate an INACTIVE deployment and wait for ACTIVE (an ACTIVE one is returned)."""
    timing = dict(max_wait_time=max_wait_time, poll_interval=poll_interval, progress=progress)
    current = _settled(auth, deployment_id, timing, True, "activation")
    state = current.lifecycle_state if current is not None else DELETED
    if state == ACTIVE:
        return current
    if state not in (INACTIVE,):
        raise DeploymentStateError(
            f"Model deployment {deployment_id} is {state}; only an INACTIVE deployment can be "
            "activated.",
            deployment_id=deployment_id,
            state=state,
            operation="activate_model_deployment",
        )
    _, wr_id = md.activate_model_deployment(auth, deployment_id)
    return wait_for_state(
        auth,
        deployment_id,
        frozenset({ACTIVE}),
        work_request_id=wr_id,
        starts_from=INACTIVE,
        **timing,
    )


def deactivate_deployment(
    auth: AuthLike,
    deployment_id: str,
    *,
    max_wait_time: float = DEFAULT_MAX_WAIT_TIME,
    poll_interval: float = DEFAULT_POLL_INTERVAL,
    progress: Progress | None = None,
) -> dsm.ModelDeployment:
    """Deactivate a deployment (its instances stop, its settings and URL stay) and wait for
    INACTIVE (an INACTIVE one is returned)."""
    timing = dict(max_wait_time=max_wait_time, poll_interval=poll_interval, progress=progress)
    current = _settled(auth, deployment_id, timing, True, "deactivation")
    state = current.lifecycle_state if current is not None else DELETED
    if state == INACTIVE:
        return current
    if state not in (ACTIVE, NEEDS_ATTENTION):
        raise DeploymentStateError(
            f"Model deployment {deployment_id} is {state}; only an ACTIVE deployment can be "
            "deactivated.",
            deployment_id=deployment_id,
            state=state,
            operation="deactivate_model_deployment",
        )
    _, wr_id = md.deactivate_model_deployment(auth, deployment_id)
    return wait_for_state(
        auth,
        deployment_id,
        frozenset({INACTIVE}),
        work_request_id=wr_id,
        describe=f"Deactivating model deployment {deployment_id}",
        starts_from=state,
        **timing,
    )


def restart_deployment(
    auth: AuthLike,
    deployment_id: str,
    max_wait_time: float = DEFAULT_MAX_WAIT_TIME,
    poll_interval: float = DEFAULT_POLL_INTERVAL,
    *,
    progress: Progress | None = None,
) -> dsm.ModelDeployment:
    """Deactivate, then activate the deployment, each awaited with ``max_wait_time`` (so the
    whole restart may take twice that); returns it ACTIVE. A re-run after a partial restart
    goes on from the state it finds (an INACTIVE deployment is only activated)."""
    _check_times(max_wait_time, poll_interval)
    timing = dict(max_wait_time=max_wait_time, poll_interval=poll_interval)
    deactivate_deployment(auth, deployment_id, **timing)
    return activate_deployment(auth, deployment_id, progress=progress, **timing)


def delete_deployment(
    auth: AuthLike,
    deployment_id: str,
    wait_for_completion: bool = True,
    *,
    max_wait_time: float = DEFAULT_MAX_WAIT_TIME,
    poll_interval: float = DEFAULT_POLL_INTERVAL,
    progress: Progress | None = None,
) -> None:
    """Delete the deployment; one already deleted (or gone) is left as is. A deployment still
    CREATING or UPDATING is first awaited (the service deletes only settled ones); with
    ``wait_for_completion`` the call returns once it is DELETED."""
    _check_times(max_wait_time, poll_interval)
    timing = dict(max_wait_time=max_wait_time, poll_interval=poll_interval, progress=progress)
    current = _settled(auth, deployment_id, timing, wait_for_completion, "deletion")
    state = current.lifecycle_state if current is not None else DELETED
    if state == DELETED:
        _log.info("Model deployment %s is already deleted.", deployment_id)
        return
    wr_id = None
    if state != DELETING:
        _, wr_id = md.delete_model_deployment(auth, deployment_id)
    if wait_for_completion:
        wait_for_state(
            auth,
            deployment_id,
            frozenset({DELETED}),
            work_request_id=wr_id,
            describe=f"Deleting model deployment {deployment_id}",
            starts_from=state,
            **timing,
        )
        _log.info("Deleted model deployment %s.", deployment_id)
