"""The retraining flow under the session's Prefect test server and the local OCI: a candidate is
deployed only when it beats the deployed model on the same holdout, scored through the live
endpoint, and its scores are kept in the model's custom metadata and a table artifact."""

from __future__ import annotations

import numpy as np
import pytest
from prefect.artifacts import Artifact

from ocimodel.flows.operate import PREVIOUS_MODEL_TAG, served_model, tear_down
from ocimodel.flows.retrain import (
    METRICS_ARTIFACT_KEY,
    RETRAIN_TAG,
    RetrainError,
    retrain_and_deploy,
)
from ocimodel.oci import catalog
from ocimodel.oci import deployment as md

FAST = {"poll_interval": 1, "max_wait_time": 120}


@pytest.fixture
def datasets(tmp_path, iris, client, namespace, bucket):
    """Iris as CSV twice: with shuffled labels (a poor model learns from it) on disk, and
    clean in the local bucket (``oci://``)."""
    _, X, y = iris
    frame = X.assign(species=y.map({0: "setosa", 1: "versicolor", 2: "virginica"}))
    noisy = frame.assign(species=np.random.default_rng(7).permutation(frame["species"].values))
    noisy_path = tmp_path / "iris-noisy.csv"
    noisy.to_csv(noisy_path, index=False)
    client.put_object(namespace, bucket, "data/iris.csv", frame.to_csv(index=False).encode())
    return str(noisy_path), f"oci://{bucket}@{namespace}/data/iris.csv"


def _custom(model_id: str) -> dict[str, str]:
    model = catalog.get_model(None, model_id)
    return {item.key: item.value for item in model.custom_metadata_list or []}


def test_only_a_better_model_is_deployed(catalog_env, datasets, tmp_path):
    noisy, clean = datasets
    common = dict(
        target_column="species",
        deployment_display_name="iris-nightly",
        artifact_dir=str(tmp_path / "art"),
        **FAST,
    )
    first = retrain_and_deploy(noisy, **common)
    assert first["deployed"] and first["current_score"] is None
    dep_id = first["deployment_id"]
    assert served_model(md.get_model_deployment(None, dep_id)) == first["model_id"]
    assert "no deployed model" in Artifact.get(METRICS_ARTIFACT_KEY).description

    record = md.get_model_deployment(None, dep_id)
    assert record.display_name == "iris-nightly"
    assert record.freeform_tags[RETRAIN_TAG] == "iris-nightly"

    same = retrain_and_deploy(noisy, **common)  # finds the deployment by its name
    assert same["deployment_id"] == dep_id
    assert not same["deployed"] and same["model_id"] is None
    assert same["candidate_score"] == pytest.approx(same["current_score"])
    assert served_model(md.get_model_deployment(None, dep_id)) == first["model_id"]
    table = Artifact.get(METRICS_ARTIFACT_KEY)
    assert "Kept the deployed model" in table.description and first["model_id"] in table.data

    better = retrain_and_deploy(clean, deployment_id=dep_id, **common)
    assert better["deployed"] and better["deployment_id"] == dep_id
    assert better["candidate_score"] > better["current_score"] + 0.3
    record = md.get_model_deployment(None, dep_id)
    assert served_model(record) == better["model_id"]
    assert record.freeform_tags[PREVIOUS_MODEL_TAG] == first["model_id"]
    custom = _custom(better["model_id"])
    assert float(custom["holdout-accuracy"]) == pytest.approx(better["candidate_score"], abs=1e-6)
    assert float(custom["replaced-model-holdout-accuracy"]) == pytest.approx(
        better["current_score"], abs=1e-6
    )
    assert custom["TrainingDataset"] == clean
    tear_down(dep_id, **FAST)


def test_bad_options_fail_before_anything_is_trained(catalog_env, datasets):
    noisy, _ = datasets
    with pytest.raises(RetrainError, match="metric 'auc'"):
        retrain_and_deploy(noisy, "species", metric="auc")
    with pytest.raises(RetrainError, match="target_column 'kind'"):
        retrain_and_deploy(noisy, "kind")
