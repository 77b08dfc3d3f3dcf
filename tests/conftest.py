"""Fixtures for every test: one local OCI service and one Prefect test server per session, the
environments ocimodel's default auth sees (the local service, or no OCI at all), fast SDK
retries, a bucket, a compartment with a project, and the iris model the prepare tests fit.

This folder is on ``sys.path`` (pytest's default ``prepend`` import mode), so test modules
import the shared constants and helpers of ``prepare_support.py`` by name."""

from __future__ import annotations

import os

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
for _name in ("NO_PROXY", "no_proxy"):
    _hosts = [h for h in os.environ.get(_name, "").split(",") if h]
    os.environ[_name] = ",".join(dict.fromkeys([*_hosts, "127.0.0.1", "localhost"]))

import uuid  # noqa: E402

import oci  # noqa: E402
import pytest  # noqa: E402
from oci.object_storage.models import CreateBucketDetails  # noqa: E402

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


@pytest.fixture
def local_env(local_oci: LocalOCI, monkeypatch) -> LocalOCI:
    """ocimodel's default auth points at the local service through the environment alone.

    Conda pack index overrides and OCI_IAM_TYPE are cleared; the cached default auth is
    forgotten before and after the test."""
    from ocimodel import conda
    from ocimodel.oci import auth as oci_auth

    for name, value in local_oci.env().items():
        monkeypatch.setenv(name, value)
    for name in (conda.ENV_INDEX_URI, conda.ENV_NAMESPACE, conda.ENV_BUCKET, "OCI_IAM_TYPE"):
        monkeypatch.delenv(name, raising=False)
    oci_auth.reset_auth()
    yield local_oci
    oci_auth.reset_auth()


@pytest.fixture
def offline(monkeypatch, tmp_path):
    """No OCI config at all: object storage is unreachable."""
    monkeypatch.setenv("OCI_CONFIG_FILE", str(tmp_path / "absent-config"))
    monkeypatch.delenv("OCIMODEL_SERVICE_ENDPOINT", raising=False)


@pytest.fixture(scope="session")
def prefect_harness():
    """A temporary Prefect API (SQLite) for the whole session, stopped at session end.

    Started by the first test that needs it (~10 s): every flow test (see
    tests/flows/conftest.py) and any other test that names this fixture."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=90):
        yield


@pytest.fixture(scope="module")
def iris():
    """(model, X, y): a scaler + logistic regression pipeline fitted on the iris DataFrame."""
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = load_iris(return_X_y=True, as_frame=True)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=300)).fit(X, y)
    return model, X, y


@pytest.fixture
def catalog_env(local_env, monkeypatch) -> tuple[str, str]:
    """``local_env`` plus a new project in a fresh compartment, both in the environment where
    save looks for them; returns ``(compartment_id, project_id)``."""
    from oci.data_science import DataScienceClient
    from oci.data_science.models import CreateProjectDetails

    compartment = f"ocid1.compartment.oc1..{uuid.uuid4().hex}"
    ds = local_env.client(DataScienceClient)
    project = ds.create_project(CreateProjectDetails(compartment_id=compartment)).data
    monkeypatch.setenv("PROJECT_COMPARTMENT_OCID", compartment)
    monkeypatch.setenv("PROJECT_OCID", project.id)
    return compartment, project.id


@pytest.fixture(scope="module")
def client(local_oci):
    """The real ObjectStorageClient pointed at the local service."""
    return local_oci.client(oci.object_storage.ObjectStorageClient)


@pytest.fixture(scope="module")
def namespace(client):
    """The local tenancy's Object Storage namespace."""
    return client.get_namespace().data


@pytest.fixture
def bucket(client, namespace, local_oci):
    """A fresh, empty bucket's name."""
    name = f"bucket-{uuid.uuid4().hex[:10]}"
    details = CreateBucketDetails(name=name, compartment_id=local_oci.config["tenancy"])
    client.create_bucket(namespace, details)
    return name
