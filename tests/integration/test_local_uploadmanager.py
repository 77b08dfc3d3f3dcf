"""The real oci UploadManager against ocimodel.local: multipart, single, stream and resume."""

from __future__ import annotations

import base64
import hashlib
import io
import os

import pytest
from oci.object_storage import UploadManager
from oci.object_storage.models import CreateMultipartUploadDetails

MIB = 1024 * 1024
PART = 5 * MIB


@pytest.fixture(scope="module")
def big_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("um") / "big.bin"
    with open(path, "wb") as fh:
        for _ in range(23):
            fh.write(os.urandom(MIB))
        fh.write(os.urandom(12345))
    return path


def sha256_of_object(client, namespace, bucket, name) -> str:
    digest = hashlib.sha256()
    resp = client.get_object(namespace, bucket, name)
    for chunk in resp.data.raw.stream(MIB, decode_content=False):
        digest.update(chunk)
    return digest.hexdigest()


def sha256_of_file(path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(MIB):
            digest.update(chunk)
    return digest.hexdigest()


def expected_multipart_md5(path, part_size: int) -> str:
    digests = b""
    count = 0
    with open(path, "rb") as fh:
        while chunk := fh.read(part_size):
            digests += hashlib.md5(chunk).digest()
            count += 1
    return f"{base64.b64encode(hashlib.md5(digests).digest()).decode()}-{count}"


def test_upload_file_multipart(client, namespace, bucket, big_file):
    manager = UploadManager(client, parallel_process_count=3)
    resp = manager.upload_file(
        namespace,
        bucket,
        "models/big.bin",
        str(big_file),
        part_size=PART,
        content_type="application/zip",
        metadata={"opc-meta-source": "test"},
    )
    assert resp.headers["opc-multipart-md5"] == expected_multipart_md5(big_file, PART)
    assert resp.headers["opc-multipart-md5"].endswith("-5")
    head = client.head_object(namespace, bucket, "models/big.bin").headers
    assert int(head["content-length"]) == big_file.stat().st_size
    assert head["content-type"] == "application/zip"
    assert head["opc-meta-source"] == "test"
    assert sha256_of_object(client, namespace, bucket, "models/big.bin") == sha256_of_file(big_file)
    assert client.list_multipart_uploads(namespace, bucket).data == []


def test_upload_file_single_put(client, namespace, bucket, tmp_path):
    small = tmp_path / "small.bin"
    data = os.urandom(300_000)
    small.write_bytes(data)
    resp = UploadManager(client).upload_file(namespace, bucket, "small.bin", str(small))
    assert resp.headers["opc-content-md5"] == base64.b64encode(hashlib.md5(data).digest()).decode()
    assert "opc-multipart-md5" not in resp.headers
    assert client.get_object(namespace, bucket, "small.bin").data.content == data


def test_upload_stream(client, namespace, bucket):
    data = os.urandom(12 * MIB + 7)
    resp = UploadManager(client).upload_stream(
        namespace, bucket, "streamed.bin", io.BytesIO(data), part_size=4 * MIB
    )
    assert resp.headers["opc-multipart-md5"].endswith("-4")
    got = client.get_object(namespace, bucket, "streamed.bin").data.content
    assert hashlib.sha256(got).digest() == hashlib.sha256(data).digest()


def test_resume_upload_file_after_interruption(client, namespace, bucket, big_file):
    name = "resumed.bin"
    upload = client.create_multipart_upload(
        namespace, bucket, CreateMultipartUploadDetails(object=name)
    ).data
    # Part 1 of an interrupted upload; its bytes differ from the file's (same size), so the
    # result shows whether resume kept the stored part or sent it again.
    stored_first = os.urandom(PART)
    client.upload_part(namespace, bucket, name, upload.upload_id, 1, stored_first)

    resp = UploadManager(client).resume_upload_file(
        namespace, bucket, name, str(big_file), upload.upload_id, part_size=PART
    )
    assert resp.status == 200
    assert resp.headers["opc-multipart-md5"].endswith("-5")
    expected = hashlib.sha256(stored_first)
    with open(big_file, "rb") as fh:
        fh.seek(PART)
        while chunk := fh.read(MIB):
            expected.update(chunk)
    assert sha256_of_object(client, namespace, bucket, name) == expected.hexdigest()
    assert client.list_multipart_uploads(namespace, bucket).data == []


def test_resume_with_other_part_size_is_refused(client, namespace, bucket, big_file):
    name = "mismatch.bin"
    upload = client.create_multipart_upload(
        namespace, bucket, CreateMultipartUploadDetails(object=name)
    ).data
    with open(big_file, "rb") as fh:
        client.upload_part(namespace, bucket, name, upload.upload_id, 1, fh.read(PART))
    with pytest.raises(ValueError, match="different part size"):
        UploadManager(client).resume_upload_file(
            namespace, bucket, name, str(big_file), upload.upload_id, part_size=6 * MIB
        )
    parts = client.list_multipart_upload_parts(namespace, bucket, name, upload.upload_id).data
    assert [(p.part_number, p.size) for p in parts] == [(1, PART)]
    client.abort_multipart_upload(namespace, bucket, name, upload.upload_id)
