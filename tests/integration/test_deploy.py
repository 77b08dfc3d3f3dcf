"""Deploying saved models to the local service with the real SDK: deploy, wait, predict,
idempotent re-runs, failures with their tracebacks, deadlines that resume, and managing a
deployment afterwards. Every ACTIVE deployment runs real model-server processes."""

from __future__ import annotations

import contextlib
import dataclasses
import threading
import time
import uuid

import oci.data_science.models as dsm
import pytest
import requests
from deployment_support import BROKEN_SCORE, ECHO_SCORE, create_model, server_pids, zip_artifact

from ocimodel.deploy import (
    DEPLOY_TAG,
    DeployedModel,
    DeploymentError,
    DeploymentFailedError,
    DeploymentInputError,
    DeploymentStateError,
    DeploymentTimeoutError,
    DeploySpec,
    ModelNotSavedError,
    activate_deployment,
    deactivate_deployment,
    delete_deployment,
    deploy_identity,
    deploy_model,
    restart_deployment,
    update_deployment,
    wait_for_active,
)
from ocimodel.oci import deployment as md
from ocimodel.oci.auth import resolve_auth
from ocimodel.progress import RecordingProgress

SLUG = "generalml_p311_cpu_x86_64_v1"
FAST = {"poll_interval": 1}

GATED_SCORE = """
import os, time

def load_model():
    flag = os.environ["RELEASE_FLAG"]
    while not os.path.exists(flag):
        time.sleep(0.02)
    return "ready"

def predict(data, model=None):
    return {"echo": data}
"""


@dataclasses.dataclass
class Place:
    compartment: str
    project: str


@pytest.fixture(scope="module")
def place(local_oci, ds):
    """The environment of the default auth (the local service) and a fresh compartment with a
    project, where deploy_model finds them; for the whole module."""
    from ocimodel import conda
    from ocimodel.oci import auth as oci_auth

    patch = pytest.MonkeyPatch()
    for name, value in local_oci.env().items():
        patch.setenv(name, value)
    for name in (conda.ENV_INDEX_URI, conda.ENV_NAMESPACE, conda.ENV_BUCKET, "OCI_IAM_TYPE"):
        patch.delenv(name, raising=False)
    compartment = f"ocid1.compartment.oc1..{uuid.uuid4().hex}"
    project = ds.create_project(
        dsm.CreateProjectDetails(compartment_id=compartment, display_name="deploy")
    ).data.id
    patch.setenv("PROJECT_COMPARTMENT_OCID", compartment)
    patch.setenv("PROJECT_OCID", project)
    oci_auth.reset_auth()
    yield Place(compartment, project)
    oci_auth.reset_auth()
    patch.undo()


@pytest.fixture(scope="module")
def saved(place, iris, tmp_path_factory):
    """(model OCID, estimator, X): the iris pipeline prepared and saved with ocimodel."""
    from ocimodel.pipeline import prepare_artifact
    from ocimodel.save import SaveSpec, save_model

    estimator, X, _ = iris
    folder = tmp_path_factory.mktemp("iris") / "art"
    prepare_artifact(estimator, str(folder), inference_conda_env=SLUG, X_sample=X.head(20))
    model_id = save_model(str(folder), SaveSpec(display_name="iris")).model_id
    return model_id, estimator, X


def _zipped_model(ds, place, tmp_path_factory, score: str) -> str:
    folder = tmp_path_factory.mktemp("zip")
    return create_model(
        ds, place.compartment, place.project, zip_artifact(folder, {"score.py": score})
    )


@pytest.fixture(scope="module")
def echo_model(ds, place, tmp_path_factory) -> str:
    return _zipped_model(ds, place, tmp_path_factory, ECHO_SCORE)


@pytest.fixture(scope="module")
def deployed(saved) -> DeployedModel:
    """The saved iris model deployed once for the module."""
    model_id, _, _ = saved
    return deploy_model(model_id, DeploySpec(display_name="iris-live"), **FAST)


def _ds():
    return resolve_auth(None).client("data_science")


@contextlib.contextmanager
def counted_requests():
    """Every HTTP request the default auth's DataScienceClient sends inside the block."""
    sent: list[str] = []
    hooks = _ds().base_client.session.hooks["response"]

    def hook(response, *args, **kwargs):
        sent.append(f"{response.request.method} {response.request.path_url}")

    hooks.append(hook)
    try:
        yield sent
    finally:
        hooks.remove(hook)


def _tagged(place, model_id: str, spec: DeploySpec) -> list:
    identity = deploy_identity(
        model_id,
        dataclasses.replace(
            spec.resolve(), compartment_id=place.compartment, project_id=place.project
        ),
    )
    return md.find_model_deployments_by_tag(
        None, place.compartment, DEPLOY_TAG, identity, include_deleted=True
    )


def _predict(url: str, payload) -> requests.Response:
    return requests.post(url + "/predict", json=payload, auth=resolve_auth(None).signer, timeout=60)


# --- deploy, predict, idempotency -----------------------------------------------------------


def test_a_saved_model_deploys_answers_a_signed_predict_and_redeploys_to_the_same(
    local_oci, place, saved, deployed
):
    model_id, estimator, X = saved
    assert deployed.state == "ACTIVE" and deployed.created
    assert deployed.url == f"{local_oci.endpoint}/{deployed.id}"
    record = deployed.deployment
    assert record.display_name == "iris-live"
    assert record.compartment_id == place.compartment and record.project_id == place.project
    config = record.model_deployment_configuration_details.model_configuration_details
    assert config.model_id == model_id
    assert config.instance_configuration.instance_shape_name == "VM.Standard.E4.Flex"
    shape = config.instance_configuration.model_deployment_instance_shape_config_details
    assert (shape.ocpus, shape.memory_in_gbs) == (1, 16)
    assert (config.scaling_policy.instance_count, config.bandwidth_mbps) == (1, 10)

    sample = X.head(4)
    resp = _predict(deployed.url, sample.to_dict(orient="list"))
    assert resp.status_code == 200, resp.text
    assert resp.json()["prediction"] == estimator.predict(sample).tolist()

    with counted_requests() as sent:
        again = deploy_model(model_id, DeploySpec(display_name="iris-live"), **FAST)
    assert (again.id, again.state, again.created) == (deployed.id, "ACTIVE", False)
    assert not any(r.startswith("POST") for r in sent), sent  # nothing created
    tagged = _tagged(place, model_id, DeploySpec(display_name="iris-live"))
    assert [d.id for d in tagged] == [deployed.id]


def test_update_restart_and_delete_a_deployment(local_oci, place, saved, deployed):
    model_id, estimator, X = saved
    dep_id = deployed.id
    progress = RecordingProgress()
    renamed = update_deployment(
        None,
        dep_id,
        display_name="iris-renamed",
        freeform_tags={"team": "ml"},
        progress=progress,
        **FAST,
    )
    assert renamed.lifecycle_state == "ACTIVE" and renamed.display_name == "iris-renamed"
    assert renamed.freeform_tags["team"] == "ml" and DEPLOY_TAG in renamed.freeform_tags
    assert progress.finished and progress.done == 100
    with counted_requests() as sent:
        same = update_deployment(None, dep_id, display_name="iris-renamed")
    assert same.display_name == "iris-renamed" and sent == [
        f"GET /20190101/modelDeployments/{dep_id}"
    ]

    with pytest.raises(DeploymentStateError, match="INACTIVE") as refused:
        update_deployment(None, dep_id, environment_variables={"MODE": "x"})
    assert refused.value.state == "ACTIVE"

    pids = server_pids(local_oci, dep_id)
    scaled = update_deployment(None, dep_id, deployment_instance_count=2, **FAST)
    assert scaled.lifecycle_state == "ACTIVE"
    assert scaled.model_deployment_system_data.current_instance_count == 2
    scaled_pids = server_pids(local_oci, dep_id)
    assert len(scaled_pids) == 2 and not set(scaled_pids) & set(pids)

    restarted = restart_deployment(None, dep_id, max_wait_time=120, poll_interval=1)
    assert restarted.lifecycle_state == "ACTIVE"
    new_pids = server_pids(local_oci, dep_id)
    assert len(new_pids) == 2 and not set(new_pids) & set(scaled_pids)
    sample = X.head(2)
    assert _predict(restarted.model_deployment_url, sample.to_dict(orient="list")).json() == {
        "prediction": estimator.predict(sample).tolist()
    }

    stopped = deactivate_deployment(None, dep_id, **FAST)
    assert stopped.lifecycle_state == "INACTIVE" and server_pids(local_oci, dep_id) == []
    changed = update_deployment(
        None, dep_id, environment_variables={"MODE": "x"}, deployment_instance_count=1, **FAST
    )  # the runtime changes while INACTIVE, and applies on activation
    assert changed.lifecycle_state == "INACTIVE"
    env = changed.model_deployment_configuration_details.environment_configuration_details
    assert env.environment_variables == {"MODE": "x"}
    back = activate_deployment(None, dep_id, **FAST)
    assert back.lifecycle_state == "ACTIVE" and len(server_pids(local_oci, dep_id)) == 1

    delete_deployment(None, dep_id, **FAST)
    assert md.get_model_deployment(None, dep_id).lifecycle_state == "DELETED"
    assert server_pids(local_oci, dep_id) == []
    assert _predict(restarted.model_deployment_url, {"x": [1]}).status_code == 404
    delete_deployment(None, dep_id)  # already deleted: nothing to do
    with pytest.raises(DeploymentStateError, match="DELETED"):
        update_deployment(None, dep_id, display_name="too late")


# --- failures -------------------------------------------------------------------------------


def test_a_broken_score_py_fails_with_its_traceback_and_is_not_retried_into_a_second(
    local_oci, place, ds, tmp_path_factory
):
    model_id = _zipped_model(ds, place, tmp_path_factory, BROKEN_SCORE)
    spec = DeploySpec(display_name="broken")
    with pytest.raises(DeploymentFailedError) as failed:
        deploy_model(model_id, spec, **FAST)
    err = failed.value
    text = str(err)
    assert "Traceback (most recent call last)" in text
    assert "RuntimeError: model.pkl is corrupt: cannot load the estimator" in text
    assert err.deployment_id and err.last_state == "FAILED" and err.work_request_id
    assert any("RuntimeError" in e["message"] for e in err.errors)
    assert err.status is None  # not a transient service error: a retry policy leaves it
    assert server_pids(local_oci, err.deployment_id) == []

    with pytest.raises(DeploymentFailedError, match="model.pkl is corrupt") as again:
        deploy_model(model_id, spec, **FAST)
    assert again.value.deployment_id == err.deployment_id
    tagged = _tagged(place, model_id, spec)
    assert [(d.id, d.lifecycle_state) for d in tagged] == [(err.deployment_id, "FAILED")]
    delete_deployment(None, err.deployment_id, **FAST)


def test_a_failed_deployment_is_replaced_on_request(local_faults, place, echo_model):
    local_faults.add_faults({"deployment_failure": "capacity exhausted (injected)", "count": 1})
    spec = DeploySpec(display_name="flaky")
    with pytest.raises(DeploymentFailedError, match="capacity exhausted") as failed:
        deploy_model(echo_model, spec, **FAST)
    first = failed.value.deployment_id

    live = deploy_model(echo_model, spec, replace_failed=True, **FAST)
    assert live.state == "ACTIVE" and live.created and live.id != first
    assert md.get_model_deployment(None, first).lifecycle_state == "DELETED"
    states = {d.id: d.lifecycle_state for d in _tagged(place, echo_model, spec)}
    assert states == {first: "DELETED", live.id: "ACTIVE"}
    assert deploy_model(echo_model, spec, **FAST).id == live.id
    delete_deployment(None, live.id, wait_for_completion=False)


def test_a_deadline_raises_and_waiting_again_resumes_at_about_one_request_a_second(
    place, ds, tmp_path, tmp_path_factory
):
    model_id = _zipped_model(ds, place, tmp_path_factory, GATED_SCORE)
    flag = tmp_path / "release"
    spec = DeploySpec(display_name="gated", environment_variables={"RELEASE_FLAG": str(flag)})
    with pytest.raises(DeploymentTimeoutError) as late:
        deploy_model(model_id, spec, max_wait_time=0.5, poll_interval=1)
    err = late.value
    assert err.last_state == "CREATING" and err.deployment_id and err.work_request_id
    assert isinstance(err, TimeoutError) and "wait_for_active" in str(err)

    release = threading.Timer(4.0, flag.touch)
    release.start()
    progress = RecordingProgress()
    started = time.monotonic()
    try:
        with counted_requests() as sent:
            active = wait_for_active(None, err.deployment_id, progress=progress, max_wait_time=90)
    finally:
        release.cancel()
    waited = time.monotonic() - started
    assert active.lifecycle_state == "ACTIVE"
    assert progress.done == 100 and progress.finished
    rate = len(sent) / waited
    print(f"\nwait_for_active: {len(sent)} requests in {waited:.1f} s = {rate:.2f}/s")
    # one request a second on average, besides the reads of the start (the deployment, its
    # work request) and of the end (the last log lines, the ACTIVE deployment)
    assert len(sent) <= waited + 4, "\n".join(sent)

    again = deploy_model(model_id, spec, max_wait_time=5, poll_interval=1)
    assert (again.id, again.created) == (err.deployment_id, False)
    delete_deployment(None, again.id, wait_for_completion=False)


# --- inputs and runtimes --------------------------------------------------------------------


def test_bad_inputs_fail_before_any_request(place, ds, saved):
    model_id, _, _ = saved
    with counted_requests() as sent:
        with pytest.raises(DeploymentInputError, match="deployment_log_group_id"):
            deploy_model(model_id, DeploySpec(deployment_access_log_id="ocid1.log.oc1..access"))
        with pytest.raises(DeploymentInputError, match="deployment_image"):
            deploy_model(model_id, DeploySpec(entrypoint=["python", "serve.py"]))
        with pytest.raises(DeploymentInputError, match="input_stream_ids"):
            deploy_model(model_id, DeploySpec(deployment_mode="STREAM_ONLY"))
        with pytest.raises(DeploymentInputError, match="flexible"):
            deploy_model(
                model_id, DeploySpec(deployment_instance_shape="VM.Standard2.1", deployment_ocpus=2)
            )
        with pytest.raises(DeploymentInputError, match="deployment_ocpus"):
            DeploySpec.of(deployment_ocpu=2)
        with pytest.raises(DeploymentInputError, match="max_wait_time"):
            deploy_model(model_id, max_wait_time="soon")
    assert sent == []

    assert "<redacted>" in repr(DeploySpec(environment_variables={"TOKEN": "s3cret"}))
    assert "s3cret" not in repr(DeploySpec(environment_variables={"TOKEN": "s3cret"}))

    bare = ds.create_model(
        dsm.CreateModelDetails(compartment_id=place.compartment, project_id=place.project)
    ).data.id
    with pytest.raises(ModelNotSavedError, match="no artifact") as unsaved:
        deploy_model(bare, DeploySpec())
    assert unsaved.value.model_id == bare
    with pytest.raises(ModelNotSavedError, match="not in the model catalog"):
        deploy_model("ocid1.datasciencemodel.oc1..nothere", DeploySpec())
    listed = ds.list_model_deployments(place.compartment).data
    assert all(bare not in str(d.model_deployment_configuration_details) for d in listed)


def test_container_runtime_is_validated_by_the_service_and_deploys_with_autoscaling(
    place, echo_model
):
    with pytest.raises(DeploymentError) as refused:
        deploy_model(echo_model, DeploySpec(deployment_image="Not An Image"), **FAST)
    assert refused.value.status == 400
    assert "image" in str(refused.value) and "Not An Image" in str(refused.value)

    spec = DeploySpec(
        display_name="container",
        deployment_image="iad.ocir.io/mytenancy/models/echo:1.0",
        entrypoint=["python", "-m", "server"],
        server_port=5000,
        environment_variables={"MODEL_NAME": "echo"},
        autoscaling_min_instances=1,
        autoscaling_max_instances=2,
    )
    live = deploy_model(echo_model, spec, **FAST)
    assert live.state == "ACTIVE"
    config = live.deployment.model_deployment_configuration_details
    env = config.environment_configuration_details
    assert (env.environment_configuration_type, env.image) == (
        "OCIR_CONTAINER",
        "iad.ocir.io/mytenancy/models/echo:1.0",
    )
    assert (env.server_port, env.health_check_port, env.entrypoint) == (
        5000,
        5000,
        ["python", "-m", "server"],
    )
    policy = config.model_configuration_details.scaling_policy
    assert policy.policy_type == "AUTOSCALING"
    assert policy.auto_scaling_policies[0].maximum_instance_count == 2
    assert _predict(live.url, {"k": "v"}).json()["echo"] == {"k": "v"}
    delete_deployment(None, live.id, **FAST)


def test_a_spec_resolves_from_properties_then_the_environment_then_the_defaults(monkeypatch):
    from ocimodel.properties import ModelProperties

    monkeypatch.setenv("DEPLOYMENT_BANDWIDTH_MBPS", "20")
    monkeypatch.setenv("DEPLOYMENT_INSTANCE_COUNT", "4")
    monkeypatch.setenv("PROJECT_COMPARTMENT_OCID", "ocid1.compartment.oc1..fromenv")
    props = ModelProperties(deployment_instance_shape="VM.Standard2.1", deployment_instance_count=3)
    spec = DeploySpec(display_name="given").resolve(props)
    assert spec.deployment_instance_shape == "VM.Standard2.1"  # from the properties
    assert spec.deployment_instance_count == 3  # properties before the environment
    assert spec.deployment_bandwidth_mbps == 20  # from the environment
    assert spec.deployment_ocpus is None  # a fixed shape takes no OCPUs
    assert (spec.display_name, spec.deployment_mode) == ("given", "HTTPS_ONLY")
    assert spec.compartment_id == "ocid1.compartment.oc1..fromenv"
    assert DeploySpec(deployment_instance_count=1).resolve(props).deployment_instance_count == 1

    flex = DeploySpec(autoscaling_min_instances=1, autoscaling_max_instances=3).resolve({})
    assert flex.deployment_instance_count is None  # autoscaled: no count from anywhere
    assert (flex.deployment_instance_shape, flex.deployment_ocpus) == ("VM.Standard.E4.Flex", 1)
    assert flex.deployment_memory_in_gbs == 16 and flex.deployment_bandwidth_mbps == 20
    container = DeploySpec(deployment_image="iad.ocir.io/ns/repo:1", server_port=5000).resolve()
    assert (container.server_port, container.health_check_port) == (5000, 5000)
    assert container.resolve() == container
