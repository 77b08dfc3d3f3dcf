"""Quickstart: train a small scikit-learn pipeline and take it to a live endpoint.

Runs the ``prepare_save_deploy`` flow end to end against the embedded local OCI service (no
cloud account needed): it resolves the conda service pack through Object Storage, prepares and
introspects the artifact, saves it to the model catalog, deploys it (a real local model-server
process), waits for ACTIVE and predicts on five rows, which must match the estimator's own
predictions.

    python -m ocimodel.flows.quickstart [--artifact-dir DIR] [--data-dir DIR]

Every run starts from a fresh local service in a temporary folder, removed at exit. With
``--data-dir`` the service keeps its state there instead, and a re-run finds the same model and
deployment again.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import tempfile
import threading
from typing import Any

CONDA_SLUG = "generalml_p311_cpu_x86_64_v1"
NAME = "quickstart-iris"
POLL_INTERVAL = 0.5
"""Seconds between two reads of the deployment: the local service is quick to answer."""
MAX_WAIT_TIME = 120


def train_model() -> tuple[Any, Any, Any]:
    """A scaler + logistic regression pipeline on the iris data set."""
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = load_iris(return_X_y=True, as_frame=True)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=300)).fit(X, y)
    return model, X, y


def local_project(local: Any) -> tuple[str, str]:
    """(compartment, project) in the local service: the tenancy's root compartment and the
    quickstart's project, found again by name when the service kept its state."""
    from oci.data_science import DataScienceClient
    from oci.data_science.models import CreateProjectDetails

    compartment = local.config["tenancy"]
    ds = local.client(DataScienceClient)
    for project in ds.list_projects(compartment_id=compartment, display_name=NAME).data:
        if project.lifecycle_state == "ACTIVE":
            return compartment, project.id
    details = CreateProjectDetails(compartment_id=compartment, display_name=NAME)
    return compartment, ds.create_project(details).data.id


def quickstart(artifact_dir: str, compartment_id: str, project_id: str) -> dict[str, Any]:
    """Trains the model and runs prepare-save-deploy with a sample to predict on; returns the
    flow's result plus the estimator's own predictions on that sample."""
    from ocimodel.flows.prepare_save_deploy import prepare_save_deploy

    model, X, y = train_model()
    sample = X.sample(5, random_state=0)
    out = prepare_save_deploy(
        estimator=model,
        artifact_dir=artifact_dir,
        inference_conda_env=CONDA_SLUG,
        X_sample=X.head(100),
        y_sample=y.head(100),
        use_case_type="multinomial_classification",
        force_overwrite=True,
        model_display_name=NAME,
        deployment_display_name=NAME,
        compartment_id=compartment_id,
        project_id=project_id,
        max_wait_time=MAX_WAIT_TIME,
        poll_interval=POLL_INTERVAL,
        predict_data=sample,
    )
    return {**out, "estimator": model.predict(sample).tolist()}


def start_prefect_api() -> threading.Thread:
    """Starts Prefect's API in the background as the first flow run would (a temporary server
    unless PREFECT_API_URL names one), so its start-up overlaps the local service's and the
    training; join the thread before the flow runs."""

    def start() -> None:
        from prefect.client.orchestration import get_client

        with contextlib.suppress(Exception):  # the flow run starts it itself, or says why not
            get_client(sync_client=True)

    thread = threading.Thread(target=start, name="prefect-api-start", daemon=True)
    thread.start()
    return thread


def main(argv: list[str] | None = None) -> int:
    """Runs the quickstart; exit status 0 only when the endpoint predicts what the model does."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--artifact-dir", default="quickstart-artifact")
    parser.add_argument(
        "--data-dir", default=None, help="keep the local OCI state here (default: a fresh one)"
    )
    args = parser.parse_args(argv)
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    prefect_api = start_prefect_api()

    from ocimodel.local.server import LocalOCI

    with tempfile.TemporaryDirectory(prefix="ocimodel-quickstart-") as scratch:
        with LocalOCI(data_dir=args.data_dir or scratch, mode="thread") as local:
            os.environ.update(local.env())
            print(f"Local OCI service at {local.endpoint}")
            compartment, project = local_project(local)
            prefect_api.join()
            out = quickstart(os.path.abspath(args.artifact_dir), compartment, project)
    print(f"\nModel:      {out['model_id']}")
    print(f"Deployment: {out['deployment_id']}")
    print(f"Endpoint:   {out['url']}/predict")
    print(f"Predictions from the endpoint: {out['prediction']}")
    print(f"Predictions from the model:    {out['estimator']}")
    same = out["prediction"] == out["estimator"]
    print("Match." if same else "MISMATCH between the endpoint and the model.")
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
