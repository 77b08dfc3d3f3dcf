"""OCI request-signature verification as a pure ASGI middleware.

Checks every request the way OCI does: the draft-cavage HTTP signature (RSA PKCS#1 v1.5 +
SHA-256) over the signed headers, with an API key (``tenancy/user/fingerprint``) or a session
token (``ST$<jwt>``); ``x-content-sha256`` against the body; a date within five minutes. Bodies the
SDK does not sign (``put_object``, ``upload_part``, ``create_model_artifact``...) stream through
untouched; signed bodies are read (up to a cap), hashed and replayed to the app.
"""

from __future__ import annotations

import asyncio
import base64
import email.utils
import hashlib
import re
import time
from collections.abc import Awaitable, Callable, MutableMapping
from contextlib import AbstractAsyncContextManager
from typing import Any

import anyio
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from .core import Caller, OCIError, body_idle_timeout, error_response, stalled_body
from .keys import KeyRing, TokenError, keyring_of
from .operations import has_unsigned_body
from .state import ServiceState

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

MAX_CLOCK_SKEW_SECONDS = 300
MAX_SIGNED_BODY_BYTES = 10 * 1024 * 1024
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
GENERIC_HEADERS = ("(request-target)", "host")
BODY_HEADERS = ("content-length", "content-type", "x-content-sha256")
SESSION_TOKEN_PREFIX = "ST$"

_PARAM = re.compile(r'(\w+)="([^"]*)"')


def deadline(seconds: float) -> AbstractAsyncContextManager[Any]:
    """``async with deadline(s):`` raises TimeoutError once the block has taken ``s`` seconds.

    asyncio's own timeout where there is one (Python 3.11+): it costs less than half of anyio's
    ``fail_after``, and one guards every signed request body. anyio's on Python 3.10.
    """
    timeout = getattr(asyncio, "timeout", None)
    return timeout(seconds) if timeout is not None else _AnyioDeadline(seconds)


class _AnyioDeadline:
    def __init__(self, seconds: float):
        self._scope = anyio.fail_after(seconds)

    async def __aenter__(self) -> None:
        self._scope.__enter__()

    async def __aexit__(self, *exc: Any) -> bool | None:
        return self._scope.__exit__(*exc)


def not_authenticated(message: str) -> OCIError:
    """401 NotAuthenticated, OCI's answer to any signature problem."""
    return OCIError(401, "NotAuthenticated", message)


def _parse_authorization(value: str) -> dict[str, str]:
    """The parameters of a ``Signature ...`` Authorization header."""
    scheme, _, rest = value.strip().partition(" ")
    if scheme.lower() != "signature":
        raise not_authenticated("The Authorization header must use the Signature scheme.")
    params = dict(_PARAM.findall(rest))
    for name in ("keyId", "signature"):
        if not params.get(name):
            raise not_authenticated(f"The Authorization header has no {name}.")
    if params.get("algorithm", "rsa-sha256").lower() != "rsa-sha256":
        raise not_authenticated(f"Unsupported signature algorithm {params['algorithm']!r}.")
    if params.get("version", "1") != "1":
        raise not_authenticated(f"Unsupported signature version {params['version']!r}.")
    return params


def _headers_of(scope: Scope) -> dict[str, str]:
    """Request headers by lower-case name (repeated headers joined as HTTP allows)."""
    out: dict[str, str] = {}
    for raw_name, raw_value in scope["headers"]:
        name = raw_name.decode("latin-1").lower()
        value = raw_value.decode("latin-1").strip()
        out[name] = f"{out[name]}, {value}" if name in out else value
    return out


def _request_target(scope: Scope) -> str:
    """``<method> <path?query>`` exactly as sent, from the raw path bytes."""
    path = (scope.get("raw_path") or scope["path"].encode()).decode("latin-1")
    query = scope.get("query_string", b"").decode("latin-1")
    if query:
        path = f"{path}?{query}"
    return f"{scope['method'].lower()} {path}"


def _check_date(headers: dict[str, str]) -> None:
    """Reject a missing, unparsable or more than five minutes skewed date."""
    value = headers.get("x-date") or headers.get("date")
    if not value:
        raise not_authenticated("The request has no date header.")
    try:
        sent = email.utils.parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError) as exc:
        raise not_authenticated(f"The date header {value!r} is not an HTTP date.") from exc
    skew = abs(time.time() - sent)
    if skew > MAX_CLOCK_SKEW_SECONDS:
        raise not_authenticated(
            f"The request date {value!r} is {int(skew)} s from the service clock; "
            f"at most {MAX_CLOCK_SKEW_SECONDS} s is allowed. Sign requests with a current date."
        )


def _signing_string(scope: Scope, headers: dict[str, str], signed: list[str]) -> bytes:
    """The draft-cavage signing string over the signed header list."""
    lines = []
    for name in signed:
        if name == "(request-target)":
            lines.append(f"(request-target): {_request_target(scope)}")
        elif name in headers:
            lines.append(f"{name}: {headers[name]}")
        else:
            raise not_authenticated(f"The signed header {name!r} is missing from the request.")
    return "\n".join(lines).encode("latin-1")


class AuthMiddleware:
    """Authenticates every HTTP request and sets ``scope["state"]["caller"]``."""

    def __init__(self, app, state: ServiceState, max_signed_body: int = MAX_SIGNED_BODY_BYTES):
        self.app = app
        self.state = state
        self.max_signed_body = max_signed_body
        self.keys: KeyRing = keyring_of(state)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        try:
            caller, receive = await self._authenticate(scope, receive)
        except OCIError as err:
            await error_response(err)(scope, receive, send)
            return
        scope.setdefault("state", {})["caller"] = caller
        await self.app(scope, receive, send)

    async def _authenticate(self, scope: Scope, receive: Receive) -> tuple[Caller, Receive]:
        headers = _headers_of(scope)
        auth = headers.get("authorization")
        if not auth:
            raise not_authenticated("The request is not signed: no Authorization header.")
        params = _parse_authorization(auth)
        signed = params.get("headers", "date").lower().split()
        method = scope["method"].upper()
        self._check_signed_headers(method, scope["path"], signed)
        _check_date(headers)
        caller, public_key = self._principal(params["keyId"])
        message = _signing_string(scope, headers, signed)
        try:
            signature = base64.b64decode(params["signature"], validate=True)
            public_key.verify(signature, message, padding.PKCS1v15(), hashes.SHA256())
        except (InvalidSignature, ValueError) as exc:
            raise not_authenticated(
                "The signature does not verify with the key of keyId; check the key_file and "
                "fingerprint of the config profile."
            ) from exc
        if "x-content-sha256" in signed:
            if has_unsigned_body(method, scope["path"]):
                receive = _hashing_receive(receive, headers.get("x-content-sha256", ""))
            else:
                receive = await self._checked_body(scope, headers, receive)
        return caller, receive

    def _check_signed_headers(self, method: str, path: str, signed: list[str]) -> None:
        """The header set OCI requires: generic always, body headers unless allowlisted."""
        required = list(GENERIC_HEADERS)
        if "date" not in signed and "x-date" not in signed:
            required.append("date")
        if method in BODY_METHODS and not has_unsigned_body(method, path):
            required.extend(BODY_HEADERS)
        absent = [h for h in required if h not in signed]
        if absent:
            raise not_authenticated(f"The signature must cover the headers {absent}.")

    def _principal(self, key_id: str) -> tuple[Caller, rsa.RSAPublicKey]:
        """The caller named by ``keyId`` and the public key its signature must verify with."""
        if key_id.startswith(SESSION_TOKEN_PREFIX):
            try:
                claims, pub = self.keys.tokens.verify(key_id[len(SESSION_TOKEN_PREFIX) :])
            except TokenError as exc:
                raise not_authenticated(str(exc)) from exc
            if claims.get("ptype") == "resource":
                return Caller(claims["res_tenant"], claims["sub"], "resource_principal"), pub
            return Caller(claims["tenant"], claims["sub"], "session_token"), pub
        key = self.keys.registry.lookup(key_id)
        if key is None:
            raise not_authenticated(
                "The keyId is not a known tenancy/user/fingerprint; use the config file the "
                "local service wrote, or add the user first."
            )
        return Caller(key.tenancy, key.user, "api_key"), key.public_key

    async def _checked_body(self, scope: Scope, headers: dict[str, str], receive: Receive):
        """Read a signed body, check it against x-content-sha256, and return a replaying receive."""
        declared = headers.get("content-length")
        declared_size = None
        if declared is not None:
            try:
                declared_size = int(declared)
            except ValueError as exc:
                raise OCIError(400, "InvalidParameter", "content-length is not a number") from exc
            if declared_size > self.max_signed_body:
                raise _too_large(self.max_signed_body)
        digest = hashlib.sha256()
        chunks: list[bytes] = []
        size = 0
        more = True
        idle = body_idle_timeout(self.state.extras)
        while more:
            try:
                async with deadline(idle):
                    message = await receive()
            except TimeoutError:
                raise stalled_body(size, declared_size, idle) from None
            if message["type"] == "http.disconnect":
                raise OCIError(400, "InvalidParameter", "The client disconnected mid-body.")
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_signed_body:
                raise _too_large(self.max_signed_body)
            digest.update(chunk)
            chunks.append(chunk)
            more = message.get("more_body", False)
        actual = base64.b64encode(digest.digest()).decode()
        if actual != headers.get("x-content-sha256"):
            raise not_authenticated("The body does not match the signed x-content-sha256.")
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        return replay


def _hashing_receive(receive: Receive, expected: str) -> Receive:
    """Stream a large body through, hashing it; the last chunk raises 401 if it was tampered."""
    digest = hashlib.sha256()

    async def checked() -> Message:
        message = await receive()
        if message["type"] == "http.request":
            digest.update(message.get("body", b""))
            if not message.get("more_body", False):
                if base64.b64encode(digest.digest()).decode() != expected:
                    raise not_authenticated("The body does not match the signed x-content-sha256.")
        return message

    return checked


def _too_large(limit: int) -> OCIError:
    return OCIError(
        413,
        "RequestEntityTooLarge",
        f"The request body exceeds {limit} bytes, the limit for signed request bodies.",
    )
