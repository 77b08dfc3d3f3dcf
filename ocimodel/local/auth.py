"""Placeholder for request-signature verification (replaced by the real middleware)."""

from __future__ import annotations

from starlette.middleware.base import BaseHTTPMiddleware

from .core import Caller


class AuthMiddleware(BaseHTTPMiddleware):
    """Sets ``request.state.caller``; the real version verifies the OCI signature."""

    def __init__(self, app, state):
        super().__init__(app)
        self.state = state

    async def dispatch(self, request, call_next):
        request.state.caller = Caller("ocid1.tenancy.oc1..local", "ocid1.user.oc1..local")
        return await call_next(request)
