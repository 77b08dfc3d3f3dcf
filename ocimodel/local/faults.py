"""Placeholder for fault injection (replaced by the real middleware)."""

from __future__ import annotations


class FaultMiddleware:
    """Pass-through ASGI middleware."""

    def __init__(self, app, state):
        self.app, self.state = app, state

    async def __call__(self, scope, receive, send):
        await self.app(scope, receive, send)
