"""Object Storage and Data Science fixtures shared by the integration tests that drive the local
service through the real oci SDK.

Helpers these tests import by name live beside this file: ``sdk_calls.py`` (no-retry strategy,
work request end states, expected ServiceErrors) and ``deployment_support.py`` (model
artifacts and deployment requests)."""

from __future__ import annotations

import uuid

import oci.data_science.models as dsm
import pytest
from oci.data_science import DataScienceClient
from sdk_calls import NO_RETRY


@pytest.fixture(scope="module")
def ds(local_oci) -> DataScienceClient:
    """The real DataScienceClient pointed at the local service, with the SDK's default retries."""
    return local_oci.client(DataScienceClient)


@pytest.fixture(scope="module")
def strict(local_oci) -> DataScienceClient:
    """A DataScienceClient that does not retry, so 409s and 412s surface at once."""
    return local_oci.client(DataScienceClient, retry_strategy=NO_RETRY)


@pytest.fixture
def compartment() -> str:
    """A fresh compartment OCID: lists in it show only what the test created."""
    return f"ocid1.compartment.oc1..{uuid.uuid4().hex}"


@pytest.fixture
def project(ds, compartment) -> dsm.Project:
    """A new project in ``compartment``."""
    details = dsm.CreateProjectDetails(compartment_id=compartment, display_name="proj")
    return ds.create_project(details).data


@pytest.fixture
def model(ds, compartment, project) -> dsm.Model:
    """A new model (no artifact yet) in ``project``."""
    details = dsm.CreateModelDetails(compartment_id=compartment, project_id=project.id)
    return ds.create_model(details).data


@pytest.fixture(scope="module")
def deploy_place(local_oci, ds):
    """``(compartment_id, project_id)`` of a fresh compartment with a project, for a whole
    module: ocimodel's default auth points at the local service and save and deploy find both
    in the environment (PROJECT_COMPARTMENT_OCID, PROJECT_OCID); conda index overrides and
    OCI_IAM_TYPE are cleared. Module-scoped, so a module can share its deployments."""
    from ocimodel import conda
    from ocimodel.oci import auth as oci_auth

    patch = pytest.MonkeyPatch()
    for name, value in local_oci.env().items():
        patch.setenv(name, value)
    for name in (conda.ENV_INDEX_URI, conda.ENV_NAMESPACE, conda.ENV_BUCKET, "OCI_IAM_TYPE"):
        patch.delenv(name, raising=False)
    compartment = f"ocid1.compartment.oc1..{uuid.uuid4().hex}"
    details = dsm.CreateProjectDetails(compartment_id=compartment, display_name="deploy")
    project = ds.create_project(details).data.id
    patch.setenv("PROJECT_COMPARTMENT_OCID", compartment)
    patch.setenv("PROJECT_OCID", project)
    oci_auth.reset_auth()
    yield compartment, project
    oci_auth.reset_auth()
    patch.undo()
