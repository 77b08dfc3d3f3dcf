"""Faults on demand in the local OCI service, observed through the real oci SDK."""

from __future__ import annotations

import json

import oci
import pytest
from oci.object_storage import ObjectStorageClient, UploadManager
from sdk_calls import NO_RETRY

from ocimodel.local.faults import (
    ENV_VAR,
    FaultRule,
    Faults,
    FaultSpecError,
    faults_of,
    rules_from_env,
)
from ocimodel.local.server import LocalOCI, LocalServiceError


@pytest.fixture
def no_retry_os(local_faults) -> ObjectStorageClient:
    return local_faults.client(ObjectStorageClient, retry_strategy=NO_RETRY)


@pytest.fixture
def bucket(namespace, bucket) -> tuple[str, str]:
    """(namespace, name) of a fresh bucket."""
    return namespace, bucket


@pytest.mark.parametrize(
    "status, code",
    [(429, "TooManyRequests"), (500, "InternalServerError"), (503, "ServiceUnavailable")],
)
def test_next_n_requests_fail_with_the_status_and_code(local_faults, no_retry_os, status, code):
    local_faults.set_faults({"operation": "get_namespace", "status": status, "count": 2})
    for _ in range(2):
        with pytest.raises(oci.exceptions.ServiceError) as err:
            no_retry_os.get_namespace()
        assert (err.value.status, err.value.code) == (status, code)
    assert no_retry_os.get_namespace().data
    [rule] = local_faults.faults()
    assert rule["applied"] == 2 and rule["count"] == 0


def test_sdk_retries_through_injected_errors(local_faults, fast_retry):
    local_faults.set_faults("operation=get_namespace,status=503,count=3")
    client = local_faults.client(ObjectStorageClient, retry_strategy=fast_retry)
    assert client.get_namespace().data
    assert local_faults.faults()[0]["applied"] == 3


def test_rule_targets_only_its_operation(local_faults, no_retry_os, bucket):
    namespace, name = bucket
    no_retry_os.put_object(namespace, name, "target", b"data")
    local_faults.set_faults({"operation": "head_object", "status": 500})
    assert no_retry_os.get_object(namespace, name, "target").data.content == b"data"
    with pytest.raises(oci.exceptions.ServiceError) as err:
        no_retry_os.head_object(namespace, name, "target")
    assert err.value.status == 500


def test_method_and_path_regex_rule(local_faults, no_retry_os, bucket):
    namespace, name = bucket
    no_retry_os.put_object(namespace, name, "keep/a", b"1")
    no_retry_os.put_object(namespace, name, "hit/b", b"2")
    local_faults.set_faults(
        {"method": "GET", "path": r"/o/hit(/|%2F)", "status": 429, "message": "slow down"}
    )
    assert no_retry_os.get_object(namespace, name, "keep/a").data.content == b"1"
    with pytest.raises(oci.exceptions.ServiceError) as err:
        no_retry_os.get_object(namespace, name, "hit/b")
    assert (err.value.status, err.value.message) == (429, "slow down")


def test_rate_zero_never_hits_and_rate_one_always_hits(local_faults, no_retry_os):
    local_faults.set_faults({"operation": "get_namespace", "status": 503, "rate": 0.0})
    for _ in range(5):
        assert no_retry_os.get_namespace().data
    local_faults.set_faults({"operation": "get_namespace", "status": 503, "rate": 1.0})
    for _ in range(3):
        with pytest.raises(oci.exceptions.ServiceError):
            no_retry_os.get_namespace()
    assert local_faults.faults()[0]["applied"] == 3


def test_latency_rule_delays_but_serves(local_faults, no_retry_os):
    local_faults.set_faults({"operation": "get_namespace", "latency_ms": 20, "count": 2})
    assert no_retry_os.get_namespace().data
    assert no_retry_os.get_namespace().data
    assert local_faults.faults()[0]["applied"] == 2


def test_dropped_connection_mid_body(local_faults, no_retry_os, bucket):
    namespace, name = bucket
    no_retry_os.put_object(namespace, name, "big", b"z" * 50_000)
    local_faults.set_faults({"operation": "get_object", "drop": True, "count": 1})
    with pytest.raises(Exception) as err:  # noqa: B017 - the SDK surfaces a raw read error
        no_retry_os.get_object(namespace, name, "big").data.content  # noqa: B018
    assert "IncompleteRead" in str(err.value)
    assert no_retry_os.get_object(namespace, name, "big").data.content == b"z" * 50_000


def test_sdk_retries_a_dropped_put(local_faults, fast_retry, bucket):
    namespace, name = bucket
    local_faults.set_faults({"operation": "put_object", "drop": True, "count": 1})
    client = local_faults.client(ObjectStorageClient, retry_strategy=fast_retry)
    client.put_object(namespace, name, "retried", b"payload")
    assert client.get_object(namespace, name, "retried").data.content == b"payload"
    assert local_faults.faults()[0]["applied"] == 1


def test_connection_reset_mid_upload_stores_nothing(local_faults, no_retry_os, fast_retry, bucket):
    namespace, name = bucket
    local_faults.set_faults(
        {"operation": "put_object", "drop": True, "drop_phase": "request", "count": 1}
    )
    body = b"u" * (4 * 1024 * 1024)
    with pytest.raises(oci.exceptions.RequestException) as err:
        no_retry_os.put_object(namespace, name, "reset", body)
    assert "reset" in str(err.value).lower() or "aborted" in str(err.value).lower()
    with pytest.raises(oci.exceptions.ServiceError) as missing:
        no_retry_os.head_object(namespace, name, "reset")
    assert missing.value.status == 404
    local_faults.set_faults(
        {"operation": "put_object", "drop": True, "drop_phase": "request", "count": 1}
    )
    retrying = local_faults.client(ObjectStorageClient, retry_strategy=fast_retry)
    retrying.put_object(namespace, name, "reset", body)
    assert retrying.get_object(namespace, name, "reset").data.content == body


def test_upload_manager_survives_dropped_and_failed_parts(
    local_faults, fast_retry, bucket, tmp_path
):
    """Parts are retried by UploadManager itself (it re-reads each part from the file).

    The client's own retry cannot resend a part: the SDK's part reader does not rewind, so the
    retried request announces the part's length and sends nothing. Hence a client without
    retries and the strategy given to upload_file.
    """
    namespace, name = bucket
    src = tmp_path / "multi.bin"
    src.write_bytes(bytes(range(256)) * 4096 * 3)  # 3 MiB -> three 1 MiB parts
    local_faults.set_faults(
        {"operation": "upload_part", "drop": True, "count": 1},
        {"operation": "upload_part", "status": 503, "count": 1},
    )
    client = local_faults.client(ObjectStorageClient, retry_strategy=NO_RETRY)
    UploadManager(client, allow_parallel_uploads=True).upload_file(
        namespace, name, "multi.bin", str(src), part_size=1024 * 1024, retry_strategy=fast_retry
    )
    assert client.get_object(namespace, name, "multi.bin").data.content == src.read_bytes()
    assert [r["applied"] for r in local_faults.faults()] == [1, 1]


def test_admin_routes_are_never_faulted(local_faults):
    local_faults.set_faults({"path": ".", "status": 503})
    assert local_faults.admin("GET", "/_admin/health")["status"] == "ok"
    local_faults.clear_faults()
    assert local_faults.faults() == []


def test_bad_rules_are_rejected_with_the_fix(local_faults):
    for bad, words in [
        ({"operation": "get_modle", "status": 503}, "get_modle"),
        ({"operation": "get_model", "status": 200}, "200"),
        ({"operation": "get_model", "status": 503, "rate": 2}, "rate"),
        ({"operation": "get_model"}, "effect"),
        ({"operation": "get_model", "status": 503, "drop": True}, "one effect"),
        ({"path": "(", "status": 503}, "regex"),
        ({"operation": "put_object", "drop": True, "drop_phase": "later"}, "drop_phase"),
        ({"opration": "get_model", "status": 503}, "opration"),
    ]:
        with pytest.raises(LocalServiceError) as err:
            local_faults.set_faults(bad)
        assert "400" in str(err.value) and words in str(err.value)
    assert local_faults.faults() == []


def test_cli_rule_syntax():
    rule = FaultRule.parse("operation=upload_part, status=503, count=2, rate=0.5")
    assert (rule.operation, rule.status, rule.count, rule.rate) == ("upload_part", 503, 2, 0.5)
    assert FaultRule.parse("drop=true,method=PUT").drop is True
    assert FaultRule.parse("deployment_failure='No capacity'").deployment_failure == "No capacity"
    with pytest.raises(FaultSpecError, match="key=value"):
        FaultRule.parse("operation")


def test_deployment_failure_is_armed_and_taken_once(local_faults):
    local_faults.set_faults({"deployment_failure": "Out of host capacity", "count": 1})
    faults = faults_of(local_faults.state)
    assert faults.take_deployment_failure() == "Out of host capacity"
    assert faults.take_deployment_failure() is None
    assert local_faults.faults()[0]["applied"] == 1


@pytest.mark.slow
def test_forced_deployment_failure_fails_the_deployment(local_faults, oci_config, tmp_path):
    from deployment_support import (
        ECHO_SCORE,
        create_and_wait,
        create_model,
        deployment_details,
        zip_artifact,
    )
    from oci.data_science import DataScienceClient
    from oci.data_science.models import CreateProjectDetails

    ds = local_faults.client(DataScienceClient)
    compartment = oci_config["tenancy"]
    project = ds.create_project(
        CreateProjectDetails(compartment_id=compartment, display_name="faults")
    ).data
    model_id = create_model(
        ds, compartment, project.id, zip_artifact(tmp_path, {"score.py": ECHO_SCORE})
    )
    local_faults.set_faults({"deployment_failure": "Out of host capacity", "count": 1})
    dep_id, wr = create_and_wait(ds, deployment_details(compartment, project.id, model_id))
    assert wr.status == "FAILED"
    errors = ds.list_work_request_errors(wr.id).data
    assert any("Out of host capacity" in e.message for e in errors)
    assert ds.get_model_deployment(dep_id).data.lifecycle_state == "FAILED"
    assert local_faults.faults()[0]["applied"] == 1
    dep_id, wr = create_and_wait(ds, deployment_details(compartment, project.id, model_id))
    assert wr.status == "SUCCEEDED"
    ds.delete_model_deployment(dep_id)


def test_deployment_failure_rule_does_not_touch_requests(local_faults, no_retry_os):
    local_faults.set_faults({"deployment_failure": "boom"})
    assert no_retry_os.get_namespace().data
    assert local_faults.faults()[0]["applied"] == 0


def test_rules_from_environment(monkeypatch):
    monkeypatch.setenv(ENV_VAR, json.dumps([{"operation": "get_model", "status": 429}]))
    [rule] = rules_from_env()
    assert (rule.operation, rule.status) == ("get_model", 429)
    monkeypatch.setenv(ENV_VAR, "{not json")
    with pytest.raises(FaultSpecError, match=ENV_VAR):
        rules_from_env()


def test_environment_rules_apply_to_a_new_service(monkeypatch, tmp_path):
    monkeypatch.setenv(
        ENV_VAR, json.dumps({"operation": "get_namespace", "status": 500, "count": 1})
    )
    with LocalOCI(data_dir=tmp_path / "svc") as svc:
        client = svc.client(ObjectStorageClient, retry_strategy=NO_RETRY)
        with pytest.raises(oci.exceptions.ServiceError) as err:
            client.get_namespace()
        assert err.value.status == 500
        assert client.get_namespace().data


def test_faults_object_counts_are_thread_safe_and_exact():
    faults = Faults()
    faults.set([{"operation": "get_model", "status": 503, "count": 3}])
    hits = [faults.take("GET", "/20190101/models/ocid1.datasciencemodel.oc1..x") for _ in range(5)]
    assert [h is not None and h.error is not None for h in hits] == [True, True, True, False, False]
    assert faults.take("GET", "/20190101/projects/ocid1.x") is None
