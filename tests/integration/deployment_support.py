"""Model artifacts and deployment requests shared by the model-deployment integration tests."""

from __future__ import annotations

import textwrap
import zipfile
from pathlib import Path

import cloudpickle
import oci
import oci.data_science.models as dsm
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

SKLEARN_SCORE = """
import os
import cloudpickle
import numpy as np

_MODEL = None

def load_model():
    global _MODEL
    with open(os.path.join(os.path.dirname(os.path.realpath(__file__)), "model.pkl"), "rb") as f:
        _MODEL = cloudpickle.load(f)
    return _MODEL

def predict(data, model=None):
    model = model or _MODEL or load_model()
    rows = np.asarray(data["instances"], dtype=float)
    return {"prediction": model.predict(rows).tolist()}
"""

BROKEN_SCORE = """
def load_model():
    raise RuntimeError("model.pkl is corrupt: cannot load the estimator")

def predict(data, model=None):
    return {"prediction": None}
"""

ECHO_SCORE = """
import os, time

def load_model():
    return "echo"

def predict(data, model=None):
    if isinstance(data, (bytes, bytearray)):
        return {"bytes": len(data), "pid": os.getpid()}
    if isinstance(data, dict) and data.get("fail"):
        raise ValueError("predict was asked to fail")
    if isinstance(data, dict) and data.get("wait_for"):
        deadline = time.monotonic() + 30
        while not os.path.exists(data["wait_for"]) and time.monotonic() < deadline:
            time.sleep(0.02)
    return {"echo": data, "pid": os.getpid()}
"""


def zip_artifact(directory: Path, files: dict[str, str | bytes]) -> Path:
    """Zip ``files`` (name -> content) at the archive root; return the zip's path."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "artifact.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, content in files.items():
            data = textwrap.dedent(content).encode() if isinstance(content, str) else content
            zf.writestr(name, data)
    return path


def sklearn_artifact(directory: Path) -> tuple[Path, LogisticRegression, list[list[float]]]:
    """A trained iris classifier zipped with its score.py, the model, and sample rows."""
    X, y = load_iris(return_X_y=True)
    model = LogisticRegression(max_iter=500).fit(X, y)
    rows = X[[0, 60, 120, 10]].tolist()
    zipped = zip_artifact(
        directory, {"score.py": SKLEARN_SCORE, "model.pkl": cloudpickle.dumps(model)}
    )
    return zipped, model, rows


def create_model(ds, compartment_id: str, project_id: str, artifact_zip: Path) -> str:
    """A catalog model holding ``artifact_zip``, through the real DataScienceClient."""
    model = ds.create_model(
        dsm.CreateModelDetails(
            compartment_id=compartment_id, project_id=project_id, display_name="deploy-test"
        )
    ).data
    with open(artifact_zip, "rb") as fh:
        ds.create_model_artifact(
            model.id, fh, content_disposition='attachment; filename="artifact.zip"'
        )
    return model.id


def deployment_details(
    compartment_id: str,
    project_id: str,
    model_id: str,
    *,
    instances: int = 1,
    environment: dsm.ModelDeploymentEnvironmentConfigurationDetails | None = None,
    display_name: str = "deployment-under-test",
) -> dsm.CreateModelDeploymentDetails:
    """A SINGLE_MODEL deployment on a flex shape with a fixed instance count."""
    return dsm.CreateModelDeploymentDetails(
        display_name=display_name,
        description="served by ocimodel.local",
        compartment_id=compartment_id,
        project_id=project_id,
        model_deployment_configuration_details=dsm.SingleModelDeploymentConfigurationDetails(
            deployment_type="SINGLE_MODEL",
            model_configuration_details=dsm.ModelConfigurationDetails(
                model_id=model_id,
                instance_configuration=dsm.InstanceConfiguration(
                    instance_shape_name="VM.Standard.E4.Flex",
                    model_deployment_instance_shape_config_details=(
                        dsm.ModelDeploymentInstanceShapeConfigDetails(ocpus=1, memory_in_gbs=16)
                    ),
                ),
                scaling_policy=dsm.FixedSizeScalingPolicy(
                    policy_type="FIXED_SIZE", instance_count=instances
                ),
                bandwidth_mbps=10,
            ),
            environment_configuration_details=environment
            or dsm.DefaultModelDeploymentEnvironmentConfigurationDetails(
                environment_configuration_type="DEFAULT",
                environment_variables={"WEB_CONCURRENCY": "1"},
            ),
        ),
        category_log_details=dsm.CategoryLogDetails(
            access=dsm.LogDetails(
                log_id="ocid1.log.oc1..access", log_group_id="ocid1.loggroup.oc1..group"
            ),
            predict=dsm.LogDetails(
                log_id="ocid1.log.oc1..predict", log_group_id="ocid1.loggroup.oc1..group"
            ),
        ),
        freeform_tags={"purpose": "test"},
    )


def wait_work_request(ds, wr_id: str, timeout: float = 120) -> dsm.WorkRequest:
    """Poll a work request until it finishes (SUCCEEDED, FAILED or CANCELED)."""
    return oci.wait_until(
        ds,
        ds.get_work_request(wr_id),
        evaluate_response=lambda r: r.data.status in ("SUCCEEDED", "FAILED", "CANCELED"),
        max_interval_seconds=0.2,
        max_wait_seconds=timeout,
    ).data


def create_and_wait(ds, details) -> tuple[str, dsm.WorkRequest]:
    """Create a deployment through the SDK's composite waiter; return its id and work request."""
    composite = oci.data_science.DataScienceClientCompositeOperations(ds)
    done = composite.create_model_deployment_and_wait_for_state(
        details,
        wait_for_states=["SUCCEEDED", "FAILED"],
        waiter_kwargs={"max_interval_seconds": 0.2, "max_wait_seconds": 120},
    )
    wr = done.data
    dep_id = next(r.identifier for r in wr.resources if r.entity_type == "modelDeployment")
    return dep_id, wr


def server_pids(svc, dep_id: str) -> list[int]:
    """The process ids of a deployment's local model servers (admin API)."""
    return [s["pid"] for s in svc.admin("GET", f"/_admin/modelDeployments/{dep_id}/servers")]
