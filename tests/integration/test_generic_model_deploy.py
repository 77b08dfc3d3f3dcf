"""GenericModel's deploy side against the local service through the real SDK: deploy, predict
(remote and local, values, bytes and images), manage and delete the deployment, load a model
back from its deployment, and the summary table through it all. Every deployment runs real
model-server processes."""

from __future__ import annotations

import inspect

import numpy as np
import oci.data_science.models as dsm
import pytest
from deployment_support import ECHO_SCORE

from ocimodel import (
    GenericModel,
    ModelDeployment,
    ModelNotDeployedError,
    ModelNotSavedError,
    NotActiveDeploymentError,
    UnknownOCIDError,
)
from ocimodel.oci import catalog
from ocimodel.oci import deployment as md
from ocimodel.summary import ModelState, SummaryDetail

SLUG = "generalml_p311_cpu_x86_64_v1"
FAST = {"max_wait_time": 120, "poll_interval": 1}
DONE = ModelState.DONE.value


@pytest.fixture(scope="module")
def iris_model(deploy_place, iris, tmp_path_factory):
    """(model, estimator, X): the iris pipeline prepared, verified, saved and deployed once."""
    estimator, X, y = iris
    model = GenericModel(estimator, artifact_dir=str(tmp_path_factory.mktemp("iris") / "a"))
    model.prepare(inference_conda_env=SLUG, X_sample=X.head(20), y_sample=y.head(20))
    model.verify(X.head(2))
    model.save(display_name="iris-generic")
    model.deploy(display_name="iris-generic-live", **FAST)
    return model, estimator, X


def _echo_model(tmp_path_factory) -> GenericModel:
    """A model whose score.py echoes what it gets (bytes: their length and first bytes)."""
    folder = tmp_path_factory.mktemp("echo")
    score = folder / "echo_score.py"
    score.write_text(ECHO_SCORE)
    model = GenericModel(_anything(), artifact_dir=str(folder / "a"))
    model.prepare(inference_conda_env=SLUG, score_py_uri=str(score), force_overwrite=True)
    model.save(display_name="echo")
    return model


def _anything():
    """A model whose predict returns its input, defined here so it pickles by value."""

    class Anything:
        def predict(self, x):
            return x

    return Anything()


@pytest.fixture(scope="module")
def echo(deploy_place, tmp_path_factory) -> GenericModel:
    """The echo model, saved and deployed once for the module."""
    model = _echo_model(tmp_path_factory)
    model.deploy(**FAST)
    return model


def _statuses(model: GenericModel) -> dict[str, str]:
    df = model.summary_status()
    return dict(zip(df["Details"], df["Status"], strict=True))


def _action(model: GenericModel, detail: str) -> str:
    df = model.summary_status()
    return df.loc[df["Details"] == detail, "Actions Needed"].item()


# --- end to end -------------------------------------------------------------------------------


def test_a_sklearn_model_deploys_and_predicts_what_the_estimator_and_verify_predict(
    local_oci, iris_model
):
    model, estimator, X = iris_model
    deployment = model.model_deployment
    assert isinstance(deployment, ModelDeployment)
    assert deployment.state == "ACTIVE" and deployment.lifecycle_state == "ACTIVE"
    assert model.model_deployment_id == deployment.id == deployment.model_deployment_id
    assert deployment.url == f"{local_oci.endpoint}/{deployment.id}"
    assert deployment.model_id == model.model_id and deployment.display_name == "iris-generic-live"
    assert isinstance(deployment.dsc_model_deployment, dsm.ModelDeployment)
    assert repr(deployment).startswith(f"ModelDeployment(id='{deployment.id}'")

    rows = X.head(4)
    expected = estimator.predict(rows).tolist()
    assert model.predict(rows) == {"prediction": expected}
    assert model.predict(rows, local=True) == model.verify(rows) == {"prediction": expected}
    assert deployment.predict(rows.to_numpy().tolist()) == {"prediction": expected}
    assert set(_statuses(model).values()) == {DONE}, model.summary_status()

    again = model.deploy(display_name="iris-generic-live", **FAST)  # converges: same one
    assert again.id == deployment.id


def test_the_reference_docstring_example_runs_as_written(deploy_place, tmp_path):
    import tempfile

    class Toy:
        def predict(self, x):
            return x**2

    estimator = Toy()
    model = GenericModel(estimator=estimator, artifact_dir=tempfile.mkdtemp(dir=tmp_path))
    assert _statuses(model)[SummaryDetail.DEPLOYED] == ModelState.NOTAVAILABLE.value
    model.prepare(
        inference_conda_env=SLUG,
        inference_python_version="3.11",
        model_file_name="toy_model.pkl",
        training_id=None,
        force_overwrite=True,
    )
    assert model.verify(2) == {"prediction": 4}
    model.save()
    deployment = model.deploy(poll_interval=1)
    assert deployment.state == "ACTIVE"
    assert deployment.display_name == f"{model.dsc_model.display_name}-deployment"
    updated = model.update_deployment(
        access_log={"log_id": "ocid1.log.oc1..access", "log_group_id": "ocid1.loggroup.oc1..g"},
        description="Description for Custom Model",
        freeform_tags={"key": "value"},
        poll_interval=1,
    )
    assert updated is deployment and updated.description == "Description for Custom Model"
    assert updated.freeform_tags["key"] == "value"
    access = updated.dsc_model_deployment.category_log_details.access
    assert (access.log_id, access.log_group_id) == (
        "ocid1.log.oc1..access",
        "ocid1.loggroup.oc1..g",
    )
    assert model.predict(2) == {"prediction": 4}

    model_id, deployment_id = model.model_id, deployment.id
    # Uncomment the line below to delete the model and the associated model deployment
    model.delete(delete_associated_model_deployment=True, poll_interval=1)
    assert md.get_model_deployment(None, deployment_id).lifecycle_state == "DELETED"
    assert catalog.get_model(None, model_id).lifecycle_state == "DELETED"
    assert model.model_id is None and model.model_deployment.state == "DELETED"
    statuses = _statuses(model)
    assert statuses[SummaryDetail.DEPLOYED] == ModelState.NOTAVAILABLE.value
    assert statuses[SummaryDetail.PREDICTED] == ModelState.NOTAVAILABLE.value


def test_prepare_save_deploy_does_all_three_with_the_names_given(deploy_place, tmp_path):
    model = GenericModel(_anything(), artifact_dir=str(tmp_path / "a"))
    deployment = model.prepare_save_deploy(
        inference_conda_env=SLUG,
        model_file_name="anything.pkl",
        force_overwrite=True,
        model_display_name="psd-model",
        model_freeform_tags={"made": "psd"},
        deployment_display_name="psd-live",
        deployment_description="one call",
        deployment_bandwidth_mbps=20,
        environment_variables={"MODE": "psd"},
        **FAST,
    )
    assert deployment is model.model_deployment and deployment.state == "ACTIVE"
    assert model.dsc_model.display_name == "psd-model"
    assert model.dsc_model.freeform_tags["made"] == "psd"
    assert (deployment.display_name, deployment.description) == ("psd-live", "one call")
    spec = deployment.spec
    assert spec["deployment_bandwidth_mbps"] == 20 and spec["environment_variables"] == {
        "MODE": "psd"
    }
    assert model.predict([1, 2]) == {"prediction": [1, 2]}
    model.delete(delete_associated_model_deployment=True, poll_interval=1)


# --- loading back -----------------------------------------------------------------------------


def test_from_id_loads_a_model_or_a_deployment_with_its_model(iris_model, tmp_path):
    model, estimator, X = iris_model
    rows = X.head(3)
    expected = {"prediction": estimator.predict(rows).tolist()}

    by_model = GenericModel.from_id(model.model_id, artifact_dir=str(tmp_path / "m"))
    assert by_model.model_id == model.model_id and by_model.model_deployment is None
    with pytest.raises(ModelNotDeployedError, match=r"deploy\(\) first") as refused:
        by_model.predict(rows)
    assert isinstance(refused.value, ValueError)

    by_deployment = GenericModel.from_id(
        model.model_deployment_id, artifact_dir=str(tmp_path / "d")
    )
    assert by_deployment.model_id == model.model_id
    assert by_deployment.model_deployment_id == model.model_deployment_id
    assert by_deployment.predict(rows) == expected == by_deployment.predict(rows, local=True)
    statuses = _statuses(by_deployment)
    assert statuses[SummaryDetail.DEPLOYED] == statuses[SummaryDetail.PREDICTED] == DONE

    loaded = GenericModel.from_model_deployment(model.model_deployment_id, download_artifact=False)
    assert loaded.model_deployment.model_id == model.model_id
    assert loaded.predict(rows) == expected

    for ocid in ("ocid1.bucket.oc1..abc", "not-an-ocid"):
        with pytest.raises(UnknownOCIDError, match="model deployment OCID") as unknown:
            GenericModel.from_id(ocid)
        assert isinstance(unknown.value, ValueError)


def test_unsaved_and_undeployed_models_fail_early_with_the_fix(deploy_place, tmp_path):
    model = GenericModel(_anything(), artifact_dir=str(tmp_path / "a"))
    model.prepare(inference_conda_env=SLUG, model_file_name="m.pkl")
    with pytest.raises(ModelNotSavedError, match=r"call save\(\) before deploy\(\)") as unsaved:
        model.deploy()
    assert isinstance(unsaved.value, ValueError)
    assert "save() before deploy()" in _action(model, SummaryDetail.DEPLOYED)
    for call in (model.predict, model.delete_deployment, model.restart_deployment):
        with pytest.raises(ModelNotDeployedError, match=r"deploy\(\) first"):
            call() if call is not model.predict else call(1)
    with pytest.raises(ModelNotDeployedError, match="model_deployment_id"):
        model.update_deployment(display_name="x")
    assert _statuses(model)[SummaryDetail.PREDICTED] == ModelState.NEEDSACTION.value
    assert "ModelNotDeployedError" in _action(model, SummaryDetail.PREDICTED)
    with pytest.raises(TypeError, match="content_type"):
        model.predict(1, local=True, contenttype="text/csv")


# --- bytes, images, content types ---------------------------------------------------------------


def test_bytes_and_images_from_a_path_or_oci_uri_reach_score_py_unchanged(
    local_oci, echo, client, namespace, bucket, tmp_path
):
    picture = tmp_path / "picture.png"
    content = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4
    picture.write_bytes(content)
    size = len(content)
    assert echo.predict(image=str(picture))["bytes"] == size
    assert echo.predict(image=str(picture), local=True)["bytes"] == size

    client.put_object(namespace, bucket, "images/picture.png", content)
    uri = f"oci://{bucket}@{namespace}/images/picture.png"
    assert echo.predict(image=uri)["bytes"] == size
    options = {
        "config": local_oci.config,
        "config_kwargs": {"service_endpoint": local_oci.endpoint},
    }
    assert echo.predict(image=uri, storage_options=options)["bytes"] == size

    assert echo.predict(b"raw body")["bytes"] == 8
    # the content type decides what score.py gets: JSON parsed, anything else as bytes
    assert echo.predict(b'{"k": 1}', content_type="application/json")["echo"] == {"k": 1}
    assert echo.predict(b'{"k": 1}')["bytes"] == 8
    assert echo.predict({"k": [1, 2]})["echo"] == {"k": [1, 2]}
    assert echo.model_deployment.predict(np.arange(3).tolist())["echo"] == [0, 1, 2]


# --- managing the deployment ------------------------------------------------------------------


def test_deactivate_refuses_predictions_then_restart_update_and_delete(echo):
    deployment = echo.model_deployment
    deployment.deactivate(**FAST)
    assert deployment.state == "INACTIVE"
    with pytest.raises(NotActiveDeploymentError, match="INACTIVE"):
        echo.predict({"k": 1})
    assert _statuses(echo)[SummaryDetail.DEPLOYED] == ModelState.NEEDSACTION.value
    assert "activate()" in _action(echo, SummaryDetail.DEPLOYED)

    deployment.activate(**FAST)
    assert echo.predict({"k": 1})["echo"] == {"k": 1}
    assert _statuses(echo)[SummaryDetail.DEPLOYED] == DONE

    restarted = echo.restart_deployment(max_wait_time=120, poll_interval=1)
    assert restarted is deployment and restarted.state == "ACTIVE"
    assert echo.predict({"k": 2})["echo"] == {"k": 2}

    renamed = GenericModel.update_deployment(
        deployment.id, properties={"display_name": "echo-renamed"}, poll_interval=1
    )
    assert renamed.display_name == "echo-renamed" and renamed is not deployment
    assert deployment.sync().display_name == "echo-renamed"
    scaled = echo.update_deployment(replica=2, **FAST)
    assert scaled.spec["deployment_instance_count"] == 2

    echo.delete_deployment()
    assert deployment.state == "DELETED"
    assert md.get_model_deployment(None, deployment.id).lifecycle_state == "DELETED"
    with pytest.raises(NotActiveDeploymentError, match="DELETED"):
        echo.predict({"k": 3})
    statuses = _statuses(echo)
    assert statuses[SummaryDetail.DEPLOYED] == ModelState.AVAILABLE.value
    assert statuses[SummaryDetail.PREDICTED] == ModelState.NOTAVAILABLE.value


# --- the summary through failures, and the reference's signatures ---------------------------------


class _Unpicklable:
    def __init__(self):
        import threading

        self.lock = threading.Lock()

    def predict(self, x):
        raise ValueError("this model cannot predict")


def test_failed_steps_show_in_the_summary_with_what_to_do(deploy_place, tmp_path):
    model = GenericModel(_Unpicklable(), artifact_dir=str(tmp_path / "a"))
    with pytest.raises(Exception, match="lock"):
        model.prepare(inference_conda_env=SLUG, model_file_name="m.pkl")
    statuses = _statuses(model)
    assert statuses[SummaryDetail.SERIALIZED] == ModelState.NEEDSACTION.value
    assert "lock" in _action(model, SummaryDetail.SERIALIZED)

    with pytest.raises(Exception, match="NOT_A_PACK|conda"):
        model.prepare(inference_conda_env="NOT_A_PACK", force_overwrite=True)
    assert _statuses(model)[SummaryDetail.RUNTIME_YAML] == ModelState.NEEDSACTION.value

    model.serialize = False
    model.prepare(inference_conda_env=SLUG, model_file_name="m.pkl", force_overwrite=True)
    (tmp_path / "a" / "m.pkl").write_bytes(b"")
    with pytest.raises(Exception, match="load_model|m.pkl|pickle|Ran out"):
        model.verify(1)
    assert _statuses(model)[SummaryDetail.VERIFIED] == ModelState.NEEDSACTION.value
    assert _action(model, SummaryDetail.VERIFIED).startswith("ScoreError: ")


_LOAD = [
    ("model_file_name", None), ("artifact_dir", None), ("auth", None),
    ("force_overwrite", False), ("properties", None), ("bucket_uri", None),
    ("remove_existing_artifact", True), ("ignore_conda_error", False),
    ("download_artifact", True), ("kwargs", "**"),
]  # fmt: skip
_DEPLOYMENT_OPTIONS = [
    "deployment_instance_shape", "deployment_instance_subnet_id",
    "deployment_instance_private_endpoint_id", "deployment_instance_count",
    "deployment_bandwidth_mbps", "deployment_log_group_id", "deployment_access_log_id",
    "deployment_predict_log_id", "deployment_memory_in_gbs", "deployment_ocpus",
    "deployment_image",
]  # fmt: skip
DEPLOY_SIDE_SIGNATURES = {
    "deploy": [
        ("wait_for_completion", True), ("display_name", None), ("description", None),
        *((name, None) for name in _DEPLOYMENT_OPTIONS), ("kwargs", "**"),
    ],
    "predict": [("data", None), ("auto_serialize_data", None), ("local", False), ("kwargs", "**")],
    "update_deployment": [
        ("model_deployment_id", None), ("properties", None), ("wait_for_completion", True),
        ("max_wait_time", 1200), ("poll_interval", 10), ("kwargs", "**"),
    ],
    "restart_deployment": [("max_wait_time", 1200), ("poll_interval", 10)],
    "delete_deployment": [("wait_for_completion", True)],
    "from_model_deployment": [("model_deployment_id", inspect.Parameter.empty), *_LOAD],
    "from_id": [("ocid", inspect.Parameter.empty), *_LOAD],
}  # fmt: skip
PREPARE_SAVE_DEPLOY = [
    "inference_conda_env", "inference_python_version", "training_conda_env",
    "training_python_version", "model_file_name", "as_onnx", "initial_types", "force_overwrite",
    "namespace", "use_case_type", "X_sample", "y_sample", "training_script_path", "training_id",
    "ignore_pending_changes", "max_col_num", "ignore_conda_error", "model_display_name",
    "model_description", "model_freeform_tags", "model_defined_tags", "ignore_introspection",
    "wait_for_completion", "deployment_display_name", "deployment_description",
    *_DEPLOYMENT_OPTIONS, "bucket_uri", "overwrite_existing_artifact",
    "remove_existing_artifact", "model_version_set", "version_label", "model_by_reference",
    "kwargs",
]  # fmt: skip


def _parameters(method: str) -> list[tuple[str, object]]:
    params = inspect.signature(getattr(GenericModel, method)).parameters.values()
    return [
        (p.name, "**" if p.kind is inspect.Parameter.VAR_KEYWORD else p.default)
        for p in params
        if p.name not in ("self", "cls")
    ]


def test_the_deploy_side_signatures_follow_the_reference():
    for method, expected in DEPLOY_SIDE_SIGNATURES.items():
        assert _parameters(method) == expected, method
    assert [name for name, _ in _parameters("prepare_save_deploy")] == PREPARE_SAVE_DEPLOY
    assert isinstance(inspect.getattr_static(GenericModel, "model_deployment_id"), property)
