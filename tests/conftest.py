"""Shared fixtures: one local OCI service per test session, its config, fast SDK retries."""

from __future__ import annotations

import os

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
for _name in ("NO_PROXY", "no_proxy"):
    _hosts = [h for h in os.environ.get(_name, "").split(",") if h]
    os.environ[_name] = ",".join(dict.fromkeys([*_hosts, "127.0.0.1", "localhost"]))

import pytest  # noqa: E402

from ocimodel.local.server import LocalOCI, fast_retry_strategy  # noqa: E402


@pytest.fixture(scope="session")
def local_oci(tmp_path_factory) -> LocalOCI:
    """The local OCI service, running in this process for the whole session."""
    svc = LocalOCI(data_dir=tmp_path_factory.mktemp("ocimodel-local"), mode="thread")
    svc.start()
    yield svc
    svc.stop()


@pytest.fixture
def oci_config(local_oci: LocalOCI) -> dict:
    """A copy of the local user's OCI config dict (profile DEFAULT of the service's config)."""
    return dict(local_oci.config)


@pytest.fixture
def local_auth(local_oci: LocalOCI) -> dict:
    """An ocimodel auth dict (config, signer, client_kwargs) for the local service."""
    return local_oci.auth()


@pytest.fixture
def local_faults(local_oci: LocalOCI) -> LocalOCI:
    """The local service, with every fault rule cleared after the test."""
    local_oci.clear_faults()
    yield local_oci
    local_oci.clear_faults()


@pytest.fixture
def fast_retry():
    """An oci RetryStrategy retrying 429/5xx/connection errors with waits under half a second."""
    return fast_retry_strategy()
