"""ocifs (fsspec for OCI Object Storage) against ocimodel.local: ls, info, cat, put, get, rm."""

from __future__ import annotations

import hashlib
import os

import ocifs
import pytest

MIB = 1024 * 1024


@pytest.fixture()
def fs(local_oci):
    return ocifs.OCIFileSystem(
        config=local_oci.config,
        config_kwargs={"service_endpoint": local_oci.endpoint},
        skip_instance_cache=True,
    )


def test_put_ls_info_cat_get_rm(fs, client, namespace, bucket, tmp_path):
    root = f"oci://{bucket}@{namespace}"
    src = tmp_path / "model.pkl"
    data = os.urandom(200_000)
    src.write_bytes(data)
    fs.put(str(src), f"{root}/artifacts/v1/model.pkl")
    fs.pipe(f"{root}/artifacts/readme.txt", b"hello")

    top = fs.ls(root, detail=True, refresh=True)
    assert [(e["name"], e["type"]) for e in top] == [
        (f"{bucket}@{namespace}/artifacts", "directory")
    ]
    level = {e["name"]: e for e in fs.ls(f"{root}/artifacts", detail=True, refresh=True)}
    assert level[f"{bucket}@{namespace}/artifacts/readme.txt"]["type"] == "file"
    assert level[f"{bucket}@{namespace}/artifacts/readme.txt"]["size"] == 5
    assert level[f"{bucket}@{namespace}/artifacts/v1"]["type"] == "directory"

    info = fs.info(f"{root}/artifacts/v1/model.pkl")
    assert info["type"] == "file" and info["size"] == len(data)
    head = client.head_object(namespace, bucket, "artifacts/v1/model.pkl").headers
    assert info["etag"] == head["etag"] and info["versionId"] == head["version-id"]
    assert info["storageTier"] == "Standard"
    assert fs.info(f"{root}/artifacts/v1")["type"] == "directory"

    assert fs.cat(f"{root}/artifacts/readme.txt") == b"hello"
    with fs.open(f"{root}/artifacts/v1/model.pkl", "rb", block_size=64 * 1024) as fh:
        fh.seek(150_000)
        assert fh.read(1000) == data[150_000:151_000]

    dest = tmp_path / "back.pkl"
    fs.get(f"{root}/artifacts/v1/model.pkl", str(dest))
    assert dest.read_bytes() == data

    fs.rm(f"{root}/artifacts/v1/model.pkl")
    assert not fs.exists(f"{root}/artifacts/v1/model.pkl")
    assert [o.name for o in client.list_objects(namespace, bucket).data.objects] == [
        "artifacts/readme.txt"
    ]
    with pytest.raises(FileNotFoundError):
        fs.info(f"{root}/artifacts/v1/model.pkl")


def test_large_write_goes_multipart(fs, client, namespace, bucket):
    path = f"oci://{bucket}@{namespace}/big/data.bin"
    digest = hashlib.sha256()
    with fs.open(path, "wb", block_size=5 * MIB) as fh:
        for _ in range(13):
            chunk = os.urandom(MIB)
            digest.update(chunk)
            fh.write(chunk)
    head = client.head_object(namespace, bucket, "big/data.bin").headers
    assert int(head["content-length"]) == 13 * MIB
    assert int(head["opc-multipart-md5"].rsplit("-", 1)[1]) >= 2  # written in several parts
    got = hashlib.sha256()
    with fs.open(path, "rb") as fh:
        while chunk := fh.read(4 * MIB):
            got.update(chunk)
    assert got.hexdigest() == digest.hexdigest()
    assert client.list_multipart_uploads(namespace, bucket).data == []


def test_service_pack_index_is_visible(fs):
    index = fs.cat("oci://service-conda-packs@id19sfcrra6z/service_pack/index.json")
    assert b"generalml_p311_cpu_x86_64_v1" in index


def test_copy_touch_and_empty_objects(fs, client, namespace, bucket):
    root = f"oci://{bucket}@{namespace}"
    fs.pipe(f"{root}/a.txt", b"alpha")
    fs.copy(f"{root}/a.txt", f"{root}/copies/a.txt")
    assert fs.cat(f"{root}/copies/a.txt") == b"alpha"
    fs.touch(f"{root}/empty")
    assert fs.info(f"{root}/empty")["size"] == 0
    assert fs.cat(f"{root}/empty") == b""
    assert sorted(fs.find(root)) == sorted(
        f"{bucket}@{namespace}/{n}" for n in ("a.txt", "copies/a.txt", "empty")
    )
