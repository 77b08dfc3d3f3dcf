"""ocimodel.oci.multipart against the local OCI service through the real oci SDK: round trips,
overlap with a file (or zip) still being written, resume after a SIGKILL, injected faults, clean
give-up, progress; and the streaming zip the overlap reads (ocimodel.artifact.archive.zip_into).
"""

from __future__ import annotations

import _thread
import base64
import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
import zipfile
from pathlib import Path

import oci
import pytest
from oci.object_storage.models import CreateMultipartUploadDetails

from ocimodel.artifact.archive import (
    ZIP_DATE_TIME,
    compression_for,
    safe_extract,
    start_zip_into,
    zip_into,
)
from ocimodel.artifact.manifest import ManifestError
from ocimodel.errors import ArtifactFileExistsError
from ocimodel.oci.download import download_file
from ocimodel.oci.multipart import (
    DEFAULT_PART_SIZE,
    MAX_PARTS,
    MIB,
    ObjectLocation,
    RetryPolicy,
    SourceChangedError,
    UploadError,
    abort_upload,
    choose_part_size,
    delete_object,
    is_transient,
    journal_path,
    upload_file,
)
from ocimodel.progress import RecordingProgress, use_progress

FAST = RetryPolicy(max_attempts=8, base_delay=0.01, max_delay=0.05)
CHILD = Path(__file__).with_name("upload_child.py")


@pytest.fixture
def auth(local_oci):
    return local_oci.auth()


@pytest.fixture
def target(namespace, bucket):
    """A function giving the URI of an object of the fresh bucket."""
    return lambda name: f"oci://{bucket}@{namespace}/{name}"


def write_random(path: Path, size: int) -> Path:
    with open(path, "wb") as fh:
        left = size
        while left:
            n = min(left, MIB)
            fh.write(os.urandom(n))
            left -= n
    return path


def b64md5(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data).digest()).decode()


def sdk_bytes(client, uri: str) -> bytes:
    loc = ObjectLocation.parse(uri)
    return client.get_object(loc.namespace, loc.bucket, loc.name).data.content


def uploads_in(client, namespace: str, bucket: str) -> list:
    return client.list_multipart_uploads(namespace, bucket).data


class TimedProgress(RecordingProgress):
    """Records when each advance happened."""

    def __init__(self) -> None:
        super().__init__()
        self.times: list[float] = []

    def advance(self, n: int) -> None:
        self.times.append(time.monotonic())
        super().advance(n)


# --- round trips ----------------------------------------------------------------------------


def test_multipart_upload_round_trips_byte_identical(
    auth, client, namespace, bucket, target, tmp_path
):
    src = write_random(tmp_path / "model.bin", 10 * MIB + 12345)
    uri = target("models/model.bin")
    progress = RecordingProgress()
    result = upload_file(
        src, uri, auth=auth, part_size=MIB, parallel_process_count=4, progress=progress
    )
    assert (result.parts_total, result.parts_sent, result.parts_reused) == (11, 11, 0)
    assert result.size == src.stat().st_size and result.upload_id and not result.unchanged
    head = client.head_object(namespace, bucket, "models/model.bin").headers
    assert head["opc-multipart-md5"] == result.md5 and result.md5.endswith("-11")
    assert head["etag"] == result.etag
    assert sdk_bytes(client, uri) == src.read_bytes()
    back = tmp_path / "back.bin"
    download_file(uri, back, auth=auth, part_size=MIB, parallel_process_count=4)
    assert back.read_bytes() == src.read_bytes()
    assert uploads_in(client, namespace, bucket) == []
    assert progress.starts[-1][0] == result.size and progress.done == result.size
    assert progress.finished


def test_small_file_goes_in_one_put_object(auth, client, namespace, bucket, target, tmp_path):
    src = tmp_path / "score.py"
    src.write_bytes(b"def predict(data):\n    return data\n")
    result = upload_file(
        src,
        target("score.py"),
        auth=auth,
        part_size=MIB,
        content_type="text/x-python",
        metadata={"stage": "test"},
    )
    assert (result.upload_id, result.parts_total, result.parts_sent) == (None, 1, 1)
    head = client.head_object(namespace, bucket, "score.py").headers
    assert head["content-md5"] == b64md5(src.read_bytes()) == result.md5
    assert head["content-type"] == "text/x-python" and head["opc-meta-stage"] == "test"
    assert "opc-multipart-md5" not in head
    assert not Path(journal_path(src)).exists()


def test_empty_file_uploads(auth, client, target, tmp_path):
    src = tmp_path / "empty"
    src.write_bytes(b"")
    result = upload_file(src, target("empty"), auth=auth)
    assert result.size == 0 and sdk_bytes(client, target("empty")) == b""


def test_content_type_and_metadata_on_a_multipart_object(
    auth, client, namespace, bucket, target, tmp_path
):
    src = write_random(tmp_path / "m.bin", 3 * MIB)
    upload_file(
        src,
        target("m.bin"),
        auth=auth,
        part_size=MIB,
        content_type="application/zip",
        metadata={"opc-meta-kind": "artifact", "owner": "me"},
    )
    head = client.head_object(namespace, bucket, "m.bin").headers
    assert head["content-type"] == "application/zip"
    assert (head["opc-meta-kind"], head["opc-meta-owner"]) == ("artifact", "me")


def test_rerun_of_a_finished_upload_sends_nothing(auth, client, target, tmp_path):
    src = write_random(tmp_path / "model.bin", 5 * MIB + 1)
    uri = target("model.bin")
    first = upload_file(src, uri, auth=auth, part_size=MIB)
    again = upload_file(src, uri, auth=auth, part_size=MIB)
    assert again.unchanged and (again.parts_sent, again.etag, again.md5) == (
        0,
        first.etag,
        first.md5,
    )
    # Without the journal the object's multipart md5 is compared with the file's parts.
    os.unlink(journal_path(src))
    os.utime(src)
    again = upload_file(src, uri, auth=auth, part_size=MIB)
    assert again.unchanged and again.parts_sent == 0
    # New bytes of the same size are uploaded again.
    with open(src, "r+b") as fh:
        fh.seek(2 * MIB)
        fh.write(b"changed")
    changed = upload_file(src, uri, auth=auth, part_size=MIB)
    assert not changed.unchanged and changed.parts_sent == 6 and changed.md5 != first.md5
    assert sdk_bytes(client, uri) == src.read_bytes()


def test_progress_comes_from_the_context_factory(auth, target, tmp_path):
    src = write_random(tmp_path / "model.bin", 4 * MIB + 7)
    recorded = RecordingProgress()
    with use_progress(lambda description, total: recorded):
        upload_file(src, target("model.bin"), auth=auth, part_size=MIB, parallel_process_count=3)
    assert recorded.total == src.stat().st_size
    assert recorded.done == src.stat().st_size
    assert sorted(recorded.advances) == [7, MIB, MIB, MIB, MIB]
    assert recorded.description == "Uploading model.bin" and recorded.finished


# --- part sizes -----------------------------------------------------------------------------


def test_part_size_fits_any_size_in_10000_parts():
    assert choose_part_size(None) == DEFAULT_PART_SIZE
    assert choose_part_size(10 * MIB) == DEFAULT_PART_SIZE
    assert choose_part_size(10 * MIB, 1 * MIB) == MIB
    tib = 1024**4
    size = choose_part_size(tib)
    assert size % MIB == 0 and size * MAX_PARTS >= tib and (size - MIB) * MAX_PARTS < tib
    assert choose_part_size(tib, 8 * MIB) == size  # too small for 10,000 parts: raised
    assert choose_part_size(10 * tib) * MAX_PARTS >= 10 * tib
    with pytest.raises(ValueError, match="50 GiB"):
        choose_part_size(600 * tib)
    with pytest.raises(ValueError, match="positive"):
        choose_part_size(10, -1)


def test_object_location_parsing():
    loc = ObjectLocation.parse("oci://bkt@ns/a/b/c.zip")
    assert (loc.namespace, loc.bucket, loc.name, loc.uri) == ("ns", "bkt", "a/b/c.zip", str(loc))
    assert ObjectLocation.parse(loc) is loc
    for bad in ("oci://bkt/a", "s3://b@n/a", "oci://b@n/", "", None):
        with pytest.raises(ValueError, match="oci://<bucket>@<namespace>"):
            ObjectLocation.parse(bad)


def test_transient_errors_are_classified():
    def service_error(status, code="X"):
        return oci.exceptions.ServiceError(status, code, {}, "m")

    for status in (429, 500, 502, 503, 504):
        assert is_transient(service_error(status))
    assert is_transient(service_error(409, "ConcurrentObjectUpdate"))
    for status, code in ((400, "InvalidParameter"), (401, "X"), (404, "X"), (409, "X"), (501, "X")):
        assert not is_transient(service_error(status, code))
    assert is_transient(ConnectionResetError())
    assert is_transient(oci.exceptions.RequestException("reset"))
    assert not is_transient(ValueError("bad"))


# --- overlap with a file still being written -------------------------------------------------


def test_overlap_uploads_parts_while_the_file_grows(
    auth, client, namespace, bucket, target, tmp_path
):
    path = tmp_path / "growing.zip"
    path.write_bytes(b"")
    done = threading.Event()
    finished_writing: list[float] = []
    chunks = [os.urandom(512 * 1024) for _ in range(24)] + [b"tail"]

    def writer() -> None:
        with open(path, "ab") as fh:
            for chunk in chunks:
                fh.write(chunk)
                fh.flush()
                time.sleep(0.04)
        finished_writing.append(time.monotonic())
        done.set()

    thread = threading.Thread(target=writer)
    progress = TimedProgress()
    thread.start()
    result = upload_file(
        path,
        target("growing.zip"),
        auth=auth,
        part_size=MIB,
        source_done=done,
        expected_max_size=64 * MIB,
        progress=progress,
        parallel_process_count=3,
    )
    thread.join()
    assert sdk_bytes(client, target("growing.zip")) == path.read_bytes()
    assert result.size == 12 * MIB + 4 and result.parts_total == 13
    assert min(progress.times) < finished_writing[0], "no part went out before the end"
    assert progress.starts[0][0] is None and progress.starts[-1][0] == result.size
    assert progress.done == result.size


def test_growing_file_that_ends_within_one_part_is_one_put(auth, client, target, tmp_path):
    path = tmp_path / "small.zip"
    path.write_bytes(b"")
    done = threading.Event()

    def writer() -> None:
        with open(path, "ab") as fh:
            for _ in range(5):
                fh.write(b"x" * 1000)
                fh.flush()
                time.sleep(0.02)
        done.set()

    threading.Thread(target=writer).start()
    result = upload_file(path, target("small.zip"), auth=auth, part_size=MIB, source_done=done)
    assert (result.upload_id, result.parts_total, result.size) == (None, 1, 5000)
    assert sdk_bytes(client, target("small.zip")) == b"x" * 5000


def test_source_removed_while_written_fails_and_leaves_nothing(
    auth, client, namespace, bucket, target, tmp_path
):
    path = tmp_path / "doomed.zip"
    path.write_bytes(b"")
    done = threading.Event()

    def writer() -> None:
        with open(path, "ab") as fh:
            for _ in range(6):
                fh.write(os.urandom(MIB))
                fh.flush()
                time.sleep(0.03)
        os.unlink(path)  # what zip_into does when zipping fails
        done.set()

    threading.Thread(target=writer).start()
    with pytest.raises(SourceChangedError) as err:
        upload_file(path, target("doomed.zip"), auth=auth, part_size=MIB, source_done=done)
    assert err.value.uri == target("doomed.zip")
    assert uploads_in(client, namespace, bucket) == []
    assert not Path(journal_path(path)).exists()


def make_artifact(folder: Path, model_mib: int = 6) -> Path:
    folder.mkdir()
    write_random(folder / "model.pkl", model_mib * MIB)
    (folder / "score.py").write_text("def load_model():\n    return None\n" * 2000)
    (folder / "runtime.yaml").write_text("MODEL_ARTIFACT_VERSION: '3.0'\n")
    (folder / "data").mkdir()
    (folder / "data" / "sample.csv").write_text("a,b\n1,2\n" * 50000)
    (folder / "notes.log").write_text("not in the zip")
    (folder / ".model-ignore").write_text("*.log\n")
    return folder


def test_zip_and_upload_overlap(auth, client, namespace, bucket, target, tmp_path):
    art = make_artifact(tmp_path / "artifact")
    dest = tmp_path / "artifact.zip"
    job = start_zip_into(str(art), str(dest), manifest_files=["model.pkl", "score.py"])
    result = upload_file(
        dest,
        target("artifact.zip"),
        auth=auth,
        part_size=MIB,
        source_done=job.done,
        expected_max_size=64 * MIB,
    )
    assert job.result() == str(dest)
    assert sdk_bytes(client, target("artifact.zip")) == dest.read_bytes()
    assert result.size == dest.stat().st_size
    names = zipfile.ZipFile(dest).namelist()
    assert names[-1] == "ocimodel-manifest.json" and "notes.log" not in names


def test_rebuilt_zip_resumes_and_converges(auth, client, target, tmp_path):
    """A re-run zips the same folder again while uploading: the zip is byte-identical, so the
    finished upload is recognised (sending nothing) even though the file was rewritten."""
    art = make_artifact(tmp_path / "artifact")
    dest = tmp_path / "artifact.zip"
    uri = target("artifact.zip")
    job = start_zip_into(str(art), str(dest))
    first = upload_file(dest, uri, auth=auth, part_size=MIB, source_done=job.done)
    job.result()
    os.utime(art / "model.pkl")  # new mtimes do not change the zip
    job = start_zip_into(str(art), str(dest), force_overwrite=True)
    again = upload_file(dest, uri, auth=auth, part_size=MIB, source_done=job.done)
    job.result()
    assert again.unchanged and again.parts_sent == 0 and again.etag == first.etag
    (art / "score.py").write_text("changed\n")
    job = start_zip_into(str(art), str(dest), force_overwrite=True)
    changed = upload_file(dest, uri, auth=auth, part_size=MIB, source_done=job.done)
    job.result()
    assert not changed.unchanged and changed.parts_sent == changed.parts_total
    assert sdk_bytes(client, uri) == dest.read_bytes()


# --- resume ---------------------------------------------------------------------------------


def read_journal(path: Path) -> dict | None:
    try:
        return json.loads(Path(journal_path(path)).read_text())
    except (OSError, ValueError):
        return None


def test_resume_after_sigkill_sends_only_the_missing_parts(
    local_faults, client, namespace, bucket, target, tmp_path
):
    src = write_random(tmp_path / "big.bin", 40 * MIB + 99)
    uri = target("big.bin")
    local_faults.set_faults({"operation": "upload_part", "latency_ms": 120})
    env = {**os.environ, **local_faults.env()}
    child = subprocess.Popen(
        [sys.executable, str(CHILD), str(src), uri, str(MIB), "2"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 60
        journal = None
        while time.monotonic() < deadline:
            journal = read_journal(src)
            if journal and len(journal["parts"]) >= 8:
                break
            assert child.poll() is None, child.stderr.read().decode()
            time.sleep(0.02)
        else:
            pytest.fail("the child never acknowledged 8 parts")
        os.kill(child.pid, signal.SIGKILL)
        child.wait(10)
    finally:
        if child.poll() is None:
            child.kill()
        child.stdout.close()
        child.stderr.close()
    local_faults.clear_faults()
    journal = read_journal(src)
    upload_id = journal["upload_id"]
    assert journal["committed"] is None
    listed = client.list_multipart_upload_parts(namespace, bucket, "big.bin", upload_id).data
    assert 8 <= len(listed) < 41
    remaining = 41 - len(listed)

    result = upload_file(src, uri, auth=local_faults.auth(), part_size=MIB, retry=FAST)
    assert result.upload_id == upload_id
    # A part still in flight when the child died may land during the re-run: it is sent again
    # (the "+1"), or its etag is taken at the commit.
    assert result.parts_sent <= remaining + 1
    assert result.parts_reused >= len(listed) - 1
    assert result.parts_total == 41 <= result.parts_sent + result.parts_reused
    assert sdk_bytes(client, uri) == src.read_bytes()
    assert uploads_in(client, namespace, bucket) == []
    assert read_journal(src)["committed"]["md5"] == result.md5


def start_partial_upload(client, src: Path, namespace: str, bucket: str, name: str, parts: int):
    """A multipart upload of ``src`` in 1 MiB parts with only its first ``parts`` parts sent,
    as the SDK would leave it; returns (upload id, {part: (size, md5)})."""
    upload_id = client.create_multipart_upload(
        namespace, bucket, CreateMultipartUploadDetails(object=name)
    ).data.upload_id
    data = src.read_bytes()
    sent = {}
    for num in range(1, parts + 1):
        chunk = data[(num - 1) * MIB : num * MIB]
        client.upload_part(namespace, bucket, name, upload_id, num, chunk)
        sent[num] = (len(chunk), b64md5(chunk))
    return upload_id, sent


def write_journal(local_oci, src: Path, uri: str, upload_id: str, parts: dict) -> None:
    doc = {
        "version": 1,
        "endpoint": local_oci.endpoint,
        "uri": uri,
        "upload_id": upload_id,
        "part_size": MIB,
        "source": None,
        "parts": {str(k): list(v) for k, v in parts.items()},
        "committed": None,
        "attributes": {},
    }
    Path(journal_path(src)).write_text(json.dumps(doc))


def test_journal_part_whose_md5_differs_from_the_service_is_sent_again(
    local_oci, auth, client, namespace, bucket, target, tmp_path
):
    src = write_random(tmp_path / "model.bin", 8 * MIB + 5)
    uri = target("model.bin")
    upload_id, sent = start_partial_upload(client, src, namespace, bucket, "model.bin", 5)
    sent[2] = (sent[2][0], b64md5(b"something else"))  # the journal disagrees on part 2
    write_journal(local_oci, src, uri, upload_id, sent)
    result = upload_file(src, uri, auth=auth, part_size=MIB)
    assert result.upload_id == upload_id
    assert (result.parts_reused, result.parts_sent) == (4, 5)  # parts 1,3,4,5 kept
    assert sdk_bytes(client, uri) == src.read_bytes()


def test_stored_part_with_other_bytes_is_sent_again(
    local_oci, auth, client, namespace, bucket, target, tmp_path
):
    """Without a journal entry a listed part is kept only when the local bytes give its md5."""
    src = write_random(tmp_path / "model.bin", 6 * MIB)
    uri = target("model.bin")
    upload_id, sent = start_partial_upload(client, src, namespace, bucket, "model.bin", 4)
    client.upload_part(namespace, bucket, "model.bin", upload_id, 3, os.urandom(MIB))  # stale
    write_journal(local_oci, src, uri, upload_id, {})
    result = upload_file(src, uri, auth=auth, part_size=MIB)
    assert (result.parts_reused, result.parts_sent) == (3, 3)
    assert sdk_bytes(client, uri) == src.read_bytes()


def test_journal_of_a_vanished_upload_starts_a_new_one(
    local_oci, auth, client, namespace, bucket, target, tmp_path
):
    src = write_random(tmp_path / "model.bin", 4 * MIB)
    uri = target("model.bin")
    upload_id, sent = start_partial_upload(client, src, namespace, bucket, "model.bin", 2)
    client.abort_multipart_upload(namespace, bucket, "model.bin", upload_id)
    write_journal(local_oci, src, uri, upload_id, sent)
    result = upload_file(src, uri, auth=auth, part_size=MIB)
    assert result.upload_id != upload_id and (result.parts_sent, result.parts_reused) == (4, 0)
    assert sdk_bytes(client, uri) == src.read_bytes()


def test_resume_keeps_the_part_size_of_the_journal(
    local_oci, auth, client, namespace, bucket, target, tmp_path
):
    src = write_random(tmp_path / "model.bin", 6 * MIB + 3)
    uri = target("model.bin")
    client.put_object(namespace, bucket, "model.bin", os.urandom(6 * MIB + 3))  # same size
    upload_id, sent = start_partial_upload(client, src, namespace, bucket, "model.bin", 3)
    write_journal(local_oci, src, uri, upload_id, sent)
    result = upload_file(src, uri, auth=auth, part_size=2 * MIB)
    assert result.upload_id == upload_id
    assert (result.parts_total, result.parts_reused, result.parts_sent) == (7, 3, 4)
    assert sdk_bytes(client, uri) == src.read_bytes()


def test_resume_needs_the_same_content_type_and_metadata(
    local_oci, auth, client, namespace, bucket, target, tmp_path
):
    src = write_random(tmp_path / "model.bin", 4 * MIB)
    uri = target("model.bin")
    upload_id, sent = start_partial_upload(client, src, namespace, bucket, "model.bin", 2)
    write_journal(local_oci, src, uri, upload_id, sent)
    result = upload_file(src, uri, auth=auth, part_size=MIB, metadata={"version": "2"})
    assert result.upload_id != upload_id and result.parts_sent == 4
    assert client.head_object(namespace, bucket, "model.bin").headers["opc-meta-version"] == "2"
    assert uploads_in(client, namespace, bucket) == []  # the old upload was aborted


def test_keyboard_interrupt_leaves_the_upload_to_resume(
    local_faults, client, namespace, bucket, target, tmp_path
):
    auth = local_faults.auth()
    path = tmp_path / "growing.bin"
    data = os.urandom(12 * MIB)
    path.write_bytes(data[: 6 * MIB])
    uri = target("growing.bin")
    done = threading.Event()
    progress = RecordingProgress()

    def interrupt_after_parts() -> None:
        deadline = time.monotonic() + 30
        while progress.done < 3 * MIB and time.monotonic() < deadline:
            time.sleep(0.01)
        _thread.interrupt_main()

    threading.Thread(target=interrupt_after_parts, daemon=True).start()
    with pytest.raises(KeyboardInterrupt):
        upload_file(path, uri, auth=auth, part_size=MIB, source_done=done, progress=progress)
    journal = read_journal(path)
    assert journal and journal["upload_id"]
    assert [u.upload_id for u in uploads_in(client, namespace, bucket)] == [journal["upload_id"]]
    with open(path, "ab") as fh:
        fh.write(data[6 * MIB :])
    done.set()
    result = upload_file(path, uri, auth=auth, part_size=MIB, source_done=done)
    assert result.upload_id == journal["upload_id"] and result.parts_reused >= 3
    assert sdk_bytes(client, uri) == data


# --- faults and giving up --------------------------------------------------------------------


def test_upload_heals_through_injected_faults(
    local_faults, client, namespace, bucket, target, tmp_path
):
    src = write_random(tmp_path / "model.bin", 30 * MIB + 3)
    local_faults.set_faults(
        {"operation": "upload_part", "status": 500, "rate": 0.1},
        {"operation": "upload_part", "status": 503, "rate": 0.05},
        {"operation": "upload_part", "drop": True, "count": 2},
        {"operation": "upload_part", "drop": True, "drop_phase": "request", "count": 2},
    )
    result = upload_file(
        src,
        target("model.bin"),
        auth=local_faults.auth(),
        part_size=MIB,
        parallel_process_count=4,
        retry=FAST,
    )
    applied = sum(rule["applied"] for rule in local_faults.faults())
    local_faults.clear_faults()
    assert applied >= 4 and result.retries >= applied
    assert result.parts_total == 31
    assert sdk_bytes(client, target("model.bin")) == src.read_bytes()
    assert uploads_in(client, namespace, bucket) == []


def test_missing_bucket_fails_with_a_typed_error(auth, client, namespace, tmp_path):
    src = write_random(tmp_path / "model.bin", 3 * MIB)
    uri = f"oci://no-such-bucket@{namespace}/model.bin"
    with pytest.raises(UploadError) as err:
        upload_file(src, uri, auth=auth, part_size=MIB, retry=FAST)
    assert err.value.uri == uri and err.value.status == 404
    assert "no-such-bucket" in str(err.value) and uri in str(err.value)
    assert not Path(journal_path(src)).exists()


def test_non_transient_error_mid_upload_aborts_everything(
    local_faults, client, namespace, bucket, target, tmp_path
):
    src = write_random(tmp_path / "model.bin", 12 * MIB)
    local_faults.set_faults(
        {"operation": "upload_part", "status": 400, "code": "InvalidParameter", "count": 1}
    )
    with pytest.raises(UploadError) as err:
        upload_file(
            src,
            target("model.bin"),
            auth=local_faults.auth(),
            part_size=MIB,
            parallel_process_count=2,
            retry=FAST,
        )
    assert (err.value.status, err.value.code) == (400, "InvalidParameter")
    assert target("model.bin") in str(err.value)
    assert uploads_in(client, namespace, bucket) == []
    assert not Path(journal_path(src)).exists()


def test_exhausted_retries_abort_everything(
    local_faults, client, namespace, bucket, target, tmp_path
):
    src = write_random(tmp_path / "model.bin", 4 * MIB)
    local_faults.set_faults({"operation": "upload_part", "status": 503})
    with pytest.raises(UploadError) as err:
        upload_file(
            src,
            target("model.bin"),
            auth=local_faults.auth(),
            part_size=MIB,
            retry=RetryPolicy(max_attempts=3, base_delay=0.01, max_delay=0.02),
        )
    assert err.value.status == 503 and "every retry" in str(err.value)
    assert uploads_in(client, namespace, bucket) == []
    assert not Path(journal_path(src)).exists()


def test_abort_upload_and_delete_object_helpers(auth, client, namespace, bucket, target, tmp_path):
    upload_id = client.create_multipart_upload(
        namespace, bucket, CreateMultipartUploadDetails(object="x")
    ).data.upload_id
    assert abort_upload(target("x"), upload_id, auth) is True
    assert abort_upload(target("x"), upload_id, auth) is False
    client.put_object(namespace, bucket, "y", b"y")
    assert delete_object(target("y"), auth) is True
    assert delete_object(target("y"), auth) is False
    with pytest.raises(oci.exceptions.ServiceError):
        delete_object(target("y"), auth, missing_ok=False)


def test_commit_answer_lost_converges(local_faults, client, namespace, bucket, target, tmp_path):
    """The commit is stored but its answer is cut: the retried commit finds no upload, and the
    object with the expected multipart md5 counts as committed."""
    src = write_random(tmp_path / "model.bin", 3 * MIB)
    local_faults.set_faults({"operation": "commit_multipart_upload", "drop": True, "count": 1})
    auth = {**local_faults.auth(), "client_kwargs": {
        "service_endpoint": local_faults.endpoint,
        "retry_strategy": oci.retry.NoneRetryStrategy(),
    }}  # fmt: skip
    result = upload_file(src, target("model.bin"), auth=auth, part_size=MIB, retry=FAST)
    assert local_faults.faults()[0]["applied"] == 1
    assert sdk_bytes(client, target("model.bin")) == src.read_bytes()
    assert result.md5.endswith("-3")


# --- memory ---------------------------------------------------------------------------------


@pytest.mark.slow
def test_one_gib_upload_stays_well_under_256_mb(local_oci, namespace, bucket, tmp_path):
    """In a child process (so the in-process service does not count): peak RSS of the upload
    beyond what the process held before it."""
    src = write_random(tmp_path / "big.bin", 1024 * MIB)
    code = (
        "import sys, json\n"
        "from ocimodel.oci.multipart import upload_file\n"
        "def rss(field):\n"
        "    for line in open('/proc/self/status'):\n"
        "        if line.startswith(field + ':'):\n"
        "            return int(line.split()[1]) // 1024\n"
        "before = rss('VmRSS')\n"
        "r = upload_file(sys.argv[1], sys.argv[2])\n"
        "print(json.dumps({'before': before, 'peak': rss('VmHWM'), 'parts': r.parts_total}))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(src), f"oci://{bucket}@{namespace}/big.bin"],
        env={**os.environ, **local_oci.env()},
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    stats = json.loads(out.stdout.strip().splitlines()[-1])
    assert stats["parts"] == 32
    assert stats["peak"] - stats["before"] < 100, stats
    assert stats["peak"] < 256, stats


# --- the streaming zip ----------------------------------------------------------------------


def test_streamed_zip_is_deterministic_and_complete(tmp_path):
    art = make_artifact(tmp_path / "artifact", model_mib=2)
    a, b = tmp_path / "a.zip", tmp_path / "b.zip"
    zip_into(str(art), str(a), manifest_files=["model.pkl", "score.py"])
    for path in art.rglob("*"):
        os.utime(path, (1_000_000, 1_000_000))
    (art / "score.py").chmod(0o600)  # permissions are normalized too
    zip_into(str(art), str(b), manifest_files=["model.pkl", "score.py"])
    assert a.read_bytes() == b.read_bytes()
    with zipfile.ZipFile(a) as zf:
        assert zf.testzip() is None
        infos = {i.filename: i for i in zf.infolist()}
        assert list(infos) == [  # sorted per folder (as make_zip), the manifest last
            ".model-ignore",
            "model.pkl",
            "runtime.yaml",
            "score.py",
            "data/sample.csv",
            "ocimodel-manifest.json",
        ]
        assert all(i.date_time == ZIP_DATE_TIME for i in infos.values())
        assert infos["model.pkl"].compress_type == zipfile.ZIP_STORED
        assert infos["data/sample.csv"].compress_type == zipfile.ZIP_DEFLATED
        assert infos["score.py"].compress_type == zipfile.ZIP_DEFLATED
        manifest = json.loads(zf.read("ocimodel-manifest.json"))
    digest = hashlib.sha256((art / "model.pkl").read_bytes()).hexdigest()
    assert manifest["files"]["model.pkl"] == {"sha256": digest, "size": 2 * MIB}
    assert sorted(safe_extract(str(a), str(tmp_path / "out"))) == sorted(infos)


def test_streamed_zip_only_appends(tmp_path):
    """Every prefix a reader saw while the zip grew is a prefix of the final file."""
    art = make_artifact(tmp_path / "artifact", model_mib=24)
    dest = tmp_path / "a.zip"
    job = start_zip_into(str(art), str(dest))
    seen: list[tuple[int, str]] = []
    while not job.done.is_set():
        with open(dest, "rb") as fh:
            data = fh.read()
        if data and (not seen or len(data) > seen[-1][0]):
            seen.append((len(data), hashlib.sha256(data).hexdigest()))
        time.sleep(0.005)
    job.result()
    final = dest.read_bytes()
    assert len(seen) >= 2
    for length, digest in seen:
        assert hashlib.sha256(final[:length]).hexdigest() == digest


def test_compression_is_chosen_per_file(tmp_path):
    random_file = write_random(tmp_path / "weights.bin", 2 * MIB)
    text = tmp_path / "vocab.txt"
    text.write_text("token\n" * 100000)
    tiny = tmp_path / "tiny"
    tiny.write_bytes(os.urandom(100))
    assert compression_for(str(random_file)) == zipfile.ZIP_STORED
    assert compression_for(str(text)) == zipfile.ZIP_DEFLATED
    assert compression_for(str(tiny)) == zipfile.ZIP_DEFLATED


def test_streamed_zip_refuses_to_overwrite_and_removes_a_failed_zip(tmp_path):
    art = make_artifact(tmp_path / "artifact", model_mib=1)
    dest = tmp_path / "a.zip"
    dest.write_bytes(b"old")
    with pytest.raises(ArtifactFileExistsError):
        zip_into(str(art), str(dest))
    assert dest.read_bytes() == b"old"
    done = threading.Event()
    with pytest.raises(ManifestError, match="missing.bin"):
        zip_into(
            str(art),
            str(dest),
            force_overwrite=True,
            manifest_files=["missing.bin"],
            on_done=done,
        )
    assert done.is_set() and not dest.exists()
    job = start_zip_into(str(art), str(dest), manifest_files=["missing.bin"])
    with pytest.raises(ManifestError):
        job.result()
    assert job.done.is_set() and not dest.exists()
    with pytest.raises(FileNotFoundError, match="prepare it first"):
        zip_into(str(tmp_path / "absent"), str(dest))


def test_streamed_zip_inside_the_folder_leaves_itself_and_its_journal_out(tmp_path):
    art = make_artifact(tmp_path / "artifact", model_mib=1)
    dest = art / "artifact.zip"
    Path(str(dest) + ".upload.json").write_text("{}")
    zip_into(str(art), str(dest))
    names = zipfile.ZipFile(dest).namelist()
    assert "artifact.zip" not in names and "artifact.zip.upload.json" not in names
