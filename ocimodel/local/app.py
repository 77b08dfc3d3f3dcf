"""The Starlette application of the local OCI service: all three APIs on one port.

Paths do not collide: Object Storage lives under ``/n``, Data Science under ``/20190101``,
predict under ``/{deploymentOcid}/predict`` and the admin API under ``/_admin``.
"""

from __future__ import annotations

import contextlib
import inspect
import logging
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from . import admin, blob_gc, datascience, deployments, objectstorage
from .auth import AuthMiddleware
from .core import CODE_OF_STATUS, REQUEST_ID_HEADER, OCIError, error_response, request_id
from .faults import FaultMiddleware
from .keys import keyring_of
from .state import ServiceState

log = logging.getLogger("ocimodel.local")


async def _oci_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, OCIError)
    return error_response(exc)


async def _client_gone(request: Request, exc: Exception) -> Response:
    log.debug("client disconnected during %s %s", request.method, request.url.path)
    return error_response(
        OCIError(400, "InvalidParameter", "The client disconnected before the body was complete.")
    )


async def _no_route(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = CODE_OF_STATUS.get(exc.status_code, "InvalidParameter")
    return error_response(
        OCIError(
            exc.status_code,
            code,
            f"No operation {request.method} {request.url.path} on the local OCI service.",
        )
    )


async def _internal_error(request: Request, exc: Exception) -> Response:
    log.error("unhandled error serving %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(
        OCIError(500, "InternalServerError", f"Internal error: {type(exc).__name__}.")
    )


async def run_hooks(state: ServiceState, name: str) -> None:
    """Run the ``state.extras[name]`` hooks (sync or async); shutdown hooks all run."""
    for hook in list(state.extras.get(name, [])):
        try:
            result = hook()
            if inspect.isawaitable(result):
                await result
        except Exception:
            if name != "shutdown":
                raise
            log.exception("shutdown hook %r failed", hook)


class RequestIdMiddleware:
    """Gives every response an ``opc-request-id``, as OCI does, whatever answered it."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def stamped(message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                if not any(name.lower() == b"opc-request-id" for name, _ in headers):
                    headers.append((REQUEST_ID_HEADER.encode(), request_id().encode()))
                    message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, stamped)


def create_app(state: ServiceState) -> Starlette:
    """Build the ASGI app serving ``state`` (its key ring is created or reused here)."""
    keyring_of(state)
    blob_gc.install(state)
    routes = [
        *admin.routes(state),
        *objectstorage.routes(state),
        *datascience.routes(state),
        *deployments.routes(state),
    ]

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await run_hooks(state, "startup")
        try:
            yield
        finally:
            await run_hooks(state, "shutdown")

    # Outermost first: request ids on everything, faults see every request, then signatures.
    app = Starlette(
        routes=routes,
        exception_handlers={
            OCIError: _oci_error,
            HTTPException: _no_route,
            ClientDisconnect: _client_gone,
            Exception: _internal_error,
        },
        middleware=[
            Middleware(RequestIdMiddleware),
            Middleware(FaultMiddleware, state=state),
            Middleware(AuthMiddleware, state=state),
        ],
        lifespan=lifespan,
    )
    app.state.service = state
    return app
