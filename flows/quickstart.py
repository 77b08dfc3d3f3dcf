"""Quickstart: train a small scikit-learn pipeline and prepare it for OCI Data Science.

Runs against the embedded local OCI service (no cloud account needed): it resolves the conda
service pack and checks it exists in object storage, like the real service would.

    python -m ocimodel.flows.quickstart [--artifact-dir DIR] [--data-dir DIR]
"""

from __future__ import annotations

import argparse
import os
from typing import Any

from prefect import flow, get_run_logger

from ocimodel.flows.prepare_model import prepare_model
from ocimodel.tasks.verify import verify_artifact

CONDA_SLUG = "generalml_p311_cpu_x86_64_v1"


def train_model() -> tuple[Any, Any, Any]:
    """A scaler + logistic regression pipeline on the iris data set."""
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = load_iris(return_X_y=True, as_frame=True)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=300)).fit(X, y)
    return model, X, y


@flow(name="quickstart")
def quickstart(artifact_dir: str) -> dict[str, Any]:
    """Trains, prepares and verifies the model; returns the folder and the predictions."""
    logger = get_run_logger()
    model, X, y = train_model()
    logger.info("Trained %s on %d rows", type(model).__name__, len(X))
    folder = prepare_model(
        model,
        artifact_dir,
        inference_conda_env=CONDA_SLUG,
        X_sample=X.head(100),
        y_sample=y.head(100),
        use_case_type="multinomial_classification",
        force_overwrite=True,
    )
    sample = X.sample(5, random_state=0)
    result = verify_artifact(folder, sample)
    return {
        "artifact_dir": folder,
        "sample": sample,
        "verified": result["prediction"],
        "estimator": model.predict(sample).tolist(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--artifact-dir", default="quickstart-artifact")
    parser.add_argument("--data-dir", default=".ocimodel-local", help="local OCI state folder")
    args = parser.parse_args(argv)
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")

    from ocimodel.introspect import ModelIntrospect
    from ocimodel.local.server import LocalOCI

    with LocalOCI(data_dir=args.data_dir, mode="thread") as local:
        os.environ.update(local.env())
        print(f"Local OCI service at {local.endpoint}")
        out = quickstart(os.path.abspath(args.artifact_dir))
        intro = ModelIntrospect(out["artifact_dir"])
        intro.run()
    print("\nIntrospection:")
    print(intro.to_dataframe()[["Test key", "Result"]].to_string(index=False))
    print(f"\nArtifact: {out['artifact_dir']}")
    print(f"Predictions from score.py : {out['verified']}")
    print(f"Predictions from the model: {out['estimator']}")
    same = out["verified"] == out["estimator"]
    print("Match." if same else "MISMATCH between score.py and the model.")
    return 0 if same and intro.failures == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
