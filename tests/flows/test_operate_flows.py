"""The UI-triggered flows (deploy-artifact, promote-model, rollback-deployment, tear-down) under
the session's Prefect test server and the local OCI: promotes and rollbacks swap the model of a
live endpoint that keeps answering, failures compensate and say what to do, and two runs on one
deployment wait for each other."""

from __future__ import annotations

import dataclasses
import json
import threading
import time
import uuid

import pytest
from endpoint_support import Predictor
from prefect import get_client
from prefect.artifacts import Artifact
from prefect.exceptions import ObjectNotFound
from prepare_support import SLUG

from ocimodel.deploy import DEPLOY_TAG, DeploymentFailedError
from ocimodel.flows._locks import deployment_lock_name
from ocimodel.flows.operate import (
    FAILURE_ARTIFACT_KEY,
    PREVIOUS_MODEL_TAG,
    STATUS_TAG,
    SUMMARY_ARTIFACT_KEY,
    NoPreviousModelError,
    deploy_artifact,
    promote_model,
    rollback_deployment,
    served_model,
    tear_down,
)
from ocimodel.oci import catalog
from ocimodel.oci import deployment as md
from ocimodel.predict import predict_endpoint
from ocimodel.summary import SummaryDetail
from ocimodel.tasks.deploy import DEPLOYMENT_ARTIFACT_KEY
from ocimodel.tasks.introspect import INTROSPECTION_ARTIFACT_KEY
from ocimodel.tasks.summary import SUMMARY_STATUS_KEY

FAST = {"poll_interval": 1, "max_wait_time": 120}


@dataclasses.dataclass
class Place:
    compartment: str
    project: str


@pytest.fixture
def place(catalog_env) -> Place:
    """The default auth pointed at the local service, with a fresh compartment and project in
    the environment."""
    return Place(*catalog_env)


@pytest.fixture
def artifacts(place, iris, tmp_path_factory):
    """Two prepared iris artifacts: the fitted pipeline and a model that always answers 2."""
    from sklearn.dummy import DummyClassifier

    from ocimodel.pipeline import prepare_artifact

    estimator, X, y = iris
    constant = DummyClassifier(strategy="constant", constant=2).fit(X, y)
    root = tmp_path_factory.mktemp("operate")
    folders = {}
    for name, model in (("iris", estimator), ("twos", constant)):
        folder = str(root / name)
        prepare_artifact(model, folder, inference_conda_env=SLUG, X_sample=X.head(20))
        folders[name] = folder
    return folders


@pytest.fixture
def twos_model(artifacts) -> str:
    """The always-2 model saved in the catalog."""
    from ocimodel.save import SaveSpec, save_model

    return save_model(artifacts["twos"], SaveSpec(display_name="twos")).model_id


def _predictions(url: str, X) -> list:
    return predict_endpoint(url, X.head(6))["prediction"]


def _artifact(key: str):
    found = Artifact.get(key)
    assert found is not None, key
    return found


def test_deploy_promote_rollback_and_tear_down_keep_the_endpoint_answering(
    place, artifacts, twos_model, iris
):
    estimator, X, _ = iris
    out = deploy_artifact(artifacts["iris"], deployment_display_name="iris-live", **FAST)
    model_a, dep_id, url = out["model_id"], out["deployment_id"], out["url"]
    assert _predictions(url, X) == estimator.predict(X.head(6)).tolist()
    assert "Passed" in str(_artifact(INTROSPECTION_ARTIFACT_KEY).data)
    lifecycle = {r["Details"]: r["Status"] for r in json.loads(_artifact(SUMMARY_STATUS_KEY).data)}
    assert lifecycle[SummaryDetail.DEPLOYED] == lifecycle[SummaryDetail.INTROSPECTED] == "Done"
    assert lifecycle[SummaryDetail.SERIALIZED] == "Not Applicable"  # prepared elsewhere
    summary = _artifact(SUMMARY_ARTIFACT_KEY).data
    assert model_a in summary and dep_id in summary and f"{url}/predict" in summary
    assert f"https://cloud.oracle.com/data-science/model-deployments/{dep_id}" in summary
    assert dep_id in _artifact(DEPLOYMENT_ARTIFACT_KEY).data
    again = deploy_artifact(artifacts["iris"], deployment_display_name="iris-live", **FAST)
    assert (again["model_id"], again["deployment_id"]) == (model_a, dep_id)  # converges

    watcher = Predictor(url, X.head(3))
    watcher.start()
    try:
        promoted = promote_model(twos_model, dep_id, **FAST)
        assert promoted["previous_model_id"] == model_a and promoted["url"] == url
        assert _predictions(url, X) == [2] * 6
        record = md.get_model_deployment(None, dep_id)
        assert served_model(record) == twos_model
        assert record.freeform_tags[PREVIOUS_MODEL_TAG] == model_a
        assert record.freeform_tags[DEPLOY_TAG].startswith("swapped-")

        back = rollback_deployment(dep_id, **FAST)
        assert (back["model_id"], back["previous_model_id"]) == (model_a, twos_model)
        assert _predictions(url, X) == estimator.predict(X.head(6)).tolist()
        tags = md.get_model_deployment(None, dep_id).freeform_tags
        assert tags[PREVIOUS_MODEL_TAG] == twos_model  # a second rollback goes forward
        assert "Rolled back" in _artifact(SUMMARY_ARTIFACT_KEY).data
    finally:
        watcher.stop()
    assert watcher.errors == []
    iris_answer = tuple(estimator.predict(X.head(3)).tolist())
    assert set(watcher.answers) == {iris_answer, (2, 2, 2)}  # both models served, in turn

    same = promote_model(model_a, dep_id, **FAST)  # already served: nothing changes
    assert same["previous_model_id"] is None

    gone = tear_down(dep_id, delete_model=True, **FAST)
    assert gone == {"deployment_id": dep_id, "model_id": model_a, "model_deleted": True}
    assert md.get_model_deployment(None, dep_id).lifecycle_state == "DELETED"
    assert catalog.get_model(None, model_a).lifecycle_state == "DELETED"
    assert tear_down(dep_id, **FAST)["model_deleted"] is False  # converges
    with get_client(sync_client=True) as client, pytest.raises(ObjectNotFound):
        client.read_global_concurrency_limit_by_name(deployment_lock_name(dep_id))


def test_promote_without_a_deployment_creates_one_and_rollback_needs_a_promote(
    place, twos_model, iris
):
    _, X, _ = iris
    out = promote_model(twos_model, deployment_display_name="twos-live", **FAST)
    assert out["previous_model_id"] is None and _predictions(out["url"], X) == [2] * 6
    with pytest.raises(NoPreviousModelError, match="no 'ocimodel-previous-model'"):
        rollback_deployment(out["deployment_id"], **FAST)
    failure = _artifact(FAILURE_ARTIFACT_KEY).data
    assert "NoPreviousModelError" in failure and "Nothing was changed" in failure
    assert md.get_model_deployment(None, out["deployment_id"]).lifecycle_state == "ACTIVE"
    tear_down(out["deployment_id"], **FAST)


@pytest.mark.parametrize("delete_model_on_failure", [False, True])
def test_a_deployment_that_fails_is_deleted_and_its_model_tagged_or_deleted(
    place, artifacts, local_faults, tmp_path, delete_model_on_failure
):
    local_faults.add_faults({"deployment_failure": "capacity exhausted (injected)", "count": 1})
    name = f"flaky-{delete_model_on_failure}"
    with pytest.raises(DeploymentFailedError, match="capacity exhausted"):
        deploy_artifact(
            artifacts["iris"],
            model_display_name=name,
            deployment_display_name=name,
            artifact_dir=str(tmp_path / "staged"),
            delete_model_on_failure=delete_model_on_failure,
            **FAST,
        )
    ds = _ds()
    models = [
        m
        for state in ("ACTIVE", "DELETED")
        for m in catalog.list_all(
            "list_models", ds.list_models, compartment_id=place.compartment, lifecycle_state=state
        )
        if m.display_name == name
    ]
    assert len(models) == 1
    model = catalog.get_model(None, models[0].id)
    if delete_model_on_failure:
        assert model.lifecycle_state == "DELETED"
    else:
        assert model.lifecycle_state == "ACTIVE"
        assert model.freeform_tags[STATUS_TAG] == "failed"
    deployments = [
        d
        for d in catalog.list_all(
            "list_model_deployments",
            ds.list_model_deployments,
            compartment_id=place.compartment,
        )
        if d.display_name == name
    ]
    assert [d.lifecycle_state for d in deployments] == ["DELETED"]
    failure = _artifact(FAILURE_ARTIFACT_KEY).data
    assert "DeploymentFailedError" in failure and model.id in failure
    assert "Deleted model deployment" in failure


def test_two_promotes_of_one_deployment_wait_for_each_other(
    place, artifacts, twos_model, iris, monkeypatch
):
    from ocimodel import deploy as deploy_core
    from ocimodel.save import SaveSpec, save_model

    _, X, _ = iris
    first = deploy_artifact(artifacts["iris"], deployment_display_name="locked", **FAST)
    dep_id = first["deployment_id"]
    other = save_model(artifacts["twos"], SaveSpec(display_name="twos-again")).model_id
    busy, overlaps, order = [0], [], []
    real = deploy_core.update_deployment  # what the update-deployment task calls
    guard = threading.Lock()

    def update(auth, deployment_id, **changes):
        with guard:
            busy[0] += 1
            overlaps.append(busy[0])
        try:
            time.sleep(0.5)  # widen the window a race would need
            return real(auth, deployment_id, **changes)
        finally:
            with guard:
                busy[0] -= 1
                order.append(changes["model_id"])

    monkeypatch.setattr(deploy_core, "update_deployment", update)
    results: dict = {}

    def run(model_id: str) -> None:
        results[model_id] = promote_model(model_id, dep_id, **FAST)

    threads = [threading.Thread(target=run, args=(m,)) for m in (twos_model, other)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(180)
    assert set(results) == {twos_model, other} and max(overlaps) == 1
    second = order[1]
    assert results[second]["previous_model_id"] == order[0]  # it saw the first one's result
    record = md.get_model_deployment(None, dep_id)
    assert served_model(record) == second
    assert record.freeform_tags[PREVIOUS_MODEL_TAG] == order[0]
    with get_client(sync_client=True) as client:
        limit = client.read_global_concurrency_limit_by_name(deployment_lock_name(dep_id))
    assert limit.limit == 1 and limit.active_slots == 0
    assert _predictions(first["url"], X) == [2] * 6
    tear_down(dep_id, **FAST)


def test_blocks_name_the_service_and_the_settings(place, local_oci, artifacts, iris):
    from oci.data_science import DataScienceClient
    from oci.data_science.models import CreateProjectDetails

    from ocimodel.blocks import ModelDeploymentSettings, OCICredentials

    _, X, _ = iris
    credentials = OCICredentials(
        config_file=str(local_oci.config_path), endpoint=local_oci.endpoint
    )
    credentials.save("local-oci", overwrite=True)
    compartment = f"ocid1.compartment.oc1..{uuid.uuid4().hex}"
    project = (
        local_oci.client(DataScienceClient)
        .create_project(CreateProjectDetails(compartment_id=compartment))
        .data.id
    )
    ModelDeploymentSettings(
        credentials=credentials,
        compartment_id=compartment,
        project_id=project,
        deployment_instance_count=2,
    ).save("local-settings", overwrite=True)

    out = deploy_artifact(artifacts["twos"], settings_block="local-settings", **FAST)
    model = catalog.get_model(None, out["model_id"])
    assert (model.compartment_id, model.project_id) == (compartment, project)
    record = md.get_model_deployment(None, out["deployment_id"])
    assert record.compartment_id == compartment
    assert record.model_deployment_system_data.current_instance_count == 2
    assert _predictions(out["url"], X) == [2] * 6
    gone = tear_down(out["deployment_id"], credentials_block="local-oci", **FAST)
    assert gone["model_deleted"] is False
    with pytest.raises(ValueError, match="no-such-block"):
        tear_down(out["deployment_id"], credentials_block="no-such-block", **FAST)


def _ds():
    from ocimodel.oci.auth import resolve_auth

    return resolve_auth(None).client("data_science")
