"""runtime.yaml schema validation and conda environment resolution."""

from __future__ import annotations

import json

import pytest
import yaml

from ocimodel import conda
from ocimodel.conda import CondaEnvInfo, parse_service_pack_index, resolve_conda_env
from ocimodel.errors import ArtifactFileExistsError, CondaEnvError, RuntimeYamlError
from ocimodel.runtime import (
    InferenceCondaEnv,
    ModelDeployment,
    RuntimeInfo,
    read_runtime_yaml,
    validate_runtime_dict,
)

PACK = (
    "oci://service-conda-packs@id19sfcrra6z/service_pack/cpu/General ML/1.0/generalml_p311_cpu_v1"
)


def _valid_info() -> RuntimeInfo:
    return RuntimeInfo(
        model_deployment=ModelDeployment(
            InferenceCondaEnv(PACK, "generalml_p311_cpu_v1", "data_science", "3.11")
        )
    )


@pytest.fixture
def index_file(tmp_path, monkeypatch):
    """A service pack index file that conda resolution reads instead of the OCI bucket."""
    doc = {
        "packs": [
            {"slug": "generalml_p311_cpu_v1", "pack_path": PACK, "python": "3.11"},
            {
                "slug": "onnx_p310_cpu_v1",
                "pack_path": "service_pack/cpu/ONNX/1.0/onnx_p310_cpu_v1",
                "python": 3.10,
            },
        ]
    }
    path = tmp_path / "index.json"
    path.write_text(json.dumps(doc))
    monkeypatch.setenv(conda.ENV_INDEX_URI, str(path))
    return path


def test_round_trip_keeps_exact_keys_and_quotes_versions(tmp_path):
    info = _valid_info()
    info.model_provenance.training_code.artifact_directory = "/tmp/art"
    text = info.to_yaml()
    assert "MODEL_ARTIFACT_VERSION: '3.0'" in text
    assert "INFERENCE_PYTHON_VERSION: '3.11'" in text
    doc = yaml.safe_load(text)
    assert list(doc) == ["MODEL_ARTIFACT_VERSION", "MODEL_DEPLOYMENT", "MODEL_PROVENANCE"]
    assert list(doc["MODEL_DEPLOYMENT"]["INFERENCE_CONDA_ENV"]) == [
        "INFERENCE_ENV_PATH",
        "INFERENCE_ENV_SLUG",
        "INFERENCE_ENV_TYPE",
        "INFERENCE_PYTHON_VERSION",
    ]
    assert list(doc["MODEL_PROVENANCE"]) == [
        "PROJECT_OCID",
        "TENANCY_OCID",
        "TRAINING_CODE",
        "TRAINING_COMPARTMENT_OCID",
        "TRAINING_CONDA_ENV",
        "TRAINING_REGION",
        "TRAINING_RESOURCE_OCID",
        "USER_OCID",
        "VM_IMAGE_INTERNAL_ID",
    ]
    assert list(doc["MODEL_PROVENANCE"]["TRAINING_CONDA_ENV"]) == [
        "TRAINING_ENV_PATH",
        "TRAINING_ENV_SLUG",
        "TRAINING_ENV_TYPE",
        "TRAINING_PYTHON_VERSION",
    ]
    path = info.save(str(tmp_path))
    again = read_runtime_yaml(path)
    assert again == info
    assert again.model_provenance.training_code.artifact_directory == "/tmp/art"


def test_every_problem_is_reported_at_once(tmp_path):
    path = tmp_path / "runtime.yaml"
    path.write_text(
        "MODEL_ARTIFACT_VERSION: '2.0'\n"
        "MODEL_DEPLOYMENT:\n"
        "  INFERENCE_CONDA_ENV:\n"
        "    INFERENCE_ENV_PATH: s3://bucket/pack\n"
        "    INFERENCE_ENV_TYPE: conda\n"
        "    INFERENCE_PYTHON_VERSION: 3.10\n"
        "MODEL_PROVENANCE:\n"
        "  TRAINING_CONDA_ENV: oops\n"
    )
    with pytest.raises(RuntimeYamlError) as err:
        read_runtime_yaml(str(path))
    problems = err.value.problems
    text = str(err.value)
    assert str(path) in text
    assert any("MODEL_ARTIFACT_VERSION is '2.0'" in p for p in problems)
    assert any("INFERENCE_ENV_PATH is 's3://bucket/pack'" in p for p in problems)
    assert any("INFERENCE_ENV_SLUG is missing" in p for p in problems)
    assert any("INFERENCE_ENV_TYPE is 'conda'" in p and "data_science" in p for p in problems)
    # An unquoted 3.10 is read by YAML as the float 3.1: it must be reported, not accepted.
    assert any("INFERENCE_PYTHON_VERSION is 3.1 (float)" in p and "quote" in p for p in problems)
    assert any("TRAINING_CONDA_ENV must be a mapping" in p for p in problems)
    assert len(problems) == 6


def test_missing_sections_and_python_version_are_reported():
    assert validate_runtime_dict({"MODEL_ARTIFACT_VERSION": "3.0"}) == [
        "MODEL_DEPLOYMENT is missing; add the MODEL_DEPLOYMENT section."
    ]
    doc = _valid_info().to_dict()
    doc["MODEL_DEPLOYMENT"]["INFERENCE_CONDA_ENV"]["INFERENCE_PYTHON_VERSION"] = ""
    problems = validate_runtime_dict(doc)
    assert len(problems) == 1 and "INFERENCE_PYTHON_VERSION is empty" in problems[0]
    assert validate_runtime_dict(["not", "a", "mapping"])[0].startswith("the document must be")
    bad = _valid_info()
    bad.model_deployment.inference_conda_env.inference_python_version = "python three"
    with pytest.raises(RuntimeYamlError, match="'python three'"):
        bad.validate()


def test_provenance_section_is_optional_and_empty_env_is_valid():
    doc = _valid_info().to_dict()
    del doc["MODEL_PROVENANCE"]
    assert validate_runtime_dict(doc) == []
    empty = RuntimeInfo()
    assert validate_runtime_dict(empty.to_dict()) == []


def test_read_errors_are_typed(tmp_path):
    with pytest.raises(RuntimeYamlError, match="file not found"):
        read_runtime_yaml(str(tmp_path))
    (tmp_path / "runtime.yaml").write_text("MODEL_ARTIFACT_VERSION: [unclosed\n")
    with pytest.raises(RuntimeYamlError, match="not valid YAML"):
        read_runtime_yaml(str(tmp_path / "runtime.yaml"))


def test_save_refuses_to_replace_without_force(tmp_path):
    info = _valid_info()
    path = info.save(str(tmp_path))
    before = open(path).read()
    info.model_deployment.inference_conda_env.inference_python_version = "3.12"
    with pytest.raises(ArtifactFileExistsError, match="force_overwrite=True"):
        info.save(path, force_overwrite=False)
    assert open(path).read() == before
    info.save(path, force_overwrite=True)
    assert read_runtime_yaml(
        path
    ).model_deployment.inference_conda_env.inference_python_version == ("3.12")


def test_invalid_runtime_info_is_not_written(tmp_path):
    info = _valid_info()
    info.model_artifact_version = "9"
    with pytest.raises(RuntimeYamlError):
        info.save(str(tmp_path))
    assert list(tmp_path.iterdir()) == []


def test_index_formats_are_read_tolerantly():
    source = "oci://service-conda-packs@ns1/service_pack/index.json"
    as_list = [{"slug": "a", "pack_path": "service_pack/cpu/a/1.0/a", "python": "3.9"}]
    wrapped = {"packs": as_list}
    keyed = {"a": {"path": "oci://b@n/x/a", "python_version": "python3.9"}}
    grouped = {"linux": as_list, "mac": []}
    expected = CondaEnvInfo(
        "a", "oci://service-conda-packs@ns1/service_pack/cpu/a/1.0/a", "3.9", "data_science"
    )
    assert parse_service_pack_index(as_list, source)["a"] == expected
    assert parse_service_pack_index(wrapped, source)["a"] == expected
    assert parse_service_pack_index(grouped, source)["a"] == expected
    assert parse_service_pack_index(keyed, source)["a"] == CondaEnvInfo(
        "a", "oci://b@n/x/a", "3.9", "data_science"
    )
    assert parse_service_pack_index({"packs": [{"slug": "no-path"}]}, source) == {}


def test_slug_resolves_through_index(index_file):
    info = resolve_conda_env("generalml_p311_cpu_v1")
    assert info == CondaEnvInfo("generalml_p311_cpu_v1", PACK, "3.11", "data_science")
    onnx = resolve_conda_env("onnx_p310_cpu_v1", python_version="3.10.4")
    assert onnx.python_version == "3.10.4"
    assert onnx.path.endswith("service_pack/cpu/ONNX/1.0/onnx_p310_cpu_v1")


def test_full_path_is_published_without_reading_the_index(monkeypatch, tmp_path):
    monkeypatch.setenv(conda.ENV_INDEX_URI, str(tmp_path / "absent.json"))
    info = resolve_conda_env("oci://my-bucket@my-ns/conda/mypack_v1", python_version="3.11")
    assert info == CondaEnvInfo(
        "mypack_v1", "oci://my-bucket@my-ns/conda/mypack_v1", "3.11", "published"
    )


def test_unknown_slug_and_unreadable_index_are_typed(index_file, monkeypatch, tmp_path):
    with pytest.raises(CondaEnvError) as err:
        resolve_conda_env("nope_v9")
    assert "'nope_v9'" in str(err.value) and "generalml_p311_cpu_v1" in str(err.value)
    assert "inference_python_version" in str(err.value)
    with pytest.raises(CondaEnvError, match="neither a service pack slug"):
        resolve_conda_env("s3://bucket/pack")
    with pytest.raises(CondaEnvError, match="No conda environment"):
        resolve_conda_env("  ")
    monkeypatch.setenv(conda.ENV_INDEX_URI, str(tmp_path / "absent.json"))
    with pytest.raises(CondaEnvError, match="could not be read.*CONDA_BUCKET_NS"):
        resolve_conda_env("generalml_p311_cpu_v1")
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    monkeypatch.setenv(conda.ENV_INDEX_URI, str(broken))
    with pytest.raises(CondaEnvError, match="not valid JSON"):
        resolve_conda_env("generalml_p311_cpu_v1")


def test_index_uri_defaults_and_env(monkeypatch):
    for name in (conda.ENV_INDEX_URI, conda.ENV_NAMESPACE, conda.ENV_BUCKET):
        monkeypatch.delenv(name, raising=False)
    assert conda.index_uri() == "oci://service-conda-packs@id19sfcrra6z/service_pack/index.json"
    monkeypatch.setenv(conda.ENV_NAMESPACE, "myns")
    monkeypatch.setenv(conda.ENV_BUCKET, "mypacks")
    assert conda.index_uri() == "oci://mypacks@myns/service_pack/index.json"
    assert conda.index_uri("other", "b") == "oci://b@other/service_pack/index.json"
