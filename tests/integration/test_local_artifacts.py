"""Model artifacts of ocimodel.local: upload, HEAD/GET with ranges, export/import via buckets."""

from __future__ import annotations

import base64
import hashlib
import os
import threading

import oci
import oci.data_science.models as dsm
import pytest
from oci.data_science import DataScienceClient, DataScienceClientCompositeOperations
from oci.object_storage import ObjectStorageClient
from sdk_calls import DONE
from sdk_calls import service_error as _error

from ocimodel.local import datascience
from ocimodel.local.core import OCIError


@pytest.fixture(scope="module")
def ds(strict) -> DataScienceClient:
    """The no-retry client: failures must surface at once."""
    return strict


@pytest.fixture
def objects(client) -> ObjectStorageClient:
    return client


@pytest.fixture
def bucket(namespace, bucket) -> tuple[str, str]:
    """(namespace, name) of a fresh bucket."""
    return namespace, bucket


def _md5(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data).digest()).decode()


def test_upload_then_head_and_get_with_range(ds, model):
    payload = os.urandom(3 * 1024 * 1024 + 17)
    etag_before = ds.get_model(model.id).headers["etag"]
    up = ds.create_model_artifact(
        model.id,
        payload,
        content_disposition="attachment; filename=model.zip",
        if_match=etag_before,
    )
    assert up.status == 200 and up.headers["opc-request-id"]
    assert up.headers["etag"] == ds.get_model(model.id).headers["etag"] != etag_before

    head = ds.head_model_artifact(model.id).headers
    assert int(head["content-length"]) == len(payload)
    assert head["content-md5"] == _md5(payload)
    assert head["content-disposition"] == "attachment; filename=model.zip"
    assert head["etag"] and head["last-modified"] and head["opc-request-id"]

    whole = ds.get_model_artifact_content(model.id)
    assert whole.status == 200
    assert whole.data.content == payload
    assert whole.headers["etag"] == head["etag"]

    part = ds.get_model_artifact_content(model.id, range="bytes=100-1123")
    assert part.status == 206
    assert part.data.content == payload[100:1124]
    assert part.headers["content-range"] == f"bytes 100-1123/{len(payload)}"
    tail = ds.get_model_artifact_content(model.id, range="bytes=-10")
    assert tail.data.content == payload[-10:]
    err = _error(ds.get_model_artifact_content, model.id, range=f"bytes={len(payload)}-")
    assert err.status == 416


def test_upload_streams_a_file_object_and_replaces_the_artifact(ds, model, tmp_path):
    src = tmp_path / "artifact.zip"
    with open(src, "wb") as fh:
        for _ in range(12):
            fh.write(os.urandom(1024 * 1024))
    with open(src, "rb") as fh:
        ds.create_model_artifact(
            model.id,
            fh,
            content_length=src.stat().st_size,
            content_disposition="attachment; filename=artifact.zip",
        )
    got = ds.get_model_artifact_content(model.id)
    digest = hashlib.sha256()
    for chunk in got.data.raw.stream(1 << 20, decode_content=False):
        digest.update(chunk)
    assert digest.hexdigest() == hashlib.sha256(src.read_bytes()).hexdigest()

    ds.create_model_artifact(model.id, b"v2", content_disposition="attachment; filename=v2.zip")
    assert ds.get_model_artifact_content(model.id).data.content == b"v2"
    head = ds.head_model_artifact(model.id).headers
    assert head["content-disposition"] == "attachment; filename=v2.zip"


def test_upload_with_stale_etag_changes_nothing(ds, model):
    ds.create_model_artifact(model.id, b"first", content_disposition="attachment; filename=a")
    err = _error(
        ds.create_model_artifact,
        model.id,
        b"second",
        if_match="0" * 32,
        content_disposition="attachment; filename=b",
    )
    assert err.status == 412
    assert ds.get_model_artifact_content(model.id).data.content == b"first"


def test_missing_artifact_other_tenancy_and_deleted_model(local_oci, ds, model):
    err = _error(ds.head_model_artifact, model.id)
    assert err.status == 404
    err = _error(ds.get_model_artifact_content, model.id)
    assert (err.status, err.code) == (404, "NotAuthorizedOrNotFound")
    ds.create_model_artifact(model.id, b"mine", content_disposition="attachment; filename=a")

    other = local_oci.client(
        DataScienceClient,
        config=local_oci.add_user(),
        retry_strategy=oci.retry.NoneRetryStrategy(),
    )
    for call in (other.head_model_artifact, other.get_model_artifact_content):
        assert _error(call, model.id).status == 404
    err = _error(other.create_model_artifact, model.id, b"theirs")
    assert (err.status, err.code) == (404, "NotAuthorizedOrNotFound")
    assert ds.get_model_artifact_content(model.id).data.content == b"mine"

    ds.delete_model(model.id)
    err = _error(ds.create_model_artifact, model.id, b"late")
    assert (err.status, err.code) == (409, "IncorrectState")


def test_model_artifact_blob_is_the_stored_artifact(local_oci, ds, model):
    state, tenancy = local_oci.state, local_oci.config["tenancy"]
    with pytest.raises(OCIError) as info:
        datascience.model_artifact_blob(state, tenancy, model.id)
    assert info.value.status == 404
    ds.create_model_artifact(model.id, b"blob bytes", content_disposition="attachment; filename=a")
    blob = datascience.model_artifact_blob(state, tenancy, model.id)
    assert blob.size == 10 and blob.path.read_bytes() == b"blob bytes"
    assert blob.sha256 == hashlib.sha256(b"blob bytes").hexdigest()
    with pytest.raises(OCIError) as info:
        datascience.model_artifact_blob(state, "ocid1.tenancy.oc1..other", model.id)
    assert info.value.status == 404


def _export_details(namespace: str, bucket: str, name: str) -> dsm.ExportModelArtifactDetails:
    return dsm.ExportModelArtifactDetails(
        artifact_export_details=dsm.ArtifactExportDetailsObjectStorage(
            namespace=namespace,
            source_bucket=bucket,
            source_object_name=name,
            source_region="us-ashburn-1",
        )
    )


def test_export_waits_for_the_work_request(local_oci, ds, objects, model, bucket):
    namespace, name = bucket
    payload = os.urandom(2 * 1024 * 1024)
    objects.put_object(namespace, name, "models/big.zip", payload)
    composite = DataScienceClientCompositeOperations(ds)
    gate = datascience.work_gate(local_oci.state)
    result: dict = {}

    def export() -> None:
        result["r"] = composite.export_model_artifact_and_wait_for_state(
            model.id, _export_details(namespace, name, "models/big.zip"), wait_for_states=DONE
        )

    gate.clear()
    try:
        waiter = threading.Thread(target=export)
        waiter.start()
        pending = []
        while not pending:
            pending = ds.list_work_requests(
                compartment_id=model.compartment_id, resource_id=model.id
            ).data
        assert pending[0].status == "ACCEPTED"
        assert pending[0].operation_type == dsm.WorkRequest.OPERATION_TYPE_EXPORT_MODEL_ARTIFACT
        # held at the gate, the work request cannot finish: the waiter must still be polling
        waiter.join(2.5)
        assert waiter.is_alive()
        assert _error(ds.head_model_artifact, model.id).status == 404
    finally:
        gate.set()
    waiter.join(60)
    wr = result["r"].data
    assert wr.status == "SUCCEEDED" and wr.percent_complete == 100.0
    assert wr.resources[0].identifier == model.id
    assert ds.get_model_artifact_content(model.id).data.content == payload
    head = ds.head_model_artifact(model.id).headers
    assert head["content-md5"] == _md5(payload)
    assert head["content-disposition"] == "attachment; filename=big.zip"
    messages = [entry.message for entry in ds.list_work_request_logs(wr.id).data]
    assert any("Copying" in m for m in messages)


def test_export_of_a_missing_object_fails_with_an_error(ds, model, bucket):
    namespace, name = bucket
    composite = DataScienceClientCompositeOperations(ds)
    wr = composite.export_model_artifact_and_wait_for_state(
        model.id, _export_details(namespace, name, "absent.zip"), wait_for_states=DONE
    ).data
    assert wr.status == "FAILED"
    errors = ds.list_work_request_errors(wr.id).data
    assert len(errors) == 1 and "absent.zip" in errors[0].message
    assert errors[0].code == "ObjectNotFound"
    assert _error(ds.head_model_artifact, model.id).status == 404
    failed = ds.list_work_requests(compartment_id=model.compartment_id, status="FAILED").data
    assert [w.id for w in failed] == [wr.id]


def test_export_body_is_validated(ds, model):
    err = _error(
        ds.export_model_artifact,
        model.id,
        {
            "artifactExportDetails": {
                "artifactSourceType": "ORACLE_OBJECT_STORAGE",
                "namespace": "ns",
                "sourceObjectName": "x",
            }
        },
    )
    assert (err.status, err.code) == (400, "MissingParameter")
    assert err.message.startswith("artifactExportDetails.sourceBucket")
    err = _error(
        ds.export_model_artifact,
        model.id,
        {"artifactExportDetails": {"artifactSourceType": "HTTP", "namespace": "ns"}},
    )
    assert (err.status, err.code) == (400, "InvalidParameter")
    assert ds.list_work_requests(compartment_id=model.compartment_id).data == []


def test_import_copies_the_artifact_into_a_bucket(ds, objects, model, bucket):
    namespace, name = bucket
    details = dsm.ImportModelArtifactDetails(
        artifact_import_details=dsm.ArtifactImportDetailsObjectStorage(
            namespace=namespace,
            destination_bucket=name,
            destination_object_name="exported/model.zip",
            destination_region="us-ashburn-1",
        )
    )
    err = _error(ds.import_model_artifact, model.id, details)
    assert err.status == 404  # no artifact yet
    payload = os.urandom(500_000)
    ds.create_model_artifact(model.id, payload, content_disposition="attachment; filename=m.zip")
    composite = DataScienceClientCompositeOperations(ds)
    wr = composite.import_model_artifact_and_wait_for_state(
        model.id, details, wait_for_states=DONE
    ).data
    assert wr.status == "SUCCEEDED"
    assert wr.operation_type == dsm.WorkRequest.OPERATION_TYPE_IMPORT_MODEL_ARTIFACT
    got = objects.get_object(namespace, name, "exported/model.zip")
    assert got.data.content == payload

    details.artifact_import_details.destination_bucket = "no-such-bucket"
    failed = composite.import_model_artifact_and_wait_for_state(
        model.id, details, wait_for_states=DONE
    ).data
    assert failed.status == "FAILED"
    assert ds.list_work_request_errors(failed.id).data[0].message
