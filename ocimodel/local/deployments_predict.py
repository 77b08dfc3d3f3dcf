"""The model deployment predict endpoint: ``POST /{modelDeploymentId}/predict``.

The signed request (verified by the auth middleware) is forwarded to one of the deployment's
healthy model servers, round-robin, within the service limits: a payload of at most 10 MB
(413 otherwise) and an answer within 60 s (504 otherwise). When every instance already has its
maximum of in-flight requests the answer is 429. A deployment that is not serving (INACTIVE,
FAILED, DELETING, DELETED) answers 404 NotAuthorizedOrNotFound, the status OCI documents for
predict, with a message naming the state; one still CREATING or UPDATING answers 503, which the
SDK retries.

The hot path reads no SQLite and opens no connection:

- A deployment's owner (its tenancy) never changes, so it is remembered after the first lookup.
  Whether the deployment serves is the engine's in-memory registry of live model servers
  (:meth:`ModelServers.pick`), which every lifecycle change updates. The store is read only for
  a deployment not seen yet, and to word an error (not serving, busy, starting).
- Each model server gets a pool of keep-alive connections (:class:`ServerPool`): a minimal
  HTTP/1.1 client on asyncio streams (``TCP_NODELAY``, as asyncio sets it on TCP sockets) for
  the one request shape the route sends to ``ocimodel.serve``. A general client costs about ten
  times its CPU per call (httpx: ~0.8 ms against ~0.08 ms measured), more than the whole
  route's budget. Pools are closed once their process has exited or the service stops.
- The endpoint is a plain ASGI app (:class:`PredictEndpoint`): no Request or Response objects.

The 60 s bound covers the whole exchange with the model server (send, wait, read).
"""

from __future__ import annotations

import asyncio
import inspect
import re
import time
from collections import deque

from oci.data_science.models import ModelDeployment as MD
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.routing import BaseRoute, Route
from starlette.types import Receive, Scope, Send

from .auth import AuthMiddleware, deadline
from .core import OCIError, not_found, request_id
from .deployments_engine import ENGINE_KEY, DeploymentEngine
from .deployments_runner import MAX_IN_FLIGHT_PER_INSTANCE, ModelServer
from .faults import faults_of
from .state import ServiceState

MAX_PAYLOAD_BYTES = 10 * 1024 * 1024
PREDICT_TIMEOUT = 60.0
TIMEOUT_KEY = "predict_timeout_seconds"
UPSTREAMS_KEY = "predict_upstreams"
UPSTREAM_KEEPALIVE_SECONDS = 60.0
"""Idle connections to a model server are closed after this long: before the server would close
them (``ocimodel.serve`` keeps them 75 s), so a reused connection is rarely a stale one."""
MAX_RESPONSE_HEAD = 64 * 1024

_STARTING = frozenset(
    {MD.LIFECYCLE_STATE_CREATING, MD.LIFECYCLE_STATE_UPDATING, MD.LIFECYCLE_STATE_ACTIVE}
)
_SMALL_BODY = 64 * 1024


class UpstreamError(Exception):
    """The model server's answer could not be read (connection lost, not HTTP/1.1)."""


class _Unanswered(UpstreamError):
    """The connection ended before any byte of an answer: on a reused connection, the server
    had closed it while idle and never saw the request."""


class _Connection:
    """One keep-alive connection to a model server."""

    __slots__ = ("reader", "writer", "idle_since")

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.reader, self.writer = reader, writer
        self.idle_since = 0.0

    def usable(self, now: float) -> bool:
        return (
            not self.writer.transport.is_closing()
            and not self.reader.at_eof()
            and now - self.idle_since < UPSTREAM_KEEPALIVE_SECONDS
        )

    def close(self) -> None:
        try:
            self.writer.transport.abort()  # nothing left to flush; never wait on the peer
        except RuntimeError:  # its event loop is already closed: so is the socket
            pass

    async def exchange(self, head: bytes, body: bytes) -> tuple[int, str, bytes, bool]:
        """Send one request; return (status, content type, content, connection reusable).

        Raises :class:`_Unanswered` when the connection ends before any byte of an answer,
        :class:`UpstreamError` when the answer breaks off or is not HTTP/1.x.
        """
        reader = self.reader
        try:
            if len(body) <= _SMALL_BODY:
                self.writer.write(head + body)
            else:
                self.writer.write(head)
                self.writer.write(body)
                await self.writer.drain()
            raw = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError as exc:
            if not exc.partial:
                raise _Unanswered("the connection closed without an answer") from exc
            raise UpstreamError(f"the connection closed mid-answer: {exc}") from exc
        except ConnectionError as exc:
            raise _Unanswered(f"the connection failed before an answer: {exc}") from exc
        try:
            status, headers, keep = _parse_head(raw)
            while 100 <= status < 200 and status != 101:  # interim answers come first
                status, headers, keep = _parse_head(await reader.readuntil(b"\r\n\r\n"))
            if status in (204, 304):
                content = b""
            elif headers.get("transfer-encoding", "").lower().endswith("chunked"):
                content = await _read_chunked(reader)
            elif "content-length" in headers:
                content = await reader.readexactly(int(headers["content-length"]))
            else:
                content, keep = await reader.read(), False  # delimited by the connection's end
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError) as exc:
            raise UpstreamError(f"the model server's answer broke off: {exc}") from exc
        return status, headers.get("content-type", "application/json"), content, keep


def _parse_head(raw: bytes) -> tuple[int, dict[str, str], bool]:
    """Status, lower-cased headers and keep-alive of an HTTP/1.x response head."""
    lines = raw.decode("latin-1").split("\r\n")
    version, _, rest = lines[0].partition(" ")
    if not version.startswith("HTTP/1.") or not rest[:3].isdigit():
        raise UpstreamError(f"the model server answered {lines[0][:80]!r}, not HTTP/1.x")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    conn = headers.get("connection", "").lower()
    keep = "close" not in conn if version == "HTTP/1.1" else "keep-alive" in conn
    return int(rest[:3]), headers, keep


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    parts = []
    while True:
        size_line = await reader.readuntil(b"\r\n")
        try:
            size = int(size_line.split(b";", 1)[0].strip(), 16)
        except ValueError as exc:
            raise UpstreamError(f"bad chunk size {size_line[:40]!r}") from exc
        if size == 0:
            while await reader.readuntil(b"\r\n") != b"\r\n":  # trailers
                pass
            return b"".join(parts)
        parts.append((await reader.readexactly(size + 2))[:-2])


class ServerPool:
    """Keep-alive connections to one model server, and the one request the route sends it."""

    def __init__(self, server: ModelServer):
        self.server = server
        self._port = server.port
        self._idle: deque[_Connection] = deque()
        self._head = (
            f"POST /predict HTTP/1.1\r\nhost: 127.0.0.1:{server.port}\r\n"
            "content-type: {ctype}\r\ncontent-length: {length}\r\n\r\n"
        )

    def _take(self) -> _Connection | None:
        now = time.monotonic()
        while self._idle:
            conn = self._idle.pop()  # most recently used first: least likely to be stale
            if conn.usable(now):
                return conn
            conn.close()
        return None

    def _give_back(self, conn: _Connection) -> None:
        if len(self._idle) >= MAX_IN_FLIGHT_PER_INSTANCE:
            conn.close()
            return
        conn.idle_since = time.monotonic()
        self._idle.append(conn)

    async def post(self, body: bytes, content_type: str) -> tuple[int, str, bytes]:
        """POST ``body`` to the server's ``/predict``; (status, content type, content).

        A reused connection that turns out closed before any byte of the answer came (the
        server dropped it while idle) is replaced once by a new one; other failures raise
        :class:`UpstreamError` or ``OSError``. The caller bounds the time.
        """
        head = self._head.format(ctype=content_type, length=len(body)).encode("latin-1")
        conn = self._take()
        if conn is not None:
            try:
                return await self._exchange(conn, head, body)
            except _Unanswered:
                pass  # the server dropped the idle connection: once more on a new one
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", self._port, limit=MAX_RESPONSE_HEAD
        )
        try:
            return await self._exchange(_Connection(reader, writer), head, body)
        except _Unanswered as exc:
            raise UpstreamError(str(exc)) from exc

    async def _exchange(
        self, conn: _Connection, head: bytes, body: bytes
    ) -> tuple[int, str, bytes]:
        try:
            status, ctype, content, keep = await conn.exchange(head, body)
        except BaseException:
            conn.close()
            raise
        if keep:
            self._give_back(conn)
        else:
            conn.close()
        return status, ctype, content

    def close(self) -> None:
        while self._idle:
            self._idle.pop().close()


class Upstreams:
    """The predict route's memory: a connection pool per model server, and the owner tenancy
    of every deployment seen (immutable, so never invalidated)."""

    def __init__(self) -> None:
        self._pools: dict[tuple[int, int], ServerPool] = {}
        self.owners: dict[str, str] = {}

    def pool(self, server: ModelServer) -> ServerPool:
        """The connection pool of ``server``, made on first use."""
        key = (server.port, server.pid)
        pool = self._pools.get(key)
        if pool is None:
            self._prune()
            pool = self._pools[key] = ServerPool(server)
        return pool

    def _prune(self) -> None:
        """Close the pools of model servers whose process has exited."""
        for key, pool in list(self._pools.items()):
            if not pool.server.alive():
                del self._pools[key]
                pool.close()

    def close(self) -> None:
        """Close every pool (the service is stopping)."""
        pools = list(self._pools.values())
        self._pools.clear()
        for pool in pools:
            pool.close()


def upstreams_of(state: ServiceState) -> Upstreams:
    """The predict route's clients and owner cache of a service (closed at its shutdown)."""
    upstreams = state.extras.get(UPSTREAMS_KEY)
    if upstreams is None:
        upstreams = state.extras[UPSTREAMS_KEY] = Upstreams()
        state.extras.setdefault("shutdown", []).append(upstreams.close)
    return upstreams


def _too_large() -> OCIError:
    return OCIError(
        413,
        "PayloadTooLarge",
        f"The prediction payload exceeds the {MAX_PAYLOAD_BYTES // (1024 * 1024)} MB limit; "
        "send smaller batches.",
    )


async def _read_limited(receive: Receive, declared: bytes | None) -> bytes:
    """The request body, refusing more than :data:`MAX_PAYLOAD_BYTES` (413).

    Read from the ASGI messages directly: the auth middleware has already checked the signed
    body and hands it over in one message.
    """
    if declared and declared.isdigit() and int(declared) > MAX_PAYLOAD_BYTES:
        raise _too_large()
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":  # http.disconnect
            raise ClientDisconnect()
        chunk = message.get("body", b"")
        if chunk:
            size += len(chunk)
            if size > MAX_PAYLOAD_BYTES:
                raise _too_large()
            chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _check_owner(engine: DeploymentEngine, upstreams: Upstreams, dep_id: str, tenancy: str):
    """404 unless the deployment exists, is not DELETED and belongs to ``tenancy``.

    Returns the deployment document when it had to be read, else None (known owner).
    """
    owner = upstreams.owners.get(dep_id)
    if owner is not None:
        if owner != tenancy:
            raise not_found("Model deployment", dep_id)
        return None
    doc = engine.find(dep_id, tenancy)
    if doc is None or doc["lifecycleState"] == MD.LIFECYCLE_STATE_DELETED:
        raise not_found("Model deployment", dep_id)
    upstreams.owners[dep_id] = tenancy
    return doc


def _no_server(engine: DeploymentEngine, dep_id: str, doc: dict | None) -> OCIError:
    """Why no model server can take the request: 429 busy, 503 starting, 404 not serving."""
    if doc is None:
        doc = engine.find(dep_id, None)
    if doc is None or doc["lifecycleState"] == MD.LIFECYCLE_STATE_DELETED:
        return not_found("Model deployment", dep_id)
    lifecycle = doc["lifecycleState"]
    if engine.servers.has_live(dep_id):
        return OCIError(
            429,
            "TooManyRequests",
            f"All instances of model deployment {dep_id} are busy "
            f"({MAX_IN_FLIGHT_PER_INSTANCE} requests each); retry later or add instances.",
        )
    if lifecycle in _STARTING:
        state_note = (
            "has no healthy model server right now"
            if lifecycle == MD.LIFECYCLE_STATE_ACTIVE
            else f"is {lifecycle} and its model servers are starting"
        )
        return OCIError(
            503, "ServiceUnavailable", f"Model deployment {dep_id} {state_note}; retry shortly."
        )
    return OCIError(
        404,
        "NotAuthorizedOrNotFound",
        f"Model deployment {dep_id} is {lifecycle} and serves no predictions; activate it first.",
    )


class PredictEndpoint:
    """``POST /{id}/predict``: forward one prediction to a healthy model server of the
    deployment.

    A plain ASGI endpoint rather than a request/response function: the hot path builds no
    Request or Response object, and sends the answer in two prebuilt ASGI messages. Errors are
    raised as :class:`OCIError` and answered by the app's handler, as on every other route.
    """

    def __init__(self, state: ServiceState):
        self.state = state
        self.upstreams = upstreams_of(state)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.serve(scope["path_params"]["id"], scope, receive, send)

    async def serve(self, dep_id: str, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer one authenticated predict request for deployment ``dep_id``."""
        state = self.state
        engine: DeploymentEngine = state.extras[ENGINE_KEY]
        upstreams = self.upstreams
        doc = _check_owner(engine, upstreams, dep_id, scope["state"]["caller"].tenancy)
        length = content_type = request_id_in = None
        for name, value in scope["headers"]:
            if name == b"content-length":
                length = value
            elif name == b"content-type":
                content_type = value
            elif name == b"opc-request-id":
                request_id_in = value
        body = await _read_limited(receive, length)
        server = engine.servers.pick(dep_id)
        if server is None:
            raise _no_server(engine, dep_id, doc)
        timeout = float(state.extras.get(TIMEOUT_KEY, PREDICT_TIMEOUT))
        ctype = content_type.decode("latin-1") if content_type else "application/json"
        try:
            async with deadline(timeout):
                status, media_type, content = await upstreams.pool(server).post(body, ctype)
        except TimeoutError as exc:
            raise OCIError(
                504,
                "GatewayTimeout",
                f"The model did not answer within {timeout:g} s; make predict() faster or "
                "send smaller batches.",
            ) from exc
        except (OSError, UpstreamError) as exc:
            raise OCIError(
                503, "ServiceUnavailable", f"The model server could not be reached: {exc}"
            ) from exc
        finally:
            engine.servers.release(server)
        if media_type.startswith("text/") and "charset=" not in media_type.lower():
            media_type += "; charset=utf-8"  # as a Starlette Response would
        headers = [
            (b"opc-request-id", request_id_in or request_id().encode()),
            (b"content-type", media_type.encode("latin-1")),
        ]
        if status >= 200 and status not in (204, 304):
            headers.append((b"content-length", str(len(content)).encode()))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": content})


def predict_route(state: ServiceState) -> list[BaseRoute]:
    """The predict routes (plain and response-stream variants)."""
    endpoint = PredictEndpoint(state)
    return [Route(path, endpoint, methods=["POST"]) for path in PREDICT_PATHS]


PREDICT_PATHS = ("/{id}/predict", "/{id}/predictWithResponseStream")
_PREDICT_PATH = re.compile(r"/([^/]+)/(?:predict|predictWithResponseStream)")


class PredictFastPath:
    """The service's outermost ASGI layer: a predict request skips the generic stack.

    ``POST /{id}/predict`` goes through the same signature check as every route
    (:class:`AuthMiddleware`) straight to :class:`PredictEndpoint`, its errors answered by the
    app's own exception handlers, without the Starlette router (which tries every route in
    turn: the predict routes come last of ~50) and the app's generic middleware. Everything
    else goes to the app; so does every request while fault rules are armed (they then apply
    to predict as to any route), and any path another route claims (``/n/predict`` is an
    Object Storage namespace).
    """

    def __init__(self, app: Starlette, state: ServiceState):
        self.app = app
        self.faults = faults_of(state)
        self.endpoint = PredictEndpoint(state)
        self.handlers = app.exception_handlers
        self.reserved = frozenset(_first_segments(app.routes))
        self.authenticated = AuthMiddleware(self._answer, state)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST" and not self.faults.active:
            match = _PREDICT_PATH.fullmatch(scope["path"])
            if match is not None and match[1] not in self.reserved:
                await self.authenticated(scope, receive, send)
                return
        await self.app(scope, receive, send)

    async def _answer(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await self.endpoint.serve(scope["path"].split("/", 2)[1], scope, receive, send)
        except Exception as exc:
            handlers = self.handlers
            handler = next((handlers[c] for c in type(exc).__mro__ if c in handlers), None)
            if handler is None:
                raise
            response = handler(Request(scope, receive), exc)
            if inspect.isawaitable(response):
                response = await response
            await response(scope, receive, send)


def _first_segments(routes: list[BaseRoute]) -> set[str]:
    """The literal first path segments of ``routes`` (``n``, ``20190101``, ``_admin``...)."""
    out = set()
    for route in routes:
        first = getattr(route, "path", "").lstrip("/").split("/", 1)[0]
        if first and "{" not in first:
            out.add(first)
    return out
