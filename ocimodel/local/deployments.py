"""Placeholder: routes of the deployments part of the local OCI service."""

from __future__ import annotations

from starlette.routing import BaseRoute

from .state import ServiceState


def routes(state: ServiceState) -> list[BaseRoute]:
    """Routes served by this module."""
    return []
