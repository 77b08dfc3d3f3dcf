"""The Starlette application of the local OCI service: all three APIs on one port.

Paths do not collide: Object Storage lives under ``/n``, Data Science under ``/20190101``,
predict under ``/{deploymentOcid}/predict`` and the admin API under ``/_admin``.
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response

from . import admin, datascience, deployments, objectstorage
from .auth import AuthMiddleware
from .core import OCIError, error_response
from .faults import FaultMiddleware
from .state import ServiceState


async def _oci_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, OCIError)
    return error_response(exc)


def create_app(state: ServiceState) -> Starlette:
    """Build the ASGI app serving ``state``."""
    routes = [
        *admin.routes(state),
        *objectstorage.routes(state),
        *datascience.routes(state),
        *deployments.routes(state),
    ]
    app = Starlette(routes=routes, exception_handlers={OCIError: _oci_error})
    app.state.service = state
    # Outermost first: faults see every request, then signatures are checked.
    app.add_middleware(AuthMiddleware, state=state)
    app.add_middleware(FaultMiddleware, state=state)
    return app
