"""Faults on demand: errors, latency, dropped connections and failed deployments.

A rule matches requests by operation name (``get_model``) and/or method and path regex and
applies to a fraction of them (``rate``) or to exactly the next ``count`` of them, so tests can be
deterministic. Rules come from ``--fault`` flags, the ``OCIMODEL_LOCAL_FAULTS`` environment
variable (JSON) and the ``/_admin/faults`` route. The ``/_admin`` paths are never faulted.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import re
import threading
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from .core import CODE_OF_STATUS, OCIError, error_response
from .operations import OPERATIONS, operation_of
from .state import ServiceState

ENV_VAR = "OCIMODEL_LOCAL_FAULTS"
ADMIN_PREFIX = "/_admin"
DROP_PHASES = frozenset({"response", "request"})


class FaultSpecError(ValueError):
    """A fault rule that cannot be applied; the message names the bad value and the fix."""


@dataclass
class FaultRule:
    """One fault: which requests it hits and what it does to them."""

    operation: str | None = None  # SDK operation name, e.g. "get_model"
    method: str | None = None  # HTTP method
    path: str | None = None  # regex searched in the request path
    status: int | None = None  # answer this status instead of serving the request
    code: str | None = None  # OCI error code (default per status)
    message: str | None = None
    rate: float = 1.0  # probability that a matching request is hit
    count: int | None = None  # hit only the next N matching requests (None: no limit)
    latency_ms: float = 0.0  # added before the request is served
    drop: bool = False  # drop the connection mid-body (see drop_phase)
    drop_phase: str = "response"  # "response": serve, then cut the answer; "request": cut upload
    deployment_failure: str | None = None  # fail the next model deployment with this message
    applied: int = field(default=0)  # how many times the rule has hit

    def __post_init__(self) -> None:
        self._check()
        self._path_rx = re.compile(self.path) if self.path else None

    def _check(self) -> None:
        if self.operation is not None and self.operation not in OPERATIONS:
            raise FaultSpecError(
                f"Unknown operation {self.operation!r}; use an SDK operation name such as "
                "'get_model' or 'put_object', or match by method and path instead."
            )
        if self.status is not None and not 400 <= int(self.status) <= 599:
            raise FaultSpecError(f"Fault status {self.status!r} must be an HTTP error (400-599).")
        if not 0.0 <= float(self.rate) <= 1.0:
            raise FaultSpecError(f"Fault rate {self.rate!r} must be between 0 and 1.")
        if self.count is not None and int(self.count) < 0:
            raise FaultSpecError(f"Fault count {self.count!r} must be 0 or more.")
        if float(self.latency_ms) < 0:
            raise FaultSpecError(f"Fault latency_ms {self.latency_ms!r} must be 0 or more.")
        if self.path:
            try:
                re.compile(self.path)
            except re.error as exc:
                raise FaultSpecError(f"Fault path {self.path!r} is not a regex: {exc}") from exc
        if self.drop_phase not in DROP_PHASES:
            raise FaultSpecError(
                f"Fault drop_phase {self.drop_phase!r} must be one of {sorted(DROP_PHASES)}."
            )
        effects = [self.status is not None, self.drop, self.deployment_failure is not None]
        if sum(effects) > 1:
            raise FaultSpecError(
                "A fault rule has one effect: give either status, drop or deployment_failure."
            )
        if not any(effects) and not self.latency_ms:
            raise FaultSpecError(
                "A fault rule needs an effect: status (429, 500, 503...), latency_ms, drop=true "
                "or deployment_failure='message'."
            )

    def matches(self, method: str, path: str, operation: str | None) -> bool:
        """True when this request rule applies to the request."""
        if self.deployment_failure is not None:
            return False
        if self.method and self.method.upper() != method:
            return False
        if self.operation and self.operation != operation:
            return False
        return not (self._path_rx and not self._path_rx.search(path))

    def public(self) -> dict[str, Any]:
        """The rule as JSON (what the admin route lists)."""
        return {k: v for k, v in asdict(self).items() if v is not None and not k.startswith("_")}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FaultRule:
        """A rule from a JSON object, rejecting unknown keys."""
        known = {f.name for f in fields(cls)} - {"applied"}
        unknown = set(data) - known
        if unknown:
            raise FaultSpecError(
                f"Unknown fault field(s) {sorted(unknown)}; known fields: {sorted(known)}."
            )
        values = dict(data)
        try:
            for name in ("status", "count"):
                if values.get(name) is not None:
                    values[name] = int(values[name])
            for name in ("rate", "latency_ms"):
                if values.get(name) is not None:
                    values[name] = float(values[name])
        except (TypeError, ValueError) as exc:
            raise FaultSpecError(f"Bad number in fault rule {dict(data)!r}: {exc}") from exc
        if isinstance(values.get("drop"), str):
            values["drop"] = values["drop"].lower() in ("1", "true", "yes", "on")
        return cls(**values)

    @classmethod
    def parse(cls, spec: str) -> FaultRule:
        """A rule from a CLI flag ``key=value,...``, e.g. ``operation=get_model,status=503``."""
        data: dict[str, Any] = {}
        for part in filter(None, (p.strip() for p in spec.split(","))):
            key, sep, value = part.partition("=")
            if not sep:
                raise FaultSpecError(
                    f"Fault item {part!r} is not key=value; example: "
                    "--fault operation=put_object,status=503,count=2"
                )
            value = value.strip()
            if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
                value = value[1:-1]
            data[key.strip()] = value
        return cls.from_dict(data)


@dataclass
class Effect:
    """What the middleware does to one request."""

    latency_ms: float = 0.0
    error: OCIError | None = None
    drop: str | None = None  # the drop phase, when the connection is to be dropped


class Faults:
    """The active fault rules of one service (thread-safe)."""

    def __init__(self) -> None:
        self._rules: list[FaultRule] = []
        self._lock = threading.Lock()
        self._random = random.Random()

    @staticmethod
    def _coerce(rules: Iterable[FaultRule | Mapping[str, Any] | str]) -> list[FaultRule]:
        out = []
        for rule in rules:
            if isinstance(rule, FaultRule):
                out.append(rule)
            elif isinstance(rule, str):
                out.append(FaultRule.parse(rule))
            elif isinstance(rule, Mapping):
                out.append(FaultRule.from_dict(rule))
            else:
                raise FaultSpecError(f"A fault rule must be a dict or 'k=v,...' string: {rule!r}")
        return out

    def set(self, rules: Iterable[FaultRule | Mapping[str, Any] | str]) -> None:
        """Replace every rule."""
        new = self._coerce(rules)
        with self._lock:
            self._rules = new

    def add(self, rules: Iterable[FaultRule | Mapping[str, Any] | str]) -> None:
        """Add rules after the existing ones."""
        new = self._coerce(rules)
        with self._lock:
            self._rules.extend(new)

    def clear(self) -> None:
        """Remove every rule."""
        with self._lock:
            self._rules = []

    def rules(self) -> list[dict[str, Any]]:
        """The rules as JSON, with how often each has hit."""
        with self._lock:
            return [r.public() for r in self._rules]

    @property
    def active(self) -> bool:
        """True when any rule can still hit (a fast path for the middleware)."""
        return any(r.count is None or r.count > 0 for r in self._rules)

    def _hit(self, rule: FaultRule) -> bool:
        """Decide whether a matching rule hits now, consuming its count."""
        if rule.count is not None and rule.count <= 0:
            return False
        if rule.rate < 1.0 and self._random.random() >= rule.rate:
            return False
        if rule.count is not None:
            rule.count -= 1
        rule.applied += 1
        return True

    def take(self, method: str, path: str) -> Effect | None:
        """The effect on a request (latencies add up; the first error or drop wins)."""
        if not self._rules:
            return None
        operation = operation_of(method, path)
        effect = Effect()
        with self._lock:
            for rule in self._rules:
                if not rule.matches(method, path, operation):
                    continue
                if (rule.status is not None or rule.drop) and (effect.error or effect.drop):
                    continue
                if not self._hit(rule):
                    continue
                effect.latency_ms += rule.latency_ms
                if rule.status is not None:
                    code = rule.code or CODE_OF_STATUS.get(rule.status, "InternalServerError")
                    msg = rule.message or f"Injected fault: {code} for {operation or path}."
                    effect.error = OCIError(rule.status, code, msg)
                elif rule.drop:
                    effect.drop = rule.drop_phase
        if not (effect.latency_ms or effect.error or effect.drop):
            return None
        return effect

    def take_deployment_failure(self) -> str | None:
        """The message of an armed deployment failure, consuming it; None when none is armed."""
        with self._lock:
            for rule in self._rules:
                if rule.deployment_failure is not None and self._hit(rule):
                    return rule.deployment_failure
        return None


def rules_from_env(environ: Mapping[str, str] | None = None) -> list[FaultRule]:
    """Rules from ``OCIMODEL_LOCAL_FAULTS``: a JSON object or list of objects."""
    raw = (environ if environ is not None else os.environ).get(ENV_VAR, "").strip()
    if not raw:
        return []
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise FaultSpecError(
            f"{ENV_VAR} is not JSON ({exc}); set it to a list such as "
            '[{"operation": "get_model", "status": 503, "count": 1}].'
        ) from exc
    items = data if isinstance(data, list) else [data]
    return Faults._coerce(items)


def faults_of(state: ServiceState) -> Faults:
    """The service's fault rules, created (from the environment) on first use."""
    faults = state.extras.get("faults")
    if faults is None:
        faults = state.extras["faults"] = Faults()
        faults.set(rules_from_env())
    return faults


class FaultMiddleware:
    """Applies fault rules to every request outside ``/_admin``."""

    def __init__(self, app, state: ServiceState):
        self.app = app
        self.faults = faults_of(state)

    async def __call__(self, scope, receive, send) -> None:
        if (
            scope["type"] != "http"
            or not self.faults.active
            or scope["path"].startswith(ADMIN_PREFIX)
        ):
            await self.app(scope, receive, send)
            return
        effect = self.faults.take(scope["method"].upper(), scope["path"])
        if effect is None:
            await self.app(scope, receive, send)
            return
        if effect.latency_ms:
            await asyncio.sleep(effect.latency_ms / 1000.0)
        if effect.error is not None:
            await error_response(effect.error)(scope, receive, send)
        elif effect.drop == "request":
            await _drop_mid_request(scope, receive, send)
        elif effect.drop:
            await self.app(scope, receive, _dropping_send(send))
        else:
            await self.app(scope, receive, send)


async def _drop_mid_request(scope, receive, send) -> None:
    """Read part of the request body, then end the connection without serving the request.

    Closing a socket with unread request bytes makes the kernel reset the connection, so the
    client sees a reset while it is still uploading, and nothing is stored.
    """
    declared = 0
    for name, value in scope["headers"]:
        if name.lower() == b"content-length" and value.isdigit():
            declared = int(value)
    received = 0
    while received * 2 < declared:
        message = await receive()
        if message["type"] != "http.request":
            return
        received += len(message.get("body", b""))
        if not message.get("more_body", False):
            break
    await send(
        {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"1024")]}
    )
    await send({"type": "http.response.body", "body": b"", "more_body": True})


def _dropping_send(send):
    """A send that forwards the status line and headers, then half the body, then stops.

    The declared content-length stays larger than what is sent, so the client sees the
    connection end mid-body; the server closes it because the response never completes.
    """
    started: dict[str, Any] = {}
    done = False

    async def dropping(message) -> None:
        nonlocal done
        if done:
            return
        if message["type"] == "http.response.start":
            started.update(message)
            return
        if message["type"] != "http.response.body":
            return
        body = message.get("body", b"")
        status = started.get("status", 200)
        headers = [(k, v) for k, v in started.get("headers", []) if k.lower() != b"content-length"]
        declared = max(len(body), 0) + 1024
        if status in (204, 304) or status < 200:
            status = 200
        headers.append((b"content-length", str(declared).encode()))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send(
            {"type": "http.response.body", "body": body[: len(body) // 2], "more_body": True}
        )
        done = True

    return dropping
