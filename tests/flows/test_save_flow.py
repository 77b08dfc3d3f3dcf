"""The prepare-and-save flow and the save tasks under a real Prefect server and the local OCI."""

from __future__ import annotations

import dataclasses
import inspect

from prefect.artifacts import Artifact

from ocimodel.flows.prepare_and_save import SAVE_PARAMS, prepare_and_save
from ocimodel.flows.prepare_model import prepare_model
from ocimodel.oci import catalog
from ocimodel.save import SAVE_TAG, SaveSpec
from ocimodel.tasks.save import MODEL_ARTIFACT_KEY, UPLOAD_PROGRESS_KEY, download_model

SLUG = "generalml_p311_cpu_x86_64_v1"


def test_the_flow_takes_the_prepare_flow_parameters_and_the_save_ones():
    params = inspect.signature(prepare_and_save.fn).parameters
    prepare = inspect.signature(prepare_model.fn).parameters
    assert set(params) == set(prepare) | set(SAVE_PARAMS)
    for name, param in prepare.items():
        assert params[name].default == param.default, name
    spec_fields = {f.name: f.default for f in dataclasses.fields(SaveSpec)}
    for name in SAVE_PARAMS:
        assert params[name].default == spec_fields[name], name


def test_prepare_and_save_twice_gives_one_model_with_its_artifact(
    iris, catalog_env, tmp_path, bucket, namespace
):
    estimator, X, _ = iris
    kwargs = dict(
        inference_conda_env=SLUG,
        X_sample=X.head(10),
        display_name="iris",
        bucket_uri=f"oci://{bucket}@{namespace}/staging/",
    )
    model_id = prepare_and_save(estimator, str(tmp_path / "art"), **kwargs)
    assert catalog.artifact_info(None, model_id) is not None
    again = prepare_and_save(estimator, str(tmp_path / "art"), **kwargs)
    assert again == model_id
    compartment, project = catalog_env
    tag = catalog.get_model(None, model_id).freeform_tags[SAVE_TAG]
    assert len(catalog.find_models_by_tag(None, compartment, project, SAVE_TAG, tag)) == 1

    markdown = Artifact.get(MODEL_ARTIFACT_KEY)
    assert markdown is not None and model_id in markdown.data
    progress = Artifact.get(UPLOAD_PROGRESS_KEY)
    assert progress is not None and progress.type == "progress" and progress.data == 100.0

    folder = download_model(model_id, str(tmp_path / "back"))
    assert (tmp_path / "back" / "model.pkl").read_bytes() == (
        tmp_path / "art" / "model.pkl"
    ).read_bytes()
    assert folder == str(tmp_path / "back")
