"""The package's public API follows the reference: every name of the prepare stage importable
from ``ocimodel`` (exceptions with the reference's bases), GenericModel's prepare-side
signatures and properties, and an ``import ocimodel`` that loads none of the heavy libraries."""

from __future__ import annotations

import inspect
import subprocess
import sys

import pytest

import ocimodel
from ocimodel import TEST_STATUS, GenericModel, OcimodelError

REFERENCE_NAMES = {
    # classes and enums of the reference that the prepare stage covers
    "ModelArtifact", "ModelIntrospect", "Introspectable", "PrintItem", "TEST_STATUS",
    "ModelCustomMetadata", "ModelCustomMetadataItem", "ModelTaxonomyMetadata",
    "ModelTaxonomyMetadataItem", "ModelProvenanceMetadata", "ModelMetadata", "ModelMetadataItem",
    "UseCaseType", "Framework", "MetadataCustomCategory", "MetadataCustomKeys",
    "MetadataCustomPrintColumns", "MetadataTaxonomyKeys", "MetadataTaxonomyPrintColumns",
    "MetadataMixin", "GenericModel", "FrameworkSpecificModel", "SummaryStatus", "ModelState",
    "DataScienceModelType", "ModelDeploymentRuntimeType", "ModelProperties", "BaseProperties",
}  # fmt: skip


REFERENCE_EXCEPTIONS = {
    "AritfactFolderStructureError": (),
    "ArtifactNestedFolderError": (),
    "ArtifactRequiredFilesError": (),
    "ArtifactsNotAvailableError": (),
    "NotActiveDeploymentError": (),
    "RuntimeInfoInconsistencyError": (),
    "SerializeInputNotImplementedError": (NotImplementedError,),
    "SerializeModelNotImplementedError": (NotImplementedError,),
    "IntrospectionNotPassed": (ValueError,),
    "MetadataDescriptionTooLong": (ValueError,),
    "MetadataSizeTooLarge": (ValueError,),
    "MetadataValueTooLong": (ValueError,),
}


def test_every_reference_name_of_the_prepare_stage_is_importable_from_the_package():
    for name in REFERENCE_NAMES | set(REFERENCE_EXCEPTIONS):
        assert name in ocimodel.__all__, name
        assert getattr(ocimodel, name).__name__ == name, name
    for name, bases in REFERENCE_EXCEPTIONS.items():
        error = getattr(ocimodel, name)
        assert issubclass(error, OcimodelError), name
        for base in bases:
            assert issubclass(error, base), (name, base)
    assert {s.value for s in ocimodel.ModelState} == {
        "Done", "Available", "Not Available", "Not Applicable", "Needs Action",
    }  # fmt: skip
    assert (TEST_STATUS.PASSED, TEST_STATUS.NOT_PASSED, TEST_STATUS.NOT_TESTED) == (
        "Passed",
        "Failed",
        "Skipped",
    )
    assert ocimodel.DataScienceModelType.MODEL == "datasciencemodel"
    assert ocimodel.ModelDeploymentRuntimeType.CONDA == "conda"


def test_public_api_names_and_light_import():
    names = [
        "ModelArtifact", "ModelIntrospect", "ModelCustomMetadata", "ModelTaxonomyMetadata",
        "ModelProvenanceMetadata", "UseCaseType", "Framework", "MetadataCustomCategory",
        "FrameworkSpecificModel", "SummaryStatus", "ModelState", "TEST_STATUS", "PrintItem",
        "DataScienceModelType", "ModelDeploymentRuntimeType", "GenericModel", "ModelProperties",
        "IntrospectionNotPassed", "AritfactFolderStructureError", "ArtifactNestedFolderError",
        "ArtifactRequiredFilesError", "ArtifactsNotAvailableError", "NotActiveDeploymentError",
        "RuntimeInfoInconsistencyError", "SerializeModelNotImplementedError",
        "SerializeInputNotImplementedError", "MetadataValueTooLong", "MetadataSizeTooLarge",
        "MetadataDescriptionTooLong", "Introspectable", "MetadataMixin", "BaseProperties",
    ]  # fmt: skip
    for name in names:
        assert getattr(ocimodel, name).__name__ == name, name
    assert set(names) <= set(ocimodel.__all__)
    heavy = "{'prefect', 'pandas', 'oci', 'sklearn'}"
    code = f"import sys, ocimodel; print(sorted({heavy} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


_SAMPLE = None
REFERENCE_SIGNATURES = {
    "__init__": [
        ("estimator", None), ("artifact_dir", None), ("properties", None), ("auth", None),
        ("serialize", True), ("model_save_serializer", None), ("model_input_serializer", None),
        ("kwargs", _SAMPLE),
    ],
    "prepare": [
        ("inference_conda_env", None), ("inference_python_version", None),
        ("training_conda_env", None), ("training_python_version", None),
        ("model_file_name", None), ("as_onnx", False), ("initial_types", None),
        ("force_overwrite", False), ("namespace", "id19sfcrra6z"), ("use_case_type", None),
        ("X_sample", None), ("y_sample", None), ("training_script_path", None),
        ("training_id", None), ("ignore_pending_changes", True), ("max_col_num", 2000),
        ("ignore_conda_error", False), ("score_py_uri", None), ("kwargs", _SAMPLE),
    ],
    "serialize_model": [
        ("as_onnx", False), ("initial_types", None), ("force_overwrite", False),
        ("X_sample", None), ("kwargs", _SAMPLE),
    ],
    "populate_metadata": [
        ("use_case_type", None), ("data_sample", None), ("X_sample", None), ("y_sample", None),
        ("training_script_path", None), ("training_id", None),
        ("ignore_pending_changes", True), ("max_col_num", 2000), ("ignore_conda_error", False),
        ("kwargs", _SAMPLE),
    ],
    "populate_schema": [
        ("data_sample", None), ("X_sample", None), ("y_sample", None), ("max_col_num", 2000),
        ("kwargs", _SAMPLE),
    ],
    "from_model_artifact": [
        ("uri", inspect.Parameter.empty), ("model_file_name", None), ("artifact_dir", None),
        ("auth", None), ("force_overwrite", False), ("properties", None),
        ("ignore_conda_error", False), ("kwargs", _SAMPLE),
    ],
    "set_model_save_serializer": [("model_save_serializer", inspect.Parameter.empty)],
    "set_model_input_serializer": [("model_input_serializer", inspect.Parameter.empty)],
    "reload": [],
    "reload_runtime_info": [],
    "introspect": [],
    "summary_status": [],
}  # fmt: skip


@pytest.mark.parametrize("method", sorted(REFERENCE_SIGNATURES))
def test_generic_model_prepare_side_signatures_follow_the_reference(method):
    params = [
        p
        for p in inspect.signature(getattr(GenericModel, method)).parameters.values()
        if p.name not in ("self", "cls")
    ]
    got = [
        (p.name, _SAMPLE if p.kind is inspect.Parameter.VAR_KEYWORD else p.default) for p in params
    ]
    assert got == REFERENCE_SIGNATURES[method]


def test_generic_model_prepare_side_properties_and_verify_parameters(tmp_path):
    for name in ("metadata_taxonomy", "metadata_custom", "metadata_provenance"):
        assert isinstance(inspect.getattr_static(GenericModel, name), property), name
    for name in ("schema_input", "schema_output"):
        assert isinstance(inspect.getattr_static(GenericModel, name), property), name
    model = GenericModel(object(), artifact_dir=str(tmp_path / "a"))
    assert model.runtime_info is None  # filled by prepare/reload
    verify = inspect.signature(GenericModel.verify).parameters
    assert list(verify)[1:4] == ["data", "reload_artifacts", "auto_serialize_data"]
    assert verify["data"].default is None and verify["reload_artifacts"].default is True
