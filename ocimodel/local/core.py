"""Shared plumbing of the local OCI service: OCI-shaped errors and responses, ids, time, paging.

Every route module of ``ocimodel.local`` builds on these so that all three APIs answer the
way the real service does (``{"code","message"}`` errors, ``opc-request-id`` everywhere,
``opc-next-page`` paging, RFC 3339 times).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import secrets
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import anyio
from starlette.requests import Request
from starlette.responses import Response

REQUEST_ID_HEADER = "opc-request-id"
BODY_IDLE_TIMEOUT_KEY = "body_idle_timeout_seconds"
BODY_IDLE_TIMEOUT = 5.0
CODE_OF_STATUS = {
    400: "InvalidParameter",
    401: "NotAuthenticated",
    404: "NotAuthorizedOrNotFound",
    405: "MethodNotAllowed",
    409: "IncorrectState",
    412: "PreconditionFailed",
    413: "RequestEntityTooLarge",
    429: "TooManyRequests",
    500: "InternalServerError",
    502: "BadGateway",
    503: "ServiceUnavailable",
    504: "GatewayTimeout",
}


class OCIError(Exception):
    """An error answered to the client as OCI does: HTTP status plus ``{"code","message"}``."""

    def __init__(self, status: int, code: str, message: str, headers: dict | None = None):
        super().__init__(f"{status} {code}: {message}")
        self.status, self.code, self.message = status, code, message
        self.headers = headers or {}


def not_found(what: str, ident: str) -> OCIError:
    """404 as OCI answers both 'absent' and 'not yours'."""
    return OCIError(
        404,
        "NotAuthorizedOrNotFound",
        f"{what} {ident} not found or you are not authorized to access it.",
    )


def invalid(field: str, message: str) -> OCIError:
    """400 InvalidParameter naming the field."""
    return OCIError(400, "InvalidParameter", f"{field}: {message}")


def missing(field: str) -> OCIError:
    """400 MissingParameter naming the field."""
    return OCIError(400, "MissingParameter", f"{field} is required.")


def incorrect_state(message: str) -> OCIError:
    """409 IncorrectState for a transition the resource's lifecycle state does not allow."""
    return OCIError(409, "IncorrectState", message)


def request_id() -> str:
    """A fresh opc-request-id in the service's format."""
    return uuid.uuid4().hex.upper() + "/" + uuid.uuid4().hex.upper()[:16]


def new_ocid(kind: str, region: str = "local") -> str:
    """A unique OCID of the given resource kind, e.g. ``ocid1.datasciencemodel.oc1.local.xxx``."""
    return f"ocid1.{kind}.oc1.{region}.{secrets.token_hex(30)}"


def now() -> _dt.datetime:
    """The current UTC time, to millisecond precision as the service reports it."""
    t = _dt.datetime.now(_dt.timezone.utc)
    return t.replace(microsecond=(t.microsecond // 1000) * 1000)


def rfc3339(t: _dt.datetime | None = None) -> str:
    """RFC 3339 UTC timestamp as the OCI APIs return it (``2026-11-25T16:00:00.123Z``)."""
    t = t or now()
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def http_date(t: _dt.datetime | None = None) -> str:
    """RFC 7231 date for headers such as last-modified."""
    t = t or now()
    return t.strftime("%a, %d %b %Y %H:%M:%S GMT")


def etag_of(data: Any) -> str:
    """A strong etag derived from a JSON-able value."""
    raw = json.dumps(data, sort_keys=True, default=str).encode()
    return hashlib.sha256(raw).hexdigest()[:32]


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """A JSON response carrying a fresh opc-request-id."""
    hdrs = {"opc-request-id": request_id()}
    if headers:
        hdrs.update({k: v for k, v in headers.items() if v is not None})
    content = b"" if body is None else json.dumps(body, default=str).encode()
    return Response(content, status_code=status, headers=hdrs, media_type="application/json")


def empty_response(status: int = 204, headers: dict[str, str] | None = None) -> Response:
    """A body-less response carrying a fresh opc-request-id."""
    hdrs = {"opc-request-id": request_id()}
    if headers:
        hdrs.update({k: v for k, v in headers.items() if v is not None})
    return Response(b"", status_code=status, headers=hdrs)


def error_response(err: OCIError) -> Response:
    """Render an :class:`OCIError` the way OCI does."""
    return json_response({"code": err.code, "message": err.message}, err.status, err.headers)


@dataclass(frozen=True)
class Caller:
    """Who signed the request: set on ``request.state.caller`` by the auth middleware."""

    tenancy: str
    user: str
    kind: str = "api_key"  # api_key | session_token | resource_principal


def caller(request: Request) -> Caller:
    """The authenticated caller of a request (the auth middleware guarantees one)."""
    return request.state.caller


def parse_body(raw: bytes) -> dict:
    """Parse a JSON object request body (``{}`` when empty) or raise 400 InvalidParameter."""
    if not raw:
        return {}
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise OCIError(400, "InvalidParameter", f"Request body is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise OCIError(400, "InvalidParameter", "Request body must be a JSON object.")
    return data


async def json_body(request: Request) -> dict:
    """Read and parse a JSON object body or raise 400 InvalidParameter."""
    return parse_body(await request.body())


def declared_length(request: Request) -> int | None:
    """The request's Content-Length, None when absent; 400 naming it when not a number."""
    raw = request.headers.get("content-length")
    if raw is None:
        return None
    if not raw.strip().isdigit():
        raise invalid("Content-Length", f"{raw!r} is not a number of bytes.")
    return int(raw)


def body_idle_timeout(extras: dict) -> float:
    """Seconds a request body may pause before the service gives up on it."""
    return float(extras.get(BODY_IDLE_TIMEOUT_KEY, BODY_IDLE_TIMEOUT))


def stalled_body(received: int, declared: int | None, idle: float) -> OCIError:
    """400 for a request body that stopped arriving before it was complete.

    The answer closes the connection: bytes the client sends next would otherwise be taken for
    the rest of this body, and its next request would never be answered.
    """
    expected = f"of the {declared} declared by Content-Length " if declared else ""
    return OCIError(
        400,
        "InvalidParameter",
        f"Content-Length: the request body stopped after {received} bytes {expected}and "
        f"nothing more came for {idle:g} s; send the whole body (a retried request must rewind "
        "its body stream first).",
        headers={"connection": "close"},
    )


async def body_stream(request: Request) -> AsyncIterator[bytes]:
    """The request body in chunks; 400 when it stops arriving before it is complete.

    A client that declares a Content-Length and then sends fewer bytes (a retried request whose
    body stream was not rewound, say) would otherwise hold the connection until its own read
    timeout; the service answers once no byte has come for ``body_idle_timeout_seconds``.
    """
    state = getattr(request.app.state, "service", None)
    idle = body_idle_timeout(getattr(state, "extras", {}))
    declared = declared_length(request)
    received = 0
    chunks = request.stream().__aiter__()
    while True:
        try:
            with anyio.fail_after(idle):
                chunk = await chunks.__anext__()
        except StopAsyncIteration:
            return
        except TimeoutError:
            raise stalled_body(received, declared, idle) from None
        received += len(chunk)
        yield chunk


def paginate(request: Request, items: list, default_limit: int = 100) -> tuple[list, str | None]:
    """Slice a list by the ``limit``/``page`` query parameters; return (page, next-page token)."""
    try:
        limit = int(request.query_params.get("limit", default_limit))
        start = int(request.query_params.get("page", "0") or 0)
    except ValueError as exc:
        raise OCIError(400, "InvalidParameter", f"limit/page must be integers: {exc}") from exc
    if limit < 1 or limit > 1000:
        raise invalid("limit", "must be between 1 and 1000.")
    page = items[start : start + limit]
    nxt = str(start + limit) if start + limit < len(items) else None
    return page, nxt


def list_response(request: Request, items: list, default_limit: int = 100) -> Response:
    """A bare JSON array, paged with the ``opc-next-page`` header as the OCI list APIs do."""
    page, nxt = paginate(request, items, default_limit)
    return json_response(page, headers={"opc-next-page": nxt} if nxt else None)
