"""A storage endpoint whose host does not resolve fails at once, naming the fix; a failed
lookup is not remembered, so the next call looks the host up again."""

from __future__ import annotations

import socket

import pytest

from ocimodel.oci import storage
from ocimodel.oci.storage import EndpointNotResolvableError, ensure_endpoint_resolves, open_uri


def test_unresolvable_host_fails_fast_and_names_the_variable():
    with pytest.raises(EndpointNotResolvableError, match="OCIMODEL_SERVICE_ENDPOINT") as info:
        ensure_endpoint_resolves("https://objectstorage.nowhere.invalid")
    assert "objectstorage.nowhere.invalid" in str(info.value)


def test_loopback_and_ip_endpoints_pass():
    ensure_endpoint_resolves("http://127.0.0.1:1")
    ensure_endpoint_resolves("http://localhost:8080/")


def test_reading_through_an_unresolvable_endpoint_fails_before_any_request(oci_config):
    auth = {
        "config": oci_config,
        "client_kwargs": {"service_endpoint": "https://os.nowhere.invalid"},
    }
    # Without the check, the SDK would retry the name-resolution failure for ~90 s and then
    # raise its own connection error; the typed error proves the request was never sent.
    with pytest.raises(EndpointNotResolvableError):
        open_uri("oci://bucket@namespace/object", "rb", auth)


def test_a_host_that_failed_to_resolve_is_looked_up_again(monkeypatch):
    host = "objectstorage.flaky.example"
    calls = []

    def flaky(name, *args, **kwargs):
        calls.append(name)
        if len(calls) == 1:
            raise socket.gaierror(socket.EAI_AGAIN, "temporary failure")
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", 0))]

    monkeypatch.setattr(socket, "getaddrinfo", flaky)
    storage._RESOLVED_HOSTS.discard(host)
    with pytest.raises(storage.EndpointNotResolvableError):
        storage.ensure_endpoint_resolves(f"https://{host}")
    storage.ensure_endpoint_resolves(f"https://{host}")
    storage.ensure_endpoint_resolves(f"https://{host}")
    assert calls == [host, host]  # the success is remembered, the failure was not
    storage._RESOLVED_HOSTS.discard(host)
