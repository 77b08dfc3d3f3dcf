"""A fast client for a model deployment's predict endpoint.

:func:`predict` posts one payload to ``{modelDeploymentUrl}/predict``, signed by the auth's own
SDK signer (``resolve_auth(auth).signer``), over one :class:`requests.Session` per (auth, host)
that is built once and reused: its connections stay open (keep-alive, ``TCP_NODELAY``), so a
call costs one signature and one round trip, not a TCP handshake and a TLS negotiation.

    from ocimodel.oci.predict import predict

    answer = predict(deployment.model_deployment_url, b'{"instances": [[5.1, 3.5, 1.4, 0.2]]}',
                     "application/json", auth=auth)
    answer.json()          # {"prediction": [0]}

Failures are typed: :class:`PredictError` carries the HTTP status, the service's error code and
message (an exception raised in ``score.py`` comes back with its message) and the
``opc-request-id``; a 429 is a :class:`PredictThrottledError` that explains the bandwidth limit
(``deployment_bandwidth_mbps``); a deployment that is not ACTIVE raises
:class:`DeploymentNotActiveError`, a :class:`~ocimodel.errors.NotActiveDeploymentError`.

The environment (proxies, ``REQUESTS_CA_BUNDLE``) is read once, when a host's session is built,
not on every call; :func:`close_sessions` forgets every session (e.g. after changing it).
"""

from __future__ import annotations

import json
import os
import re
import socket
import threading
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests
from oci.data_science.models import ModelDeployment as _MD
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection
from urllib3.util.retry import Retry

from ocimodel.errors import NotActiveDeploymentError, OcimodelError
from ocimodel.oci.auth import AuthLike, resolve_auth

__all__ = [
    "DEFAULT_TIMEOUT",
    "MAX_PAYLOAD_BYTES",
    "DeploymentNotActiveError",
    "PredictError",
    "PredictResponse",
    "PredictThrottledError",
    "PredictTimeoutError",
    "close_sessions",
    "predict",
    "predict_url",
    "session_for",
]

MAX_PAYLOAD_BYTES = 10 * 1024 * 1024
"""The largest payload the predict endpoint accepts (10 MB); larger ones fail before sending."""
DEFAULT_TIMEOUT = 60.0
"""Seconds to wait for an answer: the service's own limit for one prediction."""
MAX_SESSIONS = 32
"""Sessions kept (one per auth and host); the oldest is closed when one more is needed."""
POOL_SIZE = 32
"""Keep-alive connections per session: enough for that many threads predicting at once."""
PREDICT_PATHS = ("/predict", "/predictWithResponseStream")
REQUEST_ID_HEADER = "opc-request-id"

_NOT_ACTIVE_STATES = (
    _MD.LIFECYCLE_STATE_CREATING,
    _MD.LIFECYCLE_STATE_UPDATING,
    _MD.LIFECYCLE_STATE_INACTIVE,
    _MD.LIFECYCLE_STATE_FAILED,
    _MD.LIFECYCLE_STATE_DELETING,
    _MD.LIFECYCLE_STATE_DELETED,
    _MD.LIFECYCLE_STATE_NEEDS_ATTENTION,
)
# How the service names a deployment's state in a 404/503 predict answer:
# "Model deployment <ocid> is INACTIVE and serves no predictions; activate it first."
_STATE_IN_MESSAGE = re.compile(r"\bis (" + "|".join(_NOT_ACTIVE_STATES) + r")\b")


# --- errors -----------------------------------------------------------------------------------


class PredictError(OcimodelError):
    """A prediction failed: ``status`` (None when no answer came), ``code``, ``message`` (the
    service's own words, e.g. what ``score.py`` raised), ``request_id`` and ``url``."""

    def __init__(
        self,
        status: int | None,
        code: str,
        message: str,
        *,
        url: str = "",
        request_id: str | None = None,
        hint: str = "",
    ):
        self.status, self.code, self.message = status, code, message
        self.url, self.request_id = url, request_id
        super().__init__(_describe(status, code, message, url, request_id, hint))


class PredictThrottledError(PredictError):
    """429 TooManyRequests: the deployment's bandwidth or instance capacity is exhausted."""


class PredictTimeoutError(PredictError):
    """No answer within the timeout (the client's, or the service's 504 GatewayTimeout)."""


class DeploymentNotActiveError(NotActiveDeploymentError, PredictError):
    """The deployment is not ACTIVE (``state`` names its lifecycle state), so it serves no
    predictions. Both a :class:`~ocimodel.errors.NotActiveDeploymentError` and a
    :class:`PredictError`."""

    def __init__(
        self,
        state: str,
        status: int,
        code: str,
        message: str,
        *,
        url: str = "",
        request_id: str | None = None,
    ):
        # Not NotActiveDeploymentError.__init__: its super() call would reach PredictError's.
        self.state = state
        hint = str(NotActiveDeploymentError(state))
        self.status, self.code, self.message = status, code, message
        self.url, self.request_id = url, request_id
        Exception.__init__(self, _describe(status, code, message, url, request_id, hint))


THROTTLED_HINT = (
    "The deployment refused the request because it is at capacity: its load balancer "
    "bandwidth (deployment_bandwidth_mbps, 10 Mbps unless set at deploy time) or the requests "
    "its instances can serve at once is used up. Retry with backoff, send fewer or smaller "
    "requests, or redeploy with a larger deployment_bandwidth_mbps or deployment_instance_count."
)
TOO_LARGE_HINT = (
    f"A prediction payload may be at most {MAX_PAYLOAD_BYTES // (1024 * 1024)} MB; "
    "send smaller batches."
)


def _describe(
    status: int | None, code: str, message: str, url: str, request_id: str | None, hint: str
) -> str:
    head = f"{status} {code}" if status is not None else code
    text = f"Predict on {url or 'the model deployment'} failed: {head}: {message}"
    if request_id:
        text += f" (opc-request-id {request_id})"
    return f"{text}. {hint}" if hint else text


# --- the answer -------------------------------------------------------------------------------


@dataclass(frozen=True)
class PredictResponse:
    """A successful prediction: the body as the model server wrote it."""

    status: int
    content: bytes
    content_type: str
    request_id: str | None

    def json(self) -> Any:
        """The body decoded as JSON (what ``score.predict()`` returned)."""
        return json.loads(self.content)

    @property
    def text(self) -> str:
        """The body decoded as UTF-8."""
        return self.content.decode("utf-8", errors="replace")


# --- sessions ---------------------------------------------------------------------------------


class _NoDelayAdapter(HTTPAdapter):
    """An adapter whose connections disable Nagle (no 40 ms stall on small requests), keep TCP
    keep-alive probes on, and retry only connects that never reached the server."""

    def __init__(self) -> None:
        retry = Retry(
            total=2, connect=2, read=0, status=0, other=0, redirect=0, raise_on_status=False
        )
        super().__init__(pool_connections=1, pool_maxsize=POOL_SIZE, max_retries=retry)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        options = list(HTTPConnection.default_socket_options)  # TCP_NODELAY
        options.append((socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1))
        kwargs["socket_options"] = options
        super().init_poolmanager(*args, **kwargs)


def _new_session(base_url: str) -> requests.Session:
    """A session for one host with the environment's proxies and CA bundle read once."""
    session = requests.Session()
    session.trust_env = False  # no per-call environment scan; read it here, once
    session.proxies = requests.utils.get_environ_proxies(base_url)
    bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
    if bundle:
        session.verify = bundle
    adapter = _NoDelayAdapter()
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


_sessions: dict[tuple, requests.Session] = {}
_sessions_lock = threading.Lock()
_sessions_pid = os.getpid()


def session_for(auth: AuthLike, url: str) -> requests.Session:
    """The shared session for ``auth`` and the host of ``url`` (built on first use)."""
    parts = urlsplit(url)
    key = (resolve_auth(auth), parts.scheme, parts.netloc)
    session = _sessions.get(key)  # hot path: one lookup, no lock (dict reads are atomic)
    if session is not None and _sessions_pid == os.getpid():
        return session
    return _new_shared_session(key, f"{parts.scheme}://{parts.netloc}/")


def _new_shared_session(key: tuple, base_url: str) -> requests.Session:
    global _sessions_pid
    with _sessions_lock:
        if _sessions_pid != os.getpid():  # a forked child must not share the parent's sockets
            _sessions.clear()
            _sessions_pid = os.getpid()
        session = _sessions.get(key)
        if session is not None:
            return session
        session = _sessions[key] = _new_session(base_url)
        evicted = []
        while len(_sessions) > MAX_SESSIONS:  # the oldest first
            evicted.append(_sessions.pop(next(iter(_sessions))))
    for old in evicted:
        old.close()
    return session


def close_sessions() -> None:
    """Close and forget every shared session (they are rebuilt on the next call)."""
    with _sessions_lock:
        sessions = list(_sessions.values())
        _sessions.clear()
    for session in sessions:
        session.close()


# --- predict ----------------------------------------------------------------------------------


def predict_url(endpoint_url: str) -> str:
    """The predict URL of a deployment URL (``.../{ocid}`` gets ``/predict``); a URL already
    ending in ``/predict`` or ``/predictWithResponseStream`` is kept."""
    url = endpoint_url.rstrip("/")
    if not url.startswith(("http://", "https://")):
        raise ValueError(
            f"endpoint_url must be the deployment's http(s) URL (its modelDeploymentUrl), "
            f"not {endpoint_url!r}."
        )
    return url if url.endswith(PREDICT_PATHS) else url + PREDICT_PATHS[0]


def predict(
    endpoint_url: str,
    data_bytes: bytes | bytearray | memoryview | str,
    content_type: str = "application/json",
    *,
    auth: AuthLike = None,
    session: requests.Session | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> PredictResponse:
    """Send one prediction request and return the model's answer.

    Args:
        endpoint_url: the deployment's ``modelDeploymentUrl`` (``/predict`` is appended) or
            its full predict URL.
        data_bytes: the payload as the model server should receive it (a ``str`` is sent as
            UTF-8). JSON payloads reach ``score.predict()`` decoded; others as bytes.
        content_type: the payload's media type.
        auth: an OCIAuth, an ADS auth dict or None (the process default); its signer signs.
        session: a :class:`requests.Session` to send with; by default one shared session per
            auth and host, kept open between calls.
        timeout: seconds to wait for the connection and for the answer.

    Raises:
        DeploymentNotActiveError: the deployment is not ACTIVE (e.g. INACTIVE, CREATING).
        PredictThrottledError: 429, the deployment's bandwidth or capacity is used up.
        PredictTimeoutError: no answer in time (here, or the service's 504).
        PredictError: any other failure, with the service's status, code and message.
    """
    url = predict_url(endpoint_url)
    body = _payload(data_bytes)
    if len(body) > MAX_PAYLOAD_BYTES:
        raise PredictError(
            413,
            "PayloadTooLarge",
            f"the payload is {len(body)} bytes, not sent",
            url=url,
            hint=TOO_LARGE_HINT,
        )
    resolved = resolve_auth(auth)
    signer = resolved.signer
    sender = session if session is not None else session_for(resolved, url)
    try:
        resp = sender.post(
            url, data=body, headers={"content-type": content_type}, auth=signer, timeout=timeout
        )
    except requests.Timeout as exc:
        raise PredictTimeoutError(
            None,
            "RequestTimeout",
            f"no answer within {timeout:g} s ({type(exc).__name__})",
            url=url,
            hint="Make score.py's predict() faster, send smaller batches or raise timeout=.",
        ) from exc
    except requests.RequestException as exc:
        raise PredictError(
            None,
            "ConnectionError",
            f"{type(exc).__name__}: {exc}",
            url=url,
            hint="Check the deployment URL and that the service is reachable.",
        ) from exc
    request_id = resp.headers.get(REQUEST_ID_HEADER)
    if resp.status_code < 300:
        return PredictResponse(
            resp.status_code, resp.content, resp.headers.get("content-type", ""), request_id
        )
    raise _error_of(resp.status_code, resp.content, url, request_id)


def _payload(data: bytes | bytearray | memoryview | str) -> bytes:
    if isinstance(data, bytes):
        return data
    if isinstance(data, (bytearray, memoryview)):
        return bytes(data)
    if isinstance(data, str):
        return data.encode("utf-8")
    raise TypeError(
        f"data_bytes must be bytes or str, not {type(data).__name__}; serialize the input first "
        "(e.g. json.dumps(data).encode() with content_type='application/json')."
    )


def _error_of(status: int, content: bytes, url: str, request_id: str | None) -> PredictError:
    """The typed error of a failed answer, with the service's code and message."""
    code, message = _code_and_message(status, content)
    kwargs = {"url": url, "request_id": request_id}
    if status in (404, 503):
        match = _STATE_IN_MESSAGE.search(message)
        if match:
            return DeploymentNotActiveError(match.group(1), status, code, message, **kwargs)
    if status == 429:
        return PredictThrottledError(status, code, message, hint=THROTTLED_HINT, **kwargs)
    if status == 504:
        hint = "Make score.py's predict() faster or send smaller batches."
        return PredictTimeoutError(status, code, message, hint=hint, **kwargs)
    if status == 413:
        return PredictError(status, code, message, hint=TOO_LARGE_HINT, **kwargs)
    return PredictError(status, code, message, **kwargs)


def _code_and_message(status: int, content: bytes) -> tuple[str, str]:
    try:
        doc = json.loads(content)
    except ValueError:
        doc = None
    if isinstance(doc, dict) and ("code" in doc or "message" in doc):
        return str(doc.get("code") or _default_code(status)), str(doc.get("message") or "")
    text = content[:2000].decode("utf-8", errors="replace").strip()
    return _default_code(status), text or f"HTTP {status}"


def _default_code(status: int) -> str:
    return {
        400: "InvalidParameter",
        401: "NotAuthenticated",
        404: "NotAuthorizedOrNotFound",
        411: "LengthRequired",
        413: "PayloadTooLarge",
        429: "TooManyRequests",
        500: "InternalServerError",
        503: "ServiceUnavailable",
        504: "GatewayTimeout",
    }.get(status, f"HTTP{status}")
