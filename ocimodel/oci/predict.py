"""A fast client for a model deployment's predict endpoint.

:func:`predict` posts one payload to ``{modelDeploymentUrl}/predict``, signed by the auth's own
SDK signer (``resolve_auth(auth).signer``), over connections kept open per (auth, host): one
urllib3 pool, built once and reused (keep-alive, ``TCP_NODELAY``), so a call costs one signature
and one round trip, not a TCP handshake and a TLS negotiation.

    from ocimodel.oci.predict import predict

    answer = predict(deployment.model_deployment_url, b'{"instances": [[5.1, 3.5, 1.4, 0.2]]}',
                     "application/json", auth=auth)
    answer.json()          # {"prediction": [0]}

Why urllib3 and not a ``requests.Session`` on the hot path: requests' own per-call work (merging
session settings, preparing and re-parsing the URL, cookies, hooks) costs about half a
millisecond of CPU per call, more than the signature and as much as the whole round trip on
loopback; the connection pool underneath is the same. A ``session=`` given by the caller is used
as is, and so is a ``requests.Session`` when the environment names a proxy for the host.

Failures are typed: :class:`PredictError` carries the HTTP status, the service's error code and
message (an exception raised in ``score.py`` comes back with its message) and the
``opc-request-id``; a 429 is a :class:`PredictThrottledError` that explains the bandwidth limit
(``deployment_bandwidth_mbps``); a deployment that is not ACTIVE raises
:class:`DeploymentNotActiveError`, a :class:`~ocimodel.errors.NotActiveDeploymentError`.

The environment (proxies, ``REQUESTS_CA_BUNDLE``) is read once per host, when its connections
are first needed; :func:`close_connections` forgets them all (e.g. after changing it).
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
import urllib3
from oci.data_science.models import ModelDeployment as _MD
from requests.adapters import HTTPAdapter
from requests.structures import CaseInsensitiveDict
from urllib3.connection import HTTPConnection
from urllib3.exceptions import HTTPError as _Urllib3Error
from urllib3.exceptions import NewConnectionError
from urllib3.exceptions import TimeoutError as _Urllib3Timeout
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
    "close_connections",
    "predict",
    "predict_url",
]

MAX_PAYLOAD_BYTES = 10 * 1024 * 1024
"""The largest payload the predict endpoint accepts (10 MB); larger ones fail before sending."""
DEFAULT_TIMEOUT = 60.0
"""Seconds to wait for an answer: the service's own limit for one prediction."""
MAX_HOSTS = 32
"""Connection pools kept (one per auth and host); the oldest is closed when one more is needed."""
POOL_SIZE = 32
"""Keep-alive connections per pool: enough for that many threads predicting at once."""
USER_AGENT = "ocimodel-predict"
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


# --- connections ------------------------------------------------------------------------------

_SOCKET_OPTIONS = [
    *HTTPConnection.default_socket_options,  # TCP_NODELAY: no 40 ms stall on small requests
    (socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1),
]
# Retry only connects that never reached the server: a prediction is never sent twice.
_RETRY = Retry(
    total=2,
    connect=2,
    read=0,
    status=0,
    other=0,
    redirect=0,
    raise_on_redirect=False,
    raise_on_status=False,
)


def _ca_bundle() -> str:
    return (
        os.environ.get("REQUESTS_CA_BUNDLE")
        or os.environ.get("CURL_CA_BUNDLE")
        or requests.certs.where()
    )


class _NoDelayAdapter(HTTPAdapter):
    """A requests adapter with the same connections: TCP_NODELAY, keep-alive probes, retries of
    connects only."""

    def __init__(self) -> None:
        super().__init__(pool_connections=1, pool_maxsize=POOL_SIZE, max_retries=_RETRY)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs["socket_options"] = _SOCKET_OPTIONS
        super().init_poolmanager(*args, **kwargs)


class _HostConnections:
    """The kept-open connections to one host: a urllib3 pool, or, when the environment names a
    proxy for the host, a requests session through it."""

    def __init__(self, base_url: str):
        proxies = requests.utils.get_environ_proxies(base_url)  # honours NO_PROXY
        self.session: requests.Session | None = None
        self.pool: urllib3.PoolManager | None = None
        if requests.utils.select_proxy(base_url, proxies):
            self.session = session = requests.Session()
            session.trust_env = False  # the environment is read here, once, not per call
            session.proxies = proxies
            session.verify = _ca_bundle()
            session.mount("http://", _NoDelayAdapter())
            session.mount("https://", _NoDelayAdapter())
        else:
            self.pool = urllib3.PoolManager(
                num_pools=1,
                maxsize=POOL_SIZE,
                socket_options=_SOCKET_OPTIONS,
                cert_reqs="CERT_REQUIRED",
                ca_certs=_ca_bundle(),
            )

    def send(
        self, url: str, body: bytes, content_type: str, signer: Any, timeout: float
    ) -> tuple[int, bytes, Any]:
        """POST a signed request; (status, content, headers)."""
        if self.pool is None:
            return _send_with(self.session, url, body, content_type, signer, timeout)
        answer = self.pool.urlopen(
            "POST",
            url,
            body=body,
            headers=_signed_headers(signer, url, body, content_type),
            redirect=False,
            retries=_RETRY,
            timeout=urllib3.Timeout(connect=timeout, read=timeout),
        )
        return answer.status, answer.data, answer.headers

    def close(self) -> None:
        if self.session is not None:
            self.session.close()
        if self.pool is not None:
            self.pool.clear()


def _send_with(
    session: Any, url: str, body: bytes, content_type: str, signer: Any, timeout: float
) -> tuple[int, bytes, Any]:
    """POST through a requests session, signed by the SDK signer as requests' auth."""
    resp = session.post(
        url, data=body, headers={"content-type": content_type}, auth=signer, timeout=timeout
    )
    return resp.status_code, resp.content, resp.headers


def _signed_headers(signer: Any, url: str, body: bytes, content_type: str) -> dict[str, str]:
    """The request headers, signed by the SDK signer (date, host, body hash, authorization)."""
    request = requests.PreparedRequest()  # what the SDK's signers sign; not sent by requests
    request.method, request.url, request.body = "POST", url, body
    request.headers = CaseInsensitiveDict(
        {
            "content-type": content_type,
            "content-length": str(len(body)),
            "user-agent": USER_AGENT,
        }
    )
    signer(request)
    return dict(request.headers)


_hosts: dict[tuple, _HostConnections] = {}
_hosts_lock = threading.Lock()
_hosts_pid = os.getpid()


def _connections_for(auth: Any, url: str) -> _HostConnections:
    """The kept-open connections for ``auth`` (an OCIAuth) and the host of ``url``."""
    parts = urlsplit(url)
    key = (auth, parts.scheme, parts.netloc)
    found = _hosts.get(key)  # hot path: one lookup, no lock (dict reads are atomic)
    if found is not None and _hosts_pid == os.getpid():
        return found
    return _new_connections(key, f"{parts.scheme}://{parts.netloc}/")


def _new_connections(key: tuple, base_url: str) -> _HostConnections:
    global _hosts_pid
    with _hosts_lock:
        if _hosts_pid != os.getpid():  # a forked child must not share the parent's sockets
            _hosts.clear()
            _hosts_pid = os.getpid()
        found = _hosts.get(key)
        if found is not None:
            return found
        found = _hosts[key] = _HostConnections(base_url)
        evicted = []
        while len(_hosts) > MAX_HOSTS:  # the oldest first
            evicted.append(_hosts.pop(next(iter(_hosts))))
    for old in evicted:
        old.close()
    return found


def close_connections() -> None:
    """Close and forget every kept-open connection (they are opened again when needed)."""
    with _hosts_lock:
        hosts = list(_hosts.values())
        _hosts.clear()
    for host in hosts:
        host.close()


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
        session: a :class:`requests.Session` to send with; by default connections shared per
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
    try:
        if session is not None:
            status, content, headers = _send_with(session, url, body, content_type, signer, timeout)
        else:
            host = _connections_for(resolved, url)
            status, content, headers = host.send(url, body, content_type, signer, timeout)
    except (requests.Timeout, _Urllib3Timeout) as exc:
        if isinstance(exc, NewConnectionError):
            raise _unreachable(url, exc) from exc
        raise PredictTimeoutError(
            None,
            "RequestTimeout",
            f"no answer within {timeout:g} s ({type(exc).__name__})",
            url=url,
            hint="Make score.py's predict() faster, send smaller batches or raise timeout=.",
        ) from exc
    except (requests.RequestException, _Urllib3Error) as exc:
        reason = getattr(exc, "reason", None)
        if isinstance(reason, _Urllib3Timeout) and not isinstance(reason, NewConnectionError):
            raise PredictTimeoutError(
                None, "RequestTimeout", f"could not connect within {timeout:g} s", url=url
            ) from exc
        raise _unreachable(url, exc) from exc
    request_id = headers.get(REQUEST_ID_HEADER)
    if status < 300:
        return PredictResponse(status, content, headers.get("content-type", ""), request_id)
    raise _error_of(status, content, url, request_id)


def _unreachable(url: str, exc: Exception) -> PredictError:
    return PredictError(
        None,
        "ConnectionError",
        f"{type(exc).__name__}: {exc}",
        url=url,
        hint="Check the deployment URL and that the service is reachable.",
    )


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
