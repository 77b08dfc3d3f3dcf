"""Introspection of artifact folders: staged checks, derived status, no writes."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import textwrap
import warnings

import oci
import pandas as pd
import pytest

from ocimodel.errors import IntrospectionNotPassed
from ocimodel.introspect import (
    CASES,
    TEST_STATUS,
    IntrospectionWarning,
    ModelIntrospect,
    PrintItem,
    run_checks,
)

# No OCI config: object storage cannot be reached from these tests unless one says otherwise.
pytestmark = pytest.mark.usefixtures("offline")

GOOD_SCORE = textwrap.dedent(
    """
    import os

    def load_model(model_file_name="model.pkl"):
        return None

    def predict(data, model=load_model(), *, threshold=0.5):
        return {"prediction": data}
    """
)

PACK = "oci://service-conda-packs@id19sfcrra6z/service_pack/cpu/General/1.0/generalml_p311"


def runtime_yaml(version="'3.0'", python="'3.11'", path=PACK) -> str:
    return textwrap.dedent(
        f"""
        MODEL_ARTIFACT_VERSION: {version}
        MODEL_DEPLOYMENT:
          INFERENCE_CONDA_ENV:
            INFERENCE_ENV_PATH: {path}
            INFERENCE_ENV_SLUG: generalml_p311
            INFERENCE_ENV_TYPE: published
            INFERENCE_PYTHON_VERSION: {python}
        """
    )


def make_artifact(tmp_path, score=GOOD_SCORE, runtime=None):
    folder = tmp_path / "artifact"
    folder.mkdir(parents=True)
    if score is not None:
        (folder / "score.py").write_text(score)
    if runtime is not False:
        (folder / "runtime.yaml").write_text(runtime or runtime_yaml())
    return folder


def results_by_key(results):
    return {r.key: r for r in results}


def snapshot(folder):
    return {
        p: (
            os.stat(os.path.join(folder, p)).st_mtime_ns,
            open(os.path.join(folder, p), "rb").read(),
        )
        for p in sorted(os.listdir(folder))
    }


def test_good_artifact_passes_with_storage_check_skipped_and_writes_nothing(tmp_path):
    folder = make_artifact(tmp_path)
    before = snapshot(folder)
    intro = ModelIntrospect(str(folder))
    assert intro.status == TEST_STATUS.NOT_TESTED
    with pytest.warns(IntrospectionWarning, match="could not be reached"):
        df = intro()
    assert isinstance(df, pd.DataFrame)
    assert list(df.columns) == ["Test key", "Test name", "Result", "Message"]
    assert list(df["Test key"]) == list(CASES)  # every check, in stage order
    by_key = results_by_key(intro.results)
    skipped = by_key.pop("runtime_path_exist")
    assert skipped.result == TEST_STATUS.NOT_TESTED
    assert "auth" in skipped.message
    assert all(r.result == TEST_STATUS.PASSED for r in by_key.values()), by_key
    assert intro.failures == 0
    assert intro.status == TEST_STATUS.PASSED  # skipped checks never make it fail
    intro.raise_if_failed()
    assert snapshot(folder) == before


def test_missing_files_fail_and_skip_their_stages(tmp_path):
    folder = make_artifact(tmp_path, score=None, runtime=False)
    by_key = results_by_key(run_checks(str(folder)))
    assert by_key["score_py"].result == TEST_STATUS.NOT_PASSED
    assert "prepare()" in by_key["score_py"].message
    assert by_key["runtime_yaml"].result == TEST_STATUS.NOT_PASSED
    for key in CASES:
        if key not in ("score_py", "runtime_yaml"):
            assert by_key[key].result == TEST_STATUS.NOT_TESTED, key


@pytest.mark.parametrize(
    ("score", "failed_key", "hint"),
    [
        ("def predict(data):\n    return data\n", "score_load_model", "load_model"),
        ("def load_model():\n    pass\n", "score_predict", "predict"),
        (
            "def load_model():\n    pass\ndef predict(x, model=None):\n    pass\n",
            "score_predict_data",
            "`data`",
        ),
        (
            "def load_model():\n    pass\ndef predict(data, model):\n    pass\n",
            "score_predict_arg",
            "model",
        ),
        (
            "def load_model():\n    pass\ndef predict(data, *, limit):\n    pass\n",
            "score_predict_arg",
            "limit",
        ),
        (
            "class Scorer:\n    def load_model(self):\n        pass\n"
            "    def predict(self, data):\n        pass\n",
            "score_load_model",
            "top-level",
        ),
    ],
)
def test_score_py_problems_fail_the_right_check(tmp_path, score, failed_key, hint):
    intro = ModelIntrospect(str(make_artifact(tmp_path, score=score)), check_remote=False)
    intro.run()
    by_key = results_by_key(intro.results)
    assert by_key[failed_key].result == TEST_STATUS.NOT_PASSED
    assert hint in by_key[failed_key].message
    assert intro.status == TEST_STATUS.NOT_PASSED
    assert intro.failures == sum(r.failed for r in intro.results) >= 1
    with pytest.raises(IntrospectionNotPassed, match=failed_key):
        intro.raise_if_failed()


def test_syntax_error_names_the_line_and_skips_the_rest(tmp_path):
    folder = make_artifact(tmp_path, score="def load_model(:\n    pass\n")
    by_key = results_by_key(run_checks(str(folder), check_remote=False))
    assert by_key["score_syntax"].result == TEST_STATUS.NOT_PASSED
    assert "line 1" in by_key["score_syntax"].message
    for key in ("score_load_model", "score_predict", "score_predict_data", "score_predict_arg"):
        assert by_key[key].result == TEST_STATUS.NOT_TESTED
    assert by_key["runtime_version"].result == TEST_STATUS.PASSED


@pytest.mark.parametrize(
    ("runtime", "failed_key"),
    [
        (runtime_yaml(version="'2.0'"), "runtime_version"),
        (runtime_yaml(python="'2.7'"), "runtime_env_python"),
        (runtime_yaml(python="'3.99'"), "runtime_env_python"),
        (runtime_yaml(python="null"), "runtime_env_python"),
        (runtime_yaml(path="''"), "runtime_env_path"),
        (runtime_yaml(path="/local/pack"), "runtime_env_path"),
    ],
)
def test_runtime_yaml_problems_fail_the_right_check(tmp_path, runtime, failed_key):
    folder = make_artifact(tmp_path, runtime=runtime)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", IntrospectionWarning)
        by_key = results_by_key(run_checks(str(folder)))
    assert by_key[failed_key].result == TEST_STATUS.NOT_PASSED
    assert "prepare(" in by_key[failed_key].message or "set it" in by_key[failed_key].message
    if failed_key == "runtime_env_path":
        assert by_key["runtime_path_exist"].result == TEST_STATUS.NOT_TESTED


@pytest.mark.parametrize("python", ["'3.8'", "'3.11'", "'3.13'", "'3.12.4'"])
def test_supported_python_versions_pass(tmp_path, python):
    folder = make_artifact(tmp_path, runtime=runtime_yaml(python=python))
    by_key = results_by_key(run_checks(str(folder), check_remote=False))
    assert by_key["runtime_env_python"].result == TEST_STATUS.PASSED


def test_invalid_yaml_fails_version_and_skips_rest(tmp_path):
    folder = make_artifact(tmp_path, runtime="MODEL_ARTIFACT_VERSION: [unclosed\n")
    by_key = results_by_key(run_checks(str(folder)))
    assert by_key["runtime_version"].result == TEST_STATUS.NOT_PASSED
    assert "YAML" in by_key["runtime_version"].message
    assert by_key["runtime_path_exist"].result == TEST_STATUS.NOT_TESTED


def test_storage_lookup_outcomes(tmp_path):
    folder = str(make_artifact(tmp_path))
    found = results_by_key(run_checks(folder, exists=lambda uri: uri == PACK))
    assert found["runtime_path_exist"].result == TEST_STATUS.PASSED
    missing = results_by_key(run_checks(folder, exists=lambda uri: False))
    assert missing["runtime_path_exist"].result == TEST_STATUS.NOT_PASSED
    assert PACK in missing["runtime_path_exist"].message


def test_to_dict_holds_every_check_for_artifact_test_results(tmp_path):
    intro = ModelIntrospect(str(make_artifact(tmp_path, score="x = 1\n")), check_remote=False)
    intro.run()
    value = intro.to_dict()
    assert set(value) == set(CASES)
    assert value["score_load_model"]["success"] is False
    assert "load_model" in value["score_load_model"]["error_msg"]
    assert value["runtime_version"]["success"] is True
    assert value["runtime_path_exist"]["success"] is None


def test_bad_arguments_raise_typed_errors(tmp_path):
    with pytest.raises(ValueError):
        ModelIntrospect(None)
    with pytest.raises(TypeError, match="int"):
        ModelIntrospect(42)
    with pytest.raises(FileNotFoundError, match="prepare"):
        ModelIntrospect(str(tmp_path / "nope")).run()


def test_print_item_to_list():
    assert PrintItem("k", "c", "Passed", "m").to_list() == ["k", "c", "Passed", "m"]


def test_env_path_lookup_against_the_local_object_storage(local_oci, monkeypatch, tmp_path):
    for key, value in local_oci.env().items():
        monkeypatch.setenv(key, value)
    seeded = (
        "oci://service-conda-packs@id19sfcrra6z/service_pack/cpu/"
        "General_Machine_Learning_for_CPUs_on_Python_3.11/1.0/generalml_p311_cpu_x86_64_v1"
    )
    found = make_artifact(tmp_path / "found", runtime=runtime_yaml(path=seeded))
    by_key = results_by_key(run_checks(str(found)))
    assert by_key["runtime_path_exist"].result == TEST_STATUS.PASSED
    missing_pack = seeded.rsplit("/", 1)[0] + "/no_such_pack_v9"
    missing = make_artifact(tmp_path / "missing", runtime=runtime_yaml(path=missing_pack))
    intro = ModelIntrospect(str(missing))
    intro.run()
    result = results_by_key(intro.results)["runtime_path_exist"]
    assert result.result == TEST_STATUS.NOT_PASSED
    assert "no_such_pack_v9" in result.message and "publish" in result.message
    assert intro.status == TEST_STATUS.NOT_PASSED and intro.failures == 1


SILENT_STORAGE_CHECK = textwrap.dedent(
    """
    import sys, warnings
    from ocimodel.introspect import run_checks

    warnings.simplefilter("ignore")
    results = {r.key: r for r in run_checks(sys.argv[1], remote_timeout=1)}
    print(results["runtime_path_exist"].result)
    print(results["runtime_path_exist"].message)
    """
)


def test_unanswering_storage_is_skipped_and_the_process_exits(tmp_path, local_oci):
    """An endpoint that accepts connections but never answers leaves no SDK call behind."""
    folder = make_artifact(tmp_path)
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    try:
        host, port = silent.getsockname()
        env = {
            **os.environ,
            **local_oci.env(),
            "OCIMODEL_SERVICE_ENDPOINT": f"http://{host}:{port}",
        }
        done = subprocess.run(
            [sys.executable, "-c", SILENT_STORAGE_CHECK, str(folder)],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        silent.close()
    assert done.returncode == 0, done.stderr
    status, message = done.stdout.splitlines()[:2]
    assert status == TEST_STATUS.NOT_TESTED
    assert PACK in message and "could not be reached" in message


def test_storage_lookup_against_the_local_service(tmp_path, local_oci, local_auth):
    """The bounded lookup finds an existing object, reports a missing one as Failed."""
    client = local_oci.client(oci.object_storage.ObjectStorageClient)
    namespace = client.get_namespace().data
    bucket = "introspect-packs"
    with contextlib.suppress(oci.exceptions.ServiceError):
        client.create_bucket(
            namespace,
            oci.object_storage.models.CreateBucketDetails(
                name=bucket, compartment_id=local_oci.config["tenancy"]
            ),
        )
    client.put_object(namespace, bucket, "packs/generalml_p311", b"pack")
    present = f"oci://{bucket}@{namespace}/packs/generalml_p311"
    folder = str(make_artifact(tmp_path, runtime=runtime_yaml(path=present)))
    found = results_by_key(run_checks(folder, auth=local_auth, remote_timeout=5))
    assert found["runtime_path_exist"].result == TEST_STATUS.PASSED
    absent = present + "_missing"
    other = tmp_path / "other"
    other.mkdir()
    folder = str(make_artifact(other, runtime=runtime_yaml(path=absent)))
    missing = results_by_key(run_checks(folder, auth=local_auth, remote_timeout=5))
    assert missing["runtime_path_exist"].result == TEST_STATUS.NOT_PASSED
