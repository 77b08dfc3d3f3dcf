"""The model catalog functions of ocimodel.oci.catalog and the work-request waiter, through the
real oci SDK against the local service: creates replayed by retry token, tags, provenance,
streamed artifacts, export/import through a bucket, failed and timed-out work requests, and
deleting models with and without their deployments."""

from __future__ import annotations

import os
import pickle
import time
import tracemalloc
import uuid

import oci
import oci.data_science.models as dsm
import pytest
from deployment_support import ECHO_SCORE, create_and_wait, deployment_details, zip_artifact

from ocimodel.errors import ArtifactSourceNotFoundError, OcimodelError
from ocimodel.local import datascience
from ocimodel.local.server import fast_retry_strategy
from ocimodel.metadata import ModelCustomMetadata
from ocimodel.oci import catalog, version_sets
from ocimodel.oci.auth import OCIAuth
from ocimodel.oci.catalog import (
    ArtifactTransferError,
    CatalogInputError,
    ModelArtifactNotFoundError,
    ModelCatalogError,
    ModelInUseError,
    ModelNotFoundError,
)
from ocimodel.oci.work_requests import (
    WorkRequestArgumentError,
    WorkRequestFailedError,
    WorkRequestPollError,
    WorkRequestTimeoutError,
    wait_for_work_request,
)
from ocimodel.tasks._retry import is_transient

MIB = 1024 * 1024


@pytest.fixture(scope="module")
def auth(local_oci) -> OCIAuth:
    """An OCIAuth of the local user, with fast SDK retries and no circuit breaker."""
    return OCIAuth.from_config_file(
        str(local_oci.config_path),
        endpoint=local_oci.endpoint,
        client_kwargs={
            "retry_strategy": fast_retry_strategy(),
            "circuit_breaker_strategy": oci.circuit_breaker.NoCircuitBreakerStrategy(),
        },
    )


@pytest.fixture
def new_model(auth, compartment, project):
    """Creates a bare model in the test's project; returns its OCID."""

    def make(**fields) -> str:
        details = {"compartment_id": compartment, "project_id": project.id, **fields}
        return catalog.create_model(auth, details, retry_token=uuid.uuid4().hex).id

    return make


class Recorder:
    """A progress object that records what it is told."""

    def __init__(self) -> None:
        self.total = None
        self.description = ""
        self.steps: list[float] = []
        self.finished = 0

    def start(self, total, description):
        self.total, self.description = total, description

    def advance(self, n):
        self.steps.append(n)

    def finish(self):
        self.finished += 1


def _file(path, size: int) -> bytes:
    data = os.urandom(size)
    path.write_bytes(data)
    return data


# --- create, find, update ---------------------------------------------------------------------


def test_create_model_with_every_field_and_replay_by_retry_token(auth, ds, compartment, project):
    mvs = version_sets.create_version_set(
        auth, compartment_id=compartment, project_id=project.id, name="every-field"
    )
    custom = ModelCustomMetadata()
    custom.add("team", "forecasting", description="Who owns it", category="Other")
    details = {
        "compartment_id": compartment,
        "project_id": project.id,
        "display_name": "every field",
        "description": "a model with every field set",
        "freeform_tags": {"ocimodel-save": "abc123", "team": "forecasting"},
        "defined_tags": {"Operations": {"CostCenter": "42"}},
        "custom_metadata_list": custom,
        "definedMetadataList": [{"key": "Framework", "value": "scikit-learn"}],
        "input_schema": {"schema": [{"name": "x", "dtype": "float64"}]},
        "output_schema": '{"schema": [{"name": "y", "dtype": "int64"}]}',
        "model_version_set_id": mvs.id,
        "version_label": "v1",
    }
    token = "save-" + uuid.uuid4().hex
    model = catalog.create_model(auth, details, retry_token=token)
    again = catalog.create_model(auth, details, retry_token=token)
    assert again.id == model.id

    got = catalog.get_model(auth, model.id)
    assert got.display_name == "every field"
    assert got.description == "a model with every field set"
    assert got.freeform_tags == {"ocimodel-save": "abc123", "team": "forecasting"}
    assert got.defined_tags == {"Operations": {"CostCenter": "42"}}
    assert [(m.key, m.value, m.category) for m in got.custom_metadata_list] == [
        ("team", "forecasting", "Other")
    ]
    assert [(m.key, m.value) for m in got.defined_metadata_list] == [("Framework", "scikit-learn")]
    assert got.input_schema == '{"schema": [{"name": "x", "dtype": "float64"}]}'
    assert got.output_schema == details["output_schema"]
    assert (got.model_version_set_id, got.version_label) == (mvs.id, "v1")
    models = ds.list_models(compartment_id=compartment, project_id=project.id).data
    assert [m.id for m in models] == [model.id]

    with pytest.raises(ModelCatalogError) as info:  # the same token for another request
        catalog.create_model(auth, {**details, "display_name": "other"}, retry_token=token)
    assert info.value.status == 409 and info.value.operation == "create_model"
    assert "create_model failed" in str(info.value) and "retry token" in str(info.value)


@pytest.mark.parametrize(
    ("details", "token", "words"),
    [
        ({"display_nam": "x"}, "t", "unknown field 'display_nam'"),
        ({"project_id": None}, "t", "needs project_id"),
        ({"version_label": "v1"}, "t", "needs a model_version_set_id"),
        ({"custom_metadata_list": [{"key": "a", "colour": "red"}]}, "t", "unknown field 'colour'"),
        ({"freeform_tags": ["a"]}, "t", "freeform_tags must be a dict"),
        ({}, "has space", "retry_token must be"),
        ({}, "x" * 65, "retry_token must be"),
    ],
)
def test_create_model_rejects_bad_input_before_any_request(
    auth, ds, compartment, project, details, token, words
):
    body = {"compartment_id": compartment, "project_id": project.id, **details}
    with pytest.raises(CatalogInputError, match=words):
        catalog.create_model(auth, body, retry_token=token)
    assert ds.list_models(compartment_id=compartment).data == []


def test_find_models_by_tag_reads_every_page(auth, ds, compartment, project, new_model):
    first = new_model(freeform_tags={"ocimodel-save": "key-1"})
    others = [new_model(freeform_tags={"ocimodel-save": "key-2"}) for _ in range(3)]
    second = new_model(freeform_tags={"ocimodel-save": "key-1", "x": "y"})
    deleted = new_model(freeform_tags={"ocimodel-save": "key-1"})
    ds.delete_model(deleted)
    found = catalog.find_models_by_tag(auth, compartment, project.id, "ocimodel-save", "key-1")
    assert [m.id for m in found] == [first, second]
    in_compartment = catalog.find_models_by_tag(auth, compartment, None, "ocimodel-save", "key-2")
    assert {m.id for m in in_compartment} == set(others)
    assert catalog.find_models_by_tag(auth, compartment, project.id, "ocimodel-save", "nope") == []
    paged = catalog.list_all("list_models", ds.list_models, compartment, limit=2)
    assert len(paged) == 5  # every page of 2 (the deleted model is not listed)


def test_update_model_and_typed_not_found(auth, new_model):
    model_id = new_model(display_name="before")
    updated = catalog.update_model(
        auth,
        model_id,
        display_name="after",
        description=None,  # left as is
        freeform_tags={"stage": "prod"},
        custom_metadata_list=[{"key": "k", "value": "v"}],
    )
    assert updated.display_name == "after" and updated.freeform_tags == {"stage": "prod"}
    assert [(m.key, m.value) for m in updated.custom_metadata_list] == [("k", "v")]
    assert catalog.update_model(auth, model_id).display_name == "after"  # nothing to send
    with pytest.raises(CatalogInputError, match="unknown field 'input_schema'"):
        catalog.update_model(auth, model_id, input_schema="{}")

    missing = "ocid1.datasciencemodel.oc1..missing"
    with pytest.raises(ModelNotFoundError) as info:
        catalog.get_model(auth, missing)
    err = info.value
    assert err.model_id == missing and err.status == 404 and missing in str(err)
    assert isinstance(err.__cause__, oci.exceptions.ServiceError)
    with pytest.raises(ModelNotFoundError):
        catalog.update_model(auth, missing, display_name="x")


def test_transient_service_errors_keep_their_status(auth, local_faults, new_model):
    model_id = new_model()
    local_faults.add_faults({"operation": "get_model", "status": 503, "count": 20})
    with pytest.raises(ModelCatalogError) as info:
        catalog.get_model(auth, model_id)
    err = info.value
    assert err.status == 503 and err.code and err.operation == "get_model"
    assert isinstance(err.__cause__, oci.exceptions.ServiceError)
    assert is_transient(err) and "transient" in str(err)
    copy = pickle.loads(pickle.dumps(err))
    assert (copy.status, copy.operation, str(copy)) == (503, "get_model", str(err))
    local_faults.clear_faults()
    with pytest.raises(ModelNotFoundError) as info:
        catalog.get_model(auth, "ocid1.datasciencemodel.oc1..gone")
    assert not is_transient(info.value)


# --- provenance -------------------------------------------------------------------------------


def test_provenance_is_created_then_updated_then_left_alone(auth, ds, new_model):
    model_id = new_model()
    first = {
        "repository_url": "https://git.example/repo.git",
        "git_commit": "aaa",
        "git_branch": None,
    }
    created = catalog.ensure_provenance(auth, model_id, first)
    assert created.git_commit == "aaa" and created.repository_url == first["repository_url"]

    etag = ds.get_model(model_id).headers["etag"]
    same = catalog.ensure_provenance(auth, model_id, first)
    assert same.git_commit == "aaa"
    assert ds.get_model(model_id).headers["etag"] == etag  # nothing was written

    updated = catalog.ensure_provenance(
        auth, model_id, {"git_commit": "bbb", "training_script": "train.py"}
    )
    assert (updated.git_commit, updated.training_script) == ("bbb", "train.py")
    stored = ds.get_model_provenance(model_id).data
    assert (stored.git_commit, stored.repository_url) == ("bbb", first["repository_url"])

    with pytest.raises(CatalogInputError, match="unknown field"):
        catalog.ensure_provenance(auth, model_id, {"repo": "/src"})
    with pytest.raises(ModelNotFoundError):
        catalog.ensure_provenance(auth, "ocid1.datasciencemodel.oc1..none", {"git_commit": "a"})


# --- artifacts --------------------------------------------------------------------------------


def test_upload_streams_from_disk_and_downloads_byte_identical(auth, new_model, tmp_path):
    model_id = new_model()
    assert catalog.artifact_info(auth, model_id) is None
    source = tmp_path / "artifact.zip"
    data = _file(source, 6 * MIB + 123)

    up = Recorder()
    tracemalloc.start()
    try:
        info = catalog.upload_model_artifact(auth, model_id, source, progress=up)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 3 * MIB, f"the upload held {peak} bytes in memory at once"
    assert up.total == len(data) and sum(up.steps) == len(data) and up.finished == 1
    assert len(up.steps) > 8 and max(up.steps) <= MIB  # read piece by piece, as sent
    assert info.size == len(data)
    assert info.content_disposition == f"attachment; filename={model_id}.zip"
    assert info.filename == f"{model_id}.zip" and info.etag and info.content_md5
    assert catalog.artifact_info(auth, model_id) == info

    down = Recorder()
    dest = tmp_path / "out" / "nested" / "model.zip"
    assert catalog.download_model_artifact(auth, model_id, dest, progress=down) == str(dest)
    assert dest.read_bytes() == data
    assert down.total == len(data) and sum(down.steps) == len(data) and down.finished == 1
    assert sorted(p.name for p in dest.parent.iterdir()) == ["model.zip"]

    other = tmp_path / "named.zip"
    _file(other, 1000)
    named = catalog.upload_model_artifact(
        auth, model_id, other, content_disposition='attachment; filename="mine.zip"'
    )
    assert named.size == 1000 and named.filename == "mine.zip"


def test_an_upload_retried_by_the_sdk_rewinds_the_file(auth, local_faults, new_model, tmp_path):
    model_id = new_model()
    source = tmp_path / "artifact.zip"
    data = _file(source, 2 * MIB + 1)
    local_faults.add_faults({"operation": "create_model_artifact", "status": 503, "count": 2})
    progress = Recorder()
    info = catalog.upload_model_artifact(auth, model_id, source, progress=progress)
    assert [r["applied"] for r in local_faults.faults()] == [2]
    assert info.size == len(data) and sum(progress.steps) == len(data)  # counted once
    dest = tmp_path / "back.zip"
    catalog.download_model_artifact(auth, model_id, dest)
    assert dest.read_bytes() == data


def test_artifact_calls_tell_a_missing_model_from_a_missing_artifact(auth, new_model, tmp_path):
    model_id = new_model()
    missing = "ocid1.datasciencemodel.oc1..nothere"
    with pytest.raises(ModelNotFoundError):
        catalog.artifact_info(auth, missing)
    with pytest.raises(ModelArtifactNotFoundError, match="has no artifact yet") as info:
        catalog.download_model_artifact(auth, model_id, tmp_path / "a.zip")
    assert info.value.model_id == model_id
    with pytest.raises(ModelNotFoundError):
        catalog.download_model_artifact(auth, missing, tmp_path / "a.zip")
    with pytest.raises(ModelNotFoundError):
        catalog.upload_model_artifact(auth, missing, _write(tmp_path / "x.zip"))
    with pytest.raises(ArtifactSourceNotFoundError, match="does not exist"):
        catalog.upload_model_artifact(auth, model_id, tmp_path / "absent.zip")
    with pytest.raises(CatalogInputError, match="is a folder"):
        catalog.download_model_artifact(auth, model_id, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.zip"]


def _write(path):
    path.write_bytes(b"zip bytes")
    return path


def test_a_broken_download_keeps_nothing(auth, local_faults, new_model, tmp_path):
    model_id = new_model()
    catalog.upload_model_artifact(auth, model_id, _write(tmp_path / "a.zip"))
    dest = tmp_path / "dl" / "model.zip"
    dest.parent.mkdir()
    dest.write_bytes(b"previous download")
    local_faults.add_faults({"operation": "get_model_artifact_content", "drop": True, "count": 1})
    with pytest.raises(ArtifactTransferError) as info:
        catalog.download_model_artifact(auth, model_id, dest)
    assert isinstance(info.value, ConnectionError) and is_transient(info.value)
    assert sorted(p.name for p in dest.parent.iterdir()) == ["model.zip"]
    assert dest.read_bytes() == b"previous download"
    catalog.download_model_artifact(auth, model_id, dest)
    assert dest.read_bytes() == b"zip bytes"


# --- export / import and the work-request waiter ------------------------------------------------


@pytest.fixture
def objects(auth):
    return auth.client(oci.object_storage.ObjectStorageClient)


def test_export_and_import_through_a_bucket(auth, objects, namespace, bucket, new_model):
    model_id = new_model()
    payload = os.urandom(2 * MIB + 5)
    objects.put_object(namespace, bucket, "staging/model.zip", payload)

    progress = Recorder()
    wr = catalog.export_model_artifact(
        auth,
        model_id,
        f"oci://{bucket}@{namespace}/staging/model.zip",
        poll_interval=0.2,
        progress=progress,
    )
    assert wr.status == "SUCCEEDED"
    assert wr.operation_type == dsm.WorkRequest.OPERATION_TYPE_EXPORT_MODEL_ARTIFACT
    assert progress.total == 100 and sum(progress.steps) == 100 and progress.finished == 1
    assert "staging/model.zip" in progress.description
    assert catalog.artifact_info(auth, model_id).size == len(payload)

    uri = catalog.import_model_artifact(
        auth, model_id, f"oci://{bucket}@{namespace}/exports/", poll_interval=0.2
    )
    assert uri == f"oci://{bucket}@{namespace}/exports/{model_id}.zip"
    assert objects.get_object(namespace, bucket, f"exports/{model_id}.zip").data.content == payload
    named = catalog.import_model_artifact(
        auth, model_id, f"oci://{bucket}@{namespace}/copies/exact.zip", poll_interval=0.2
    )
    assert named == f"oci://{bucket}@{namespace}/copies/exact.zip"

    with pytest.raises(CatalogInputError, match="not an Object Storage URI"):
        catalog.export_model_artifact(auth, model_id, "s3://bucket/model.zip")
    with pytest.raises(CatalogInputError, match="names a bucket or a prefix"):
        catalog.export_model_artifact(auth, model_id, f"oci://{bucket}@{namespace}/staging/")
    with pytest.raises(ModelArtifactNotFoundError):
        catalog.import_model_artifact(auth, new_model(), f"oci://{bucket}@{namespace}/")


def test_a_failed_work_request_raises_with_its_errors(auth, namespace, bucket, new_model):
    model_id = new_model()
    progress = Recorder()
    with pytest.raises(WorkRequestFailedError) as info:
        catalog.export_model_artifact(
            auth,
            model_id,
            f"oci://{bucket}@{namespace}/absent.zip",
            poll_interval=0.2,
            progress=progress,
        )
    err = info.value
    assert err.last_status == "FAILED" and err.work_request_id.startswith("ocid1.")
    assert err.resources == [model_id]
    assert [e["code"] for e in err.errors] == ["ObjectNotFound"]
    assert "absent.zip" in err.errors[0]["message"] and err.logs
    assert err.work_request_id in str(err) and "ObjectNotFound" in str(err)
    assert model_id in str(err) and "run the operation again" in str(err)
    assert progress.finished == 1
    assert isinstance(err, OcimodelError) and not is_transient(err)
    copy = pickle.loads(pickle.dumps(err))
    assert (copy.errors, copy.resources, str(copy)) == (err.errors, err.resources, str(err))


def test_the_deadline_gives_up_and_the_wait_can_resume(
    local_oci, auth, objects, namespace, bucket, new_model, caplog
):
    model_id = new_model()
    objects.put_object(namespace, bucket, "m.zip", b"artifact")
    gate = datascience.work_gate(local_oci.state)
    gate.clear()
    try:
        started = time.monotonic()
        with pytest.raises(WorkRequestTimeoutError) as info:
            catalog.export_model_artifact(
                auth, model_id, f"oci://{bucket}@{namespace}/m.zip", max_wait_time=0.5
            )
        assert time.monotonic() - started < 5
    finally:
        gate.set()
    err = info.value
    assert err.last_status == "ACCEPTED" and err.percent_complete == 0.0
    assert err.max_wait_time == 0.5 and err.waited >= 0.5
    assert err.work_request_id in str(err) and "keep waiting" in str(err)
    with caplog.at_level("INFO", logger="ocimodel.oci.work_requests"):
        wr = wait_for_work_request(auth, err.work_request_id, poll_interval=0.1, max_wait_time=-1)
    assert wr.status == "SUCCEEDED"
    changes = [r.message for r in caplog.records if err.work_request_id in r.message]
    assert len(changes) == len(set(changes)) and any("SUCCEEDED" in m for m in changes)
    assert catalog.artifact_info(auth, model_id).size == len(b"artifact")


def test_the_waiter_rejects_bad_arguments_and_unknown_ids(auth):
    with pytest.raises(WorkRequestArgumentError, match="poll_interval must be more than 0"):
        wait_for_work_request(auth, "ocid1.datascienceworkrequest.oc1..x", poll_interval=0)
    with pytest.raises(WorkRequestArgumentError, match="max_wait_time must be a number"):
        wait_for_work_request(auth, "ocid1.datascienceworkrequest.oc1..x", max_wait_time="1")
    with pytest.raises(WorkRequestArgumentError, match="work_request_id"):
        wait_for_work_request(auth, "")
    with pytest.raises(WorkRequestPollError) as info:
        wait_for_work_request(auth, "ocid1.datascienceworkrequest.oc1..unknown")
    assert info.value.status == 404 and "Check the OCID" in str(info.value)


# --- deleting ---------------------------------------------------------------------------------


def test_delete_model_is_idempotent(auth, ds, new_model):
    model_id = new_model()
    catalog.delete_model(auth, model_id)
    assert ds.get_model(model_id).data.lifecycle_state == "DELETED"
    catalog.delete_model(auth, model_id)  # a re-run converges
    with pytest.raises(ModelNotFoundError):
        catalog.delete_model(auth, "ocid1.datasciencemodel.oc1..never")


def test_delete_model_with_and_without_its_deployments(auth, ds, compartment, project, tmp_path):
    zipped = zip_artifact(tmp_path, {"score.py": ECHO_SCORE})
    model_id = catalog.create_model(
        auth,
        {"compartment_id": compartment, "project_id": project.id},
        retry_token=uuid.uuid4().hex,
    ).id
    catalog.upload_model_artifact(auth, model_id, zipped)
    dep_id, wr = create_and_wait(ds, deployment_details(compartment, project.id, model_id))
    assert wr.status == "SUCCEEDED"
    assert [d.id for d in catalog.find_model_deployments(auth, model_id)] == [dep_id]

    with pytest.raises(ModelInUseError) as info:
        catalog.delete_model(auth, model_id)
    assert info.value.deployments == [(dep_id, "ACTIVE")]
    assert dep_id in str(info.value) and "delete_associated_model_deployment=True" in str(
        info.value
    )
    assert ds.get_model(model_id).data.lifecycle_state == "ACTIVE"

    catalog.delete_model(auth, model_id, delete_associated_model_deployment=True, poll_interval=0.2)
    assert ds.get_model_deployment(dep_id).data.lifecycle_state == "DELETED"
    assert ds.get_model(model_id).data.lifecycle_state == "DELETED"
    assert catalog.find_model_deployments(auth, model_id) == []
