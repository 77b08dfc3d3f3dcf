"""Object Storage of ocimodel.local driven by the real ``oci`` ObjectStorageClient."""

from __future__ import annotations

import base64
import hashlib
import os
import uuid
from pathlib import Path

import oci
import pytest
from oci.object_storage.models import (
    CommitMultipartUploadDetails,
    CommitMultipartUploadPartDetails,
    CreateBucketDetails,
    CreateMultipartUploadDetails,
    RenameObjectDetails,
)
from oci.pagination import list_call_get_all_results
from sdk_calls import service_error as error_of

from ocimodel.local.objectstorage import get_object_blob, namespace_of, put_object_blob

SERVICE_NS = "id19sfcrra6z"
SERVICE_BUCKET = "service-conda-packs"


def md5_b64(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data).digest()).decode()


def test_namespace_is_stable_and_has_metadata(client, namespace, local_oci):
    assert namespace == namespace_of(local_oci.config["tenancy"])
    assert client.get_namespace().data == namespace
    meta = client.get_namespace_metadata(namespace).data
    assert meta.namespace == namespace
    assert meta.default_s3_compartment_id == local_oci.config["tenancy"]


def test_bucket_lifecycle(client, namespace, local_oci):
    name = f"life-{uuid.uuid4().hex[:8]}"
    compartment = local_oci.config["tenancy"]
    created = client.create_bucket(
        namespace, CreateBucketDetails(name=name, compartment_id=compartment)
    )
    assert created.data.name == name and created.data.namespace == namespace
    got = client.get_bucket(namespace, name)
    assert got.headers["etag"] == created.data.etag == got.data.etag
    assert client.head_bucket(namespace, name).headers["etag"] == created.data.etag
    listed = list_call_get_all_results(client.list_buckets, namespace, compartment).data
    assert name in [b.name for b in listed]

    dup = error_of(
        client.create_bucket, namespace, CreateBucketDetails(name=name, compartment_id=compartment)
    )
    assert (dup.status, dup.code) == (409, "BucketAlreadyExists")

    client.put_object(namespace, name, "keep", b"x")
    full = error_of(client.delete_bucket, namespace, name)
    assert (full.status, full.code) == (409, "BucketNotEmpty")
    client.delete_object(namespace, name, "keep")
    assert client.delete_bucket(namespace, name).status == 204
    gone = error_of(client.get_bucket, namespace, name)
    assert (gone.status, gone.code) == (404, "BucketNotFound")


def test_bad_bucket_name_is_rejected(client, namespace, local_oci):
    err = error_of(
        client.create_bucket,
        namespace,
        CreateBucketDetails(name="no/slashes", compartment_id=local_oci.config["tenancy"]),
    )
    assert (err.status, err.code) == (400, "InvalidParameter")


def test_put_get_head_round_trip_headers(client, namespace, bucket):
    data = os.urandom(70_000)
    put = client.put_object(
        namespace,
        bucket,
        "models/model.bin",
        data,
        content_type="application/x-model",
        content_disposition="attachment; filename=model.bin",
        opc_meta={"owner": "team-a", "stage": "dev"},
    )
    assert put.status == 200
    assert put.headers["opc-content-md5"] == md5_b64(data)

    head = client.head_object(namespace, bucket, "models/model.bin")
    h = head.headers
    assert int(h["content-length"]) == len(data)
    assert h["content-type"] == "application/x-model"
    assert h["etag"] == put.headers["etag"]
    assert h["accept-ranges"] == "bytes"
    assert h["storage-tier"] == "Standard"
    assert h["version-id"] == put.headers["version-id"]
    assert h["last-modified"]
    assert h["opc-content-md5"] == md5_b64(data)
    assert h["content-disposition"] == "attachment; filename=model.bin"
    assert h["opc-meta-owner"] == "team-a" and h["opc-meta-stage"] == "dev"

    got = client.get_object(namespace, bucket, "models/model.bin")
    assert got.status == 200 and got.data.content == data
    assert got.headers["etag"] == put.headers["etag"]

    again = client.put_object(namespace, bucket, "models/model.bin", b"new")
    assert again.headers["etag"] != put.headers["etag"]
    assert client.get_object(namespace, bucket, "models/model.bin").data.content == b"new"


def test_range_reads_answer_206(client, namespace, bucket):
    data = bytes(range(256)) * 40
    client.put_object(namespace, bucket, "r.bin", data)
    part = client.get_object(namespace, bucket, "r.bin", range="bytes=100-199")
    assert part.status == 206
    assert part.data.content == data[100:200]
    assert part.headers["content-range"] == f"bytes 100-199/{len(data)}"
    tail = client.get_object(namespace, bucket, "r.bin", range="bytes=-10")
    assert tail.status == 206 and tail.data.content == data[-10:]
    open_end = client.get_object(namespace, bucket, "r.bin", range=f"bytes={len(data) - 5}-")
    assert open_end.data.content == data[-5:]
    beyond = error_of(client.get_object, namespace, bucket, "r.bin", range="bytes=99999-")
    assert (beyond.status, beyond.code) == (416, "InvalidRange")


def test_content_md5_mismatch_is_rejected_and_stores_nothing(client, namespace, bucket):
    err = error_of(
        client.put_object, namespace, bucket, "md5.bin", b"payload", content_md5=md5_b64(b"other")
    )
    assert (err.status, err.code) == (400, "UnmatchedContentMD5")
    missing = error_of(client.get_object, namespace, bucket, "md5.bin")
    assert (missing.status, missing.code) == (404, "ObjectNotFound")
    ok = client.put_object(
        namespace, bucket, "md5.bin", b"payload", content_md5=md5_b64(b"payload")
    )
    assert ok.status == 200


def test_conditional_requests(client, namespace, bucket):
    first = client.put_object(namespace, bucket, "c.txt", b"one", if_none_match="*")
    again = error_of(client.put_object, namespace, bucket, "c.txt", b"two", if_none_match="*")
    assert (again.status, again.code) == (412, "IfNoneMatchFailed")
    stale = error_of(client.put_object, namespace, bucket, "c.txt", b"two", if_match="nope")
    assert (stale.status, stale.code) == (412, "IfMatchFailed")
    client.put_object(namespace, bucket, "c.txt", b"two", if_match=first.headers["etag"])
    assert client.get_object(namespace, bucket, "c.txt").data.content == b"two"
    wrong = error_of(client.get_object, namespace, bucket, "c.txt", if_match=first.headers["etag"])
    assert (wrong.status, wrong.code) == (412, "IfMatchFailed")
    assert error_of(client.head_object, namespace, bucket, "c.txt", if_match="nope").status == 412
    gone = error_of(client.delete_object, namespace, bucket, "c.txt", if_match="nope")
    assert gone.status == 412
    assert client.delete_object(namespace, bucket, "c.txt").status == 204
    missing = error_of(client.delete_object, namespace, bucket, "c.txt")
    assert (missing.status, missing.code) == (404, "ObjectNotFound")


def test_list_objects_prefixes_fields_and_paging(client, namespace, bucket):
    names = ["a.txt", "b/1", "b/2", "b/c/3", "b/c/4", "d/5", "e.txt", "é/6"]
    for n in names:
        client.put_object(namespace, bucket, n, n.encode())

    top = client.list_objects(namespace, bucket, delimiter="/").data
    assert [o.name for o in top.objects] == ["a.txt", "e.txt"]
    assert sorted(top.prefixes) == ["b/", "d/", "é/"]
    assert top.objects[0].size is None  # only the name unless fields asks for more

    sub = client.list_objects(
        namespace, bucket, prefix="b/", delimiter="/", fields="name,size,md5,etag,timeCreated"
    ).data
    assert [o.name for o in sub.objects] == ["b/1", "b/2"]
    assert sub.prefixes == ["b/c/"]
    assert sub.objects[0].size == 3 and sub.objects[0].md5 == md5_b64(b"b/1")
    assert sub.objects[0].etag and sub.objects[0].time_created

    page = client.list_objects(namespace, bucket, limit=3).data
    assert [o.name for o in page.objects] == ["a.txt", "b/1", "b/2"]
    assert page.next_start_with == "b/c/3"
    everything = list_call_get_all_results(client.list_objects, namespace, bucket, limit=3).data
    assert [o.name for o in everything.objects] == sorted(names, key=lambda s: s.encode())

    window = client.list_objects(namespace, bucket, start="b/2", end="e.txt").data
    assert [o.name for o in window.objects] == ["b/2", "b/c/3", "b/c/4", "d/5"]
    after = client.list_objects(namespace, bucket, start_after="e.txt").data
    assert [o.name for o in after.objects] == ["é/6"]

    bad = error_of(client.list_objects, namespace, bucket, delimiter="|")
    assert (bad.status, bad.code) == (400, "InvalidParameter")
    bad_field = error_of(client.list_objects, namespace, bucket, fields="name,colour")
    assert (bad_field.status, bad_field.code) == (400, "InvalidParameter")


def _files_under(root: Path) -> set[Path]:
    return {p for p in root.rglob("*")}


def test_traversal_names_stay_names(client, namespace, bucket, local_oci):
    outside = local_oci.data_dir.parent
    before = {p for p in outside.iterdir()}
    evil = [
        "../../escape.txt",
        "../" * 12 + "etc/passwd",
        "a/../../b",
        "..",
        ".",
        "./x",
        "/abs/path",
        "sp ace/%2e%2e/q?x=1#frag",
        "ünï/cødé",
    ]
    for name in evil:
        client.put_object(namespace, bucket, name, name.encode())
    for name in evil:
        assert client.get_object(namespace, bucket, name).data.content == name.encode()
    listed = list_call_get_all_results(client.list_objects, namespace, bucket).data.objects
    assert sorted(o.name for o in listed) == sorted(evil)
    assert {p for p in outside.iterdir()} == before
    assert not any(
        p.name in ("escape.txt", "passwd", "b") for p in _files_under(local_oci.data_dir)
    )


def test_invalid_object_names(client, namespace, bucket):
    nul = error_of(client.put_object, namespace, bucket, "bad\x00name", b"x")
    assert (nul.status, nul.code) == (400, "InvalidParameter")
    long = error_of(client.put_object, namespace, bucket, "n" * 1025, b"x")
    assert (long.status, long.code) == (400, "InvalidParameter")
    assert "1024" in long.message
    client.put_object(namespace, bucket, "n" * 1024, b"x")
    names = [o.name for o in client.list_objects(namespace, bucket).data.objects]
    assert names == ["n" * 1024]


def test_rename_object(client, namespace, bucket):
    client.put_object(namespace, bucket, "old", b"content")
    client.rename_object(namespace, bucket, RenameObjectDetails(source_name="old", new_name="new"))
    assert client.get_object(namespace, bucket, "new").data.content == b"content"
    assert error_of(client.head_object, namespace, bucket, "old").status == 404


def test_multipart_parts_commit_exclude_and_errors(client, namespace, bucket):
    up = client.create_multipart_upload(
        namespace,
        bucket,
        CreateMultipartUploadDetails(
            object="mp.bin", content_type="text/csv", metadata={"opc-meta-kind": "table"}
        ),
    ).data
    assert up.object == "mp.bin" and up.upload_id

    chunks = {1: b"a" * 1000, 2: b"b" * 2000, 3: b"c" * 10, 10000: b"z" * 5}
    etags = {}
    for num, data in chunks.items():
        resp = client.upload_part(
            namespace, bucket, "mp.bin", up.upload_id, num, data, content_md5=md5_b64(data)
        )
        assert resp.status == 200
        assert resp.headers["opc-content-md5"] == md5_b64(data)
        etags[num] = resp.headers["etag"]

    bad_md5 = error_of(
        client.upload_part, namespace, bucket, "mp.bin", up.upload_id, 4, b"x", content_md5="AAAA"
    )
    assert (bad_md5.status, bad_md5.code) == (400, "UnmatchedContentMD5")
    for num in (0, 10001):
        err = error_of(client.upload_part, namespace, bucket, "mp.bin", up.upload_id, num, b"x")
        assert (err.status, err.code) == (400, "InvalidParameter")

    uploads = client.list_multipart_uploads(namespace, bucket).data
    assert [u.upload_id for u in uploads] == [up.upload_id]
    parts = client.list_multipart_upload_parts(namespace, bucket, "mp.bin", up.upload_id).data
    assert [(p.part_number, p.size, p.etag) for p in parts] == [
        (n, len(chunks[n]), etags[n]) for n in sorted(chunks)
    ]
    busy = error_of(client.delete_bucket, namespace, bucket)
    assert (busy.status, busy.code) == (409, "BucketNotEmpty")

    def commit(parts_to_commit, exclude=None):
        return client.commit_multipart_upload(
            namespace,
            bucket,
            "mp.bin",
            up.upload_id,
            CommitMultipartUploadDetails(
                parts_to_commit=[
                    CommitMultipartUploadPartDetails(part_num=n, etag=e) for n, e in parts_to_commit
                ],
                parts_to_exclude=exclude,
            ),
        )

    wrong = error_of(commit, [(1, "bogus"), (2, etags[2]), (10000, etags[10000])], [3])
    assert (wrong.status, wrong.code) == (400, "InvalidParameter")
    unlisted = error_of(commit, [(1, etags[1]), (2, etags[2])])
    assert (unlisted.status, unlisted.code) == (400, "InvalidParameter")

    done = commit([(1, etags[1]), (2, etags[2]), (10000, etags[10000])], [3])
    assert done.status == 200
    expected = b"a" * 1000 + b"b" * 2000 + b"z" * 5
    digests = b"".join(hashlib.md5(chunks[n]).digest() for n in (1, 2, 10000))
    mp_md5 = base64.b64encode(hashlib.md5(digests).digest()).decode() + "-3"
    assert done.headers["opc-multipart-md5"] == mp_md5
    got = client.get_object(namespace, bucket, "mp.bin")
    assert got.data.content == expected
    assert got.headers["content-type"] == "text/csv"
    assert got.headers["opc-meta-kind"] == "table"
    assert got.headers["opc-multipart-md5"] == mp_md5
    assert client.list_multipart_uploads(namespace, bucket).data == []
    stale = error_of(client.list_multipart_upload_parts, namespace, bucket, "mp.bin", up.upload_id)
    assert (stale.status, stale.code) == (404, "NoSuchUpload")


def test_abort_multipart_upload(client, namespace, bucket):
    up = client.create_multipart_upload(
        namespace, bucket, CreateMultipartUploadDetails(object="gone.bin")
    ).data
    client.upload_part(namespace, bucket, "gone.bin", up.upload_id, 1, b"data")
    assert client.abort_multipart_upload(namespace, bucket, "gone.bin", up.upload_id).status == 204
    err = error_of(client.upload_part, namespace, bucket, "gone.bin", up.upload_id, 2, b"more")
    assert (err.status, err.code) == (404, "NoSuchUpload")
    assert error_of(client.head_object, namespace, bucket, "gone.bin").status == 404
    assert client.delete_bucket(namespace, bucket).status == 204


def test_service_packs_are_readable_but_not_writable(client):
    import json

    index = json.loads(
        client.get_object(SERVICE_NS, SERVICE_BUCKET, "service_pack/index.json").data.content
    )
    pythons = {p["python"] for p in index}
    assert {"3.8", "3.9", "3.10", "3.11"} <= pythons
    for pack in index:
        assert set(pack) >= {"slug", "pack_path", "python", "name", "version", "arch"}
        bucket_ns, name = pack["pack_path"][len("oci://") :].split("/", 1)
        assert bucket_ns == f"{SERVICE_BUCKET}@{SERVICE_NS}"
        assert name.endswith(pack["slug"])
        assert client.head_object(SERVICE_NS, SERVICE_BUCKET, name).status == 200
    denied = error_of(client.put_object, SERVICE_NS, SERVICE_BUCKET, "service_pack/x", b"x")
    assert (denied.status, denied.code) == (404, "NotAuthorizedOrNotFound")


def test_other_tenancy_cannot_see_buckets(client, namespace, bucket, local_oci):
    client.put_object(namespace, bucket, "private", b"secret")
    other = local_oci.client(oci.object_storage.ObjectStorageClient, config=local_oci.add_user())
    other_ns = other.get_namespace().data
    assert other_ns != namespace
    for call, args in (
        (other.get_object, (namespace, bucket, "private")),
        (other.list_objects, (namespace, bucket)),
        (other.put_object, (namespace, bucket, "x", b"x")),
        (other.get_bucket, (namespace, bucket)),
    ):
        err = error_of(call, *args)
        assert (err.status, err.code) == (404, "NotAuthorizedOrNotFound")
    # The service-pack namespace stays readable to every tenancy.
    assert other.head_object(SERVICE_NS, SERVICE_BUCKET, "service_pack/index.json").status == 200


def test_internal_blob_api(client, namespace, bucket, local_oci):
    state = local_oci.state
    tenancy = local_oci.config["tenancy"]
    client.put_object(namespace, bucket, "in.bin", b"internal bytes")
    rec = get_object_blob(state, tenancy, namespace, bucket, "in.bin")
    assert rec.size == 14 and rec.md5_b64 == md5_b64(b"internal bytes")
    assert rec.sha256 == hashlib.sha256(b"internal bytes").hexdigest()
    assert state.blobs.path(rec.sha256).read_bytes() == b"internal bytes"

    copy = put_object_blob(
        state,
        tenancy,
        namespace,
        bucket,
        "copy.bin",
        state.blobs.write_file(state.blobs.path(rec.sha256)),
        content_type="text/plain",
    )
    assert copy.content_type == "text/plain" and copy.etag != rec.etag
    got = client.get_object(namespace, bucket, "copy.bin")
    assert got.data.content == b"internal bytes"
    assert got.headers["content-type"] == "text/plain"
    with pytest.raises(Exception) as info:
        get_object_blob(state, tenancy, namespace, bucket, "absent")
    assert getattr(info.value, "status", None) == 404


def test_put_with_expect_continue(client, namespace, bucket):
    resp = client.put_object(namespace, bucket, "expect.bin", b"e" * 5000, expect="100-continue")
    assert resp.status == 200
    assert client.get_object(namespace, bucket, "expect.bin").data.content == b"e" * 5000


def test_large_bodies_stream_through_without_buffering(client, namespace, bucket, tmp_path):
    import tracemalloc

    size = 96 * 1024 * 1024
    src = tmp_path / "large.bin"
    with open(src, "wb") as fh:
        for _ in range(96):
            fh.write(os.urandom(1024 * 1024))
    tracemalloc.start()
    try:
        with open(src, "rb") as fh:
            client.put_object(namespace, bucket, "large.bin", fh)
        up = client.create_multipart_upload(
            namespace, bucket, CreateMultipartUploadDetails(object="large-mp.bin")
        ).data
        with open(src, "rb") as fh:
            part = client.upload_part(namespace, bucket, "large-mp.bin", up.upload_id, 1, fh)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # The service (in this process) holds a few MiB of a body at a time, never the whole body.
    assert peak < size // 4, f"peak traced memory {peak} bytes for a {size}-byte body"
    head = client.head_object(namespace, bucket, "large.bin").headers
    assert int(head["content-length"]) == size
    assert part.headers["opc-content-md5"] == head["opc-content-md5"]
    client.abort_multipart_upload(namespace, bucket, "large-mp.bin", up.upload_id)


def test_parts_out_of_order_and_reuploaded(client, namespace, bucket, local_oci):
    up = client.create_multipart_upload(
        namespace, bucket, CreateMultipartUploadDetails(object="order.bin")
    ).data
    blocks = {n: os.urandom(64 * 1024) for n in (1, 2, 3)}
    blocks[4] = os.urandom(1000)
    etags = {}
    for n in (3, 1, 4, 2):
        etags[n] = client.upload_part(namespace, bucket, "order.bin", up.upload_id, n, blocks[n])
    replacement = os.urandom(64 * 1024)
    etags[2] = client.upload_part(namespace, bucket, "order.bin", up.upload_id, 2, replacement)
    blocks[2] = replacement
    parts = client.list_multipart_upload_parts(namespace, bucket, "order.bin", up.upload_id).data
    assert [p.etag for p in parts] == [etags[n].headers["etag"] for n in (1, 2, 3, 4)]
    assert parts[1].md5 == md5_b64(replacement)
    client.commit_multipart_upload(
        namespace,
        bucket,
        "order.bin",
        up.upload_id,
        CommitMultipartUploadDetails(
            parts_to_commit=[
                CommitMultipartUploadPartDetails(part_num=n, etag=etags[n].headers["etag"])
                for n in (1, 2, 3, 4)
            ]
        ),
    )
    expected = b"".join(blocks[n] for n in (1, 2, 3, 4))
    assert client.get_object(namespace, bucket, "order.bin").data.content == expected
    rec = get_object_blob(
        local_oci.state, local_oci.config["tenancy"], namespace, bucket, "order.bin"
    )
    assert rec.md5_b64 == md5_b64(expected)
    assert rec.sha256 == hashlib.sha256(expected).hexdigest()
    assert not (local_oci.data_dir / "objectstorage" / "parts" / up.upload_id).exists()


def test_copy_object_reports_a_completed_work_request(client, namespace, bucket, local_oci):
    from oci.object_storage.models import CopyObjectDetails

    client.put_object(namespace, bucket, "src.bin", b"copy me", opc_meta={"a": "1"})
    resp = client.copy_object(
        namespace,
        bucket,
        CopyObjectDetails(
            source_object_name="src.bin",
            destination_region=local_oci.config["region"],
            destination_namespace=namespace,
            destination_bucket=bucket,
            destination_object_name="dst/copy.bin",
        ),
    )
    assert resp.status == 202
    work = client.get_work_request(resp.headers["opc-work-request-id"]).data
    assert (work.operation_type, work.status) == ("COPY_OBJECT", "COMPLETED")
    got = client.get_object(namespace, bucket, "dst/copy.bin")
    assert got.data.content == b"copy me" and got.headers["opc-meta-a"] == "1"
    missing = error_of(
        client.copy_object,
        namespace,
        bucket,
        CopyObjectDetails(
            source_object_name="absent",
            destination_region=local_oci.config["region"],
            destination_namespace=namespace,
            destination_bucket=bucket,
            destination_object_name="x",
        ),
    )
    assert (missing.status, missing.code) == (404, "ObjectNotFound")


def test_restart_removes_only_the_blobs_nothing_refers_to(tmp_path):
    from oci.data_science import DataScienceClient
    from oci.data_science.models import CreateModelDetails, CreateProjectDetails

    from ocimodel.local.server import LocalOCI

    data_dir = tmp_path / "gc"
    shared, dropped, replaced = b"shared by an object and an artifact", b"dropped", b"old"
    with LocalOCI(data_dir=data_dir) as svc:
        objects = svc.client(oci.object_storage.ObjectStorageClient)
        ns = objects.get_namespace().data
        tenancy = svc.config["tenancy"]
        objects.create_bucket(ns, CreateBucketDetails(name="gc", compartment_id=tenancy))
        for name, data in (("shared", shared), ("dropped", dropped), ("kept", replaced)):
            objects.put_object(ns, "gc", name, data)
        objects.put_object(ns, "gc", "kept", b"new")
        ds = svc.client(DataScienceClient)
        project = ds.create_project(CreateProjectDetails(compartment_id=tenancy)).data
        model = ds.create_model(
            CreateModelDetails(compartment_id=tenancy, project_id=project.id)
        ).data
        ds.create_model_artifact(model.id, shared, content_disposition="attachment; filename=m")
        objects.delete_object(ns, "gc", "shared")
        objects.delete_object(ns, "gc", "dropped")
        blobs = svc.state.blobs
        digests = {d: hashlib.sha256(d).hexdigest() for d in (shared, dropped, replaced, b"new")}
        assert all(blobs.path(h).exists() for h in digests.values())
        (blobs.root / "tmp" / "body-partial").write_bytes(b"half a body")
    with LocalOCI(data_dir=data_dir) as svc:
        blobs = svc.state.blobs
        assert not blobs.path(digests[dropped]).exists()
        assert not blobs.path(digests[replaced]).exists()
        assert not (blobs.root / "tmp" / "body-partial").exists()
        assert blobs.path(digests[shared]).exists() and blobs.path(digests[b"new"]).exists()
        ds = svc.client(DataScienceClient)
        assert ds.get_model_artifact_content(model.id).data.content == shared
        objects = svc.client(oci.object_storage.ObjectStorageClient)
        assert objects.get_object(ns, "gc", "kept").data.content == b"new"
        index = objects.get_object("id19sfcrra6z", "service-conda-packs", "service_pack/index.json")
        assert index.data.content.startswith(b"[")
