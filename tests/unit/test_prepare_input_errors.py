"""Bad inputs to ``GenericModel.prepare`` fail before anything is written, with typed errors
that name the field and what it accepts: the conda pack and python version, the use case type,
the data sample and a custom metadata set over the catalog's budget."""

from __future__ import annotations

import os

import pytest
from prepare_support import OK_ENV, PACK
from prepare_support import is_empty as _is_empty

from ocimodel import GenericModel, MetadataSizeTooLarge, OcimodelError, RuntimeYamlError
from ocimodel.errors import CondaEnvError


def test_bad_conda_env_fails_before_writing_anything(iris, offline, tmp_path):
    folder = tmp_path / "fresh"
    model = GenericModel(iris[0], artifact_dir=str(folder))
    with pytest.raises(CondaEnvError, match="oci://"):
        model.prepare(inference_conda_env="not/a/slug", inference_python_version="3.11")
    assert not folder.exists() or os.listdir(folder) == []
    with pytest.raises(CondaEnvError, match="inference_python_version"):
        model.prepare(inference_conda_env=PACK)
    assert not folder.exists() or os.listdir(folder) == []


def test_bad_python_version_reports_every_field_and_writes_nothing(iris, offline, tmp_path):
    folder = tmp_path / "art"
    model = GenericModel(iris[0], artifact_dir=str(folder))
    with pytest.raises(RuntimeYamlError) as info:
        model.prepare(inference_conda_env=PACK, inference_python_version="2.7")
    text = str(info.value)
    assert "INFERENCE_PYTHON_VERSION is '2.7'" in text
    assert "TRAINING_PYTHON_VERSION is '2.7'" in text
    assert len(info.value.problems) == 2
    assert _is_empty(folder)


def test_malformed_pack_path_is_typed_and_writes_nothing(iris, offline, tmp_path):
    folder = tmp_path / "art"
    with pytest.raises(RuntimeYamlError, match="'oci://nobucket'.*oci://bucket@namespace"):
        GenericModel(iris[0], artifact_dir=str(folder)).prepare(
            inference_conda_env="oci://nobucket", inference_python_version="3.11"
        )
    assert _is_empty(folder)


def test_bad_use_case_type_fails_prepare_naming_valid_values(iris, offline, tmp_path):
    folder = tmp_path / "art"
    with pytest.raises(OcimodelError, match="'bogus'.*binary_classification"):
        GenericModel(iris[0], artifact_dir=str(folder)).prepare(use_case_type="bogus", **OK_ENV)
    assert _is_empty(folder)


def test_bad_sample_type_fails_prepare_naming_accepted_types(iris, offline, tmp_path):
    folder = tmp_path / "art"
    with pytest.raises(OcimodelError, match="set.*DataFrame"):
        GenericModel(iris[0], artifact_dir=str(folder)).prepare(X_sample={1, 2}, **OK_ENV)
    assert _is_empty(folder)


def test_custom_metadata_over_the_budget_fails_at_prepare(iris, offline, tmp_path):
    folder = tmp_path / "art"
    model = GenericModel(iris[0], artifact_dir=str(folder))
    size = 0
    for i in range(200):
        try:
            model.metadata_custom.add(f"key{i:03d}", "v" * 250, category="Other")
        except MetadataSizeTooLarge:
            break
        size += 1
    assert 0 < size < 200  # the budget refused an add at once
    with pytest.raises(MetadataSizeTooLarge, match="32000"):
        model.prepare(**OK_ENV)  # prepare's own items (conda env, model file...) do not fit
    assert _is_empty(folder)
