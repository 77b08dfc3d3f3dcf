"""ocimodel.oci.download against the local OCI service through the real oci SDK: parallel ranged
downloads, one streamed GET for small objects, healing through injected faults, and failures that
leave no temporary file behind."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ocimodel.errors import ArtifactPathIsFolderError
from ocimodel.oci.download import DownloadError, download_file
from ocimodel.oci.multipart import MIB, RetryPolicy, upload_file
from ocimodel.progress import RecordingProgress, use_progress

FAST = RetryPolicy(max_attempts=8, base_delay=0.01, max_delay=0.05)


@pytest.fixture
def auth(local_oci):
    return local_oci.auth()


@pytest.fixture
def stored(client, namespace, bucket, tmp_path):
    """A function storing bytes as an object (one put_object); returns its URI."""

    def store(name: str, data: bytes) -> str:
        client.put_object(namespace, bucket, name, data)
        return f"oci://{bucket}@{namespace}/{name}"

    return store


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(".download-"))


def test_parallel_ranged_download_is_byte_identical(auth, stored, tmp_path):
    data = os.urandom(9 * MIB + 4321)
    uri = stored("model.bin", data)
    dest = tmp_path / "out" / "model.bin"
    progress = RecordingProgress()
    result = download_file(
        uri, dest, auth=auth, part_size=MIB, parallel_process_count=4, progress=progress
    )
    assert dest.read_bytes() == data
    assert (result.size, result.parts, result.path, result.retries) == (len(data), 10, str(dest), 0)
    assert progress.starts == [(len(data), "Downloading model.bin")]
    assert progress.done == len(data) and progress.finished
    assert leftovers(dest.parent) == []


def test_multipart_object_round_trip(auth, client, namespace, bucket, tmp_path):
    src = tmp_path / "src.bin"
    src.write_bytes(os.urandom(5 * MIB + 1))
    uri = f"oci://{bucket}@{namespace}/src.bin"
    uploaded = upload_file(src, uri, auth=auth, part_size=MIB)
    result = download_file(uri, tmp_path / "back.bin", auth=auth, part_size=2 * MIB)
    assert (tmp_path / "back.bin").read_bytes() == src.read_bytes()
    assert result.etag == uploaded.etag and result.parts == 3


def test_small_object_is_one_get_checked_against_its_md5(auth, stored, tmp_path):
    uri = stored("score.py", b"def predict(x):\n    return x\n")
    with use_progress(lambda description, total: RecordingProgress()):
        result = download_file(uri, tmp_path / "score.py", auth=auth)
    assert result.parts == 1
    assert (tmp_path / "score.py").read_bytes() == b"def predict(x):\n    return x\n"


def test_empty_object(auth, stored, tmp_path):
    result = download_file(stored("empty", b""), tmp_path / "empty", auth=auth)
    assert result.size == 0 and (tmp_path / "empty").read_bytes() == b""


def test_replaces_an_existing_file_atomically(auth, stored, tmp_path):
    dest = tmp_path / "model.bin"
    dest.write_bytes(b"old")
    download_file(stored("model.bin", b"new bytes"), dest, auth=auth)
    assert dest.read_bytes() == b"new bytes"


def test_transient_faults_mid_download_heal(local_faults, stored, tmp_path):
    data = os.urandom(6 * MIB + 17)
    uri = stored("model.bin", data)
    local_faults.set_faults(
        {"operation": "get_object", "drop": True, "count": 3},
        {"operation": "get_object", "status": 503, "count": 2},
        {"operation": "get_object", "status": 500, "rate": 0.1},
    )
    result = download_file(
        uri,
        tmp_path / "model.bin",
        auth=local_faults.auth(),
        part_size=MIB,
        parallel_process_count=3,
        retry=FAST,
    )
    applied = sum(rule["applied"] for rule in local_faults.faults())
    local_faults.clear_faults()
    assert (tmp_path / "model.bin").read_bytes() == data
    assert applied >= 5 and result.retries >= applied
    assert leftovers(tmp_path) == []


def test_small_object_heals_from_a_cut_body(local_faults, stored, tmp_path):
    data = os.urandom(300_000)
    uri = stored("small.bin", data)
    local_faults.set_faults({"operation": "get_object", "drop": True, "count": 2})
    result = download_file(uri, tmp_path / "small.bin", auth=local_faults.auth(), retry=FAST)
    assert (tmp_path / "small.bin").read_bytes() == data and result.retries == 2


def test_missing_object_fails_and_leaves_nothing(auth, namespace, bucket, tmp_path):
    uri = f"oci://{bucket}@{namespace}/absent.bin"
    with pytest.raises(DownloadError) as err:
        download_file(uri, tmp_path / "absent.bin", auth=auth, retry=FAST)
    assert err.value.uri == uri and err.value.status == 404
    assert "absent.bin" in str(err.value) and bucket in str(err.value)
    assert list(tmp_path.iterdir()) == []


def test_persistent_failure_removes_the_temporary_file(local_faults, stored, tmp_path):
    data = os.urandom(4 * MIB)
    uri = stored("model.bin", data)
    dest = tmp_path / "model.bin"
    dest.write_bytes(b"previous")
    local_faults.set_faults(
        {"operation": "get_object", "path": "model.bin", "status": 503, "count": 100}
    )
    with pytest.raises(DownloadError) as err:
        download_file(
            uri,
            dest,
            auth=local_faults.auth(),
            part_size=MIB,
            retry=RetryPolicy(max_attempts=3, base_delay=0.01, max_delay=0.02),
        )
    local_faults.clear_faults()
    assert err.value.status == 503 and "every retry" in str(err.value)
    assert leftovers(tmp_path) == [] and dest.read_bytes() == b"previous"


def test_expected_size_mismatch_fails_before_fetching(local_faults, stored, tmp_path):
    uri = stored("model.bin", b"x" * 1000)
    with pytest.raises(DownloadError, match="holds 1000 bytes, not the 999 expected"):
        download_file(uri, tmp_path / "model.bin", auth=local_faults.auth(), expected_size=999)
    assert list(tmp_path.iterdir()) == []


def test_object_replaced_mid_download_fails(local_faults, client, namespace, bucket, tmp_path):
    client.put_object(namespace, bucket, "model.bin", os.urandom(8 * MIB))
    uri = f"oci://{bucket}@{namespace}/model.bin"
    local_faults.set_faults({"operation": "get_object", "latency_ms": 50})

    class ReplaceOnFirstBytes(RecordingProgress):
        def advance(self, n: int) -> None:
            if not self.advances:
                client.put_object(namespace, bucket, "model.bin", b"replaced")
            super().advance(n)

    with pytest.raises(DownloadError) as err:
        download_file(
            uri,
            tmp_path / "model.bin",
            auth=local_faults.auth(),
            part_size=MIB,
            parallel_process_count=2,
            progress=ReplaceOnFirstBytes(),
            retry=FAST,
        )
    assert err.value.status == 412 and "replaced while it was downloaded" in str(err.value)
    assert list(tmp_path.iterdir()) == []


def test_destination_folder_is_refused(auth, stored, tmp_path):
    (tmp_path / "model.bin").mkdir()
    with pytest.raises(ArtifactPathIsFolderError):
        download_file(stored("model.bin", b"x"), tmp_path / "model.bin", auth=auth)
