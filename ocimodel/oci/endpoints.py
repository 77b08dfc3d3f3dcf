"""Services and their endpoints: oci service names to SDK client classes and back, the endpoint
from $OCIMODEL_SERVICE_ENDPOINT, and the quick DNS check of an endpoint's host."""

from __future__ import annotations

import importlib
import os
import socket
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from ocimodel.errors import OcimodelError
from ocimodel.oci.credentials import OCIAuthError

ENV_SERVICE_ENDPOINT = "OCIMODEL_SERVICE_ENDPOINT"

SERVICES = ("data_science", "object_storage", "model_deployment")
"""Service names of the per-service endpoints we use: the oci SDK package of each client."""


class EndpointNotResolvableError(OcimodelError):
    """The Object Storage endpoint's host name does not resolve (no network, or a typo)."""


# --- endpoint resolution ----------------------------------------------------------------------

_RESOLVED_HOSTS: set[str] = set()
"""Hosts that resolved once; failures are not remembered, so a passing DNS outage heals."""
_RESOLVED_HOSTS_LIMIT = 256


def _resolves(host: str) -> bool:
    if host in _RESOLVED_HOSTS:
        return True
    try:
        socket.getaddrinfo(host, None)
    except (socket.gaierror, UnicodeError):
        return False
    if len(_RESOLVED_HOSTS) >= _RESOLVED_HOSTS_LIMIT:
        _RESOLVED_HOSTS.clear()
    _RESOLVED_HOSTS.add(host)
    return True


def ensure_endpoint_resolves(endpoint: str) -> None:
    """Fails at once when the endpoint's host does not resolve.

    The SDK retries name-resolution failures like any connection error, which costs about
    a minute and a half before the caller hears anything; a missing DNS name never heals
    within that time.
    """
    host = urlsplit(endpoint).hostname or ""
    if host and not _resolves(host):
        raise EndpointNotResolvableError(
            f"The Object Storage endpoint {endpoint} does not resolve (host {host!r}). Check "
            "the network, or, for the local service, set OCIMODEL_SERVICE_ENDPOINT to the "
            "endpoint `python -m ocimodel.local` printed (or pass auth with "
            "client_kwargs={'service_endpoint': ...})"
        )


# --- services ---------------------------------------------------------------------------------


def _client_class(client: type | str) -> type:
    """A client class, or one named by its oci package (``data_science`` -> DataScienceClient)."""
    if isinstance(client, type):
        return client
    if not isinstance(client, str) or not client.strip():
        raise OCIAuthError(
            f"client must be an oci client class or a service name such as 'data_science', "
            f"not {type(client).__name__}."
        )
    name = client.strip().lower().replace("-", "_")
    class_name = "".join(part.capitalize() for part in name.split("_")) + "Client"
    try:
        return getattr(importlib.import_module(f"oci.{name}"), class_name)
    except (ImportError, AttributeError):
        raise OCIAuthError(
            f"Unknown OCI service {client!r}: there is no oci.{name}.{class_name}. Use the "
            f"oci package name of the service, e.g. {', '.join(map(repr, SERVICES))}."
        ) from None


def _service_of(client_cls: type) -> str | None:
    """The service (oci package) of a client class: ``oci.data_science...`` -> data_science."""
    parts = getattr(client_cls, "__module__", "").split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "oci" else None


def _service_name(service: str) -> str:
    if not isinstance(service, str) or not service.strip():
        raise OCIAuthError(f"Endpoint service names are non-empty strings, not {service!r}.")
    return service.strip().lower().replace("-", "_")


def _endpoint_or_env(endpoint: str | None, client_kwargs: Mapping[str, Any] | None) -> str | None:
    """The endpoint given (as an argument or in client_kwargs), else $OCIMODEL_SERVICE_ENDPOINT."""
    if endpoint or (client_kwargs and client_kwargs.get("service_endpoint")):
        return endpoint
    return os.environ.get(ENV_SERVICE_ENDPOINT) or None
