"""One definition of the prepare pipeline: the spec, the steps, and who uses them."""

from __future__ import annotations

import dataclasses
import inspect

import pytest

from ocimodel.errors import OcimodelError
from ocimodel.flows.prepare_model import prepare_model
from ocimodel.generic_model import GenericModel
from ocimodel.pipeline import PREPARE_STEPS, PrepareSpec, call_directly, run_prepare
from ocimodel.tasks.prepare import PREPARE_TASKS

PACK = "oci://bucket@namespace/conda/pack"
SPEC_ONLY = {"serialize", "properties", "template_kwargs"}
"""Spec fields that are not flow parameters: set by GenericModel or the API, not a UI form."""
FLOW_ONLY = {"model", "X_sample", "y_sample", "ignore_introspection", "check_remote", "verify_data"}


def _spec_defaults() -> dict[str, object]:
    return {
        f.name: f.default
        for f in dataclasses.fields(PrepareSpec)
        if f.default is not dataclasses.MISSING
    }


def test_the_flow_takes_exactly_the_spec_fields_with_the_same_defaults():
    flow_params = inspect.signature(prepare_model.fn).parameters
    spec_fields = {f.name for f in dataclasses.fields(PrepareSpec)} - SPEC_ONLY
    assert set(flow_params) - FLOW_ONLY == spec_fields
    for name, default in _spec_defaults().items():
        if name in flow_params:
            assert flow_params[name].default == default, name


def test_the_flow_form_is_json_for_the_prefect_ui():
    schema = prepare_model.parameters.model_dump()
    properties = schema["properties"]
    assert properties["inference_conda_env"]["default"] is None
    assert properties["model_save_serializer"]["default"] == "cloudpickle"
    assert properties["max_col_num"]["default"] == PrepareSpec.max_col_num
    assert set(schema["required"]) == {"model", "artifact_dir"}


def test_generic_model_prepare_shares_the_spec_defaults():
    params = inspect.signature(GenericModel.prepare).parameters
    shared = set(params) & set(_spec_defaults())
    assert {"namespace", "max_col_num", "ignore_pending_changes", "force_overwrite"} <= shared
    for name in shared:
        assert params[name].default == _spec_defaults()[name], name


def test_each_step_has_a_task_that_takes_its_core_function_parameters():
    assert list(PREPARE_TASKS) == [step.name for step in PREPARE_STEPS]
    for step in PREPARE_STEPS:
        task_ = PREPARE_TASKS[step.name]
        assert inspect.signature(task_.fn) == inspect.signature(step.function), step.name


def test_steps_run_in_one_order_and_a_failed_step_undoes_the_others(tmp_path):
    folder = tmp_path / "art"
    seen: list[str] = []

    def record(step, arguments):
        seen.append(step.name)
        return call_directly(step, arguments)

    spec = PrepareSpec.of(str(folder), inference_conda_env=PACK, inference_python_version="3.11")
    prepared = run_prepare({"w": 1}, spec, execute=record)
    assert seen == ["generate-runtime-yaml", "generate-score-py", "populate-metadata",
                    "serialize-model"]  # fmt: skip
    assert prepared.model is not None and prepared.model.file_name == "model.pkl"
    before = {p.name: p.read_bytes() for p in folder.iterdir()}

    def fail_at_model(step, arguments):
        if step.name == "serialize-model":
            raise RuntimeError("disk full")
        return call_directly(step, arguments)

    changed = dataclasses.replace(spec, use_case_type="regression", force_overwrite=True)
    with pytest.raises(RuntimeError, match="disk full"):
        run_prepare({"w": 2}, changed, execute=fail_at_model)
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before


def test_spec_options_that_are_not_fields_become_template_variables(tmp_path):
    spec = PrepareSpec.of(str(tmp_path), inference_conda_env=PACK, custom_var="x")
    assert spec.inference_conda_env == PACK
    assert dict(spec.template_kwargs) == {"custom_var": "x"}


def test_a_bad_option_fails_before_the_folder_is_created(tmp_path):
    folder = tmp_path / "never"
    spec = PrepareSpec.of(str(folder), inference_conda_env=PACK, use_case_type="regresion")
    with pytest.raises(OcimodelError, match="regresion"):
        run_prepare({"w": 1}, spec)
    assert not folder.exists()
