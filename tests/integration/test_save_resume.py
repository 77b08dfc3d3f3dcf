"""Acceptance of the save stage: a save SIGKILLed at random points of a large upload resumes.

A child process (``save_child.py``) runs ``save_model`` with a ``bucket_uri`` against the local
service; the test kills it at random points of the upload (when the upload journal in
``$OCIMODEL_WORK_DIR`` shows a randomly chosen number of parts), runs it again, and finally lets
a run finish. Then:

- the catalog holds exactly one model, ACTIVE, with the save tag, and its artifact comes back
  through ``fetch_artifact`` with the large file byte-identical;
- the bucket holds no object and no multipart upload, and the work folder no zip or journal;
- every run resumed the same multipart upload, and each sent at most the parts the service still
  lacked plus one: the finishing run's ``UploadResult`` says so, and for every run the service's
  own count of ``upload_part`` requests (the ``applied`` counter of a latency rule matching
  every ``upload_part``) agrees, once requests that were in flight at the kill or hit by an
  injected fault are set aside.

The same holds while the service answers ~10% of ``upload_part``/``put_object``/``get_object``
requests with 500/503 and drops ~2% of their connections.

The part size is 1 MiB (``save_child.py --part-size``), so a 64 MiB file makes ~65 parts; the
latency rule slows each part a little so the kills land in the middle of the upload.
"""

from __future__ import annotations

import json
import math
import os
import random
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from ocimodel.artifact.downloader import fetch_artifact
from ocimodel.files import same_bytes
from ocimodel.oci.multipart import JOURNAL_SUFFIX, MIB, ObjectLocation
from ocimodel.pipeline import prepare_artifact
from ocimodel.save import SAVE_TAG, artifact_size_estimate

CHILD = Path(__file__).with_name("save_child.py")
SLUG = "generalml_p311_cpu_x86_64_v1"
BIG_MIB = 64
PART = MIB
WORKERS = 4
UPLOAD_PART_LATENCY_MS = 120
RUN_TIMEOUT = 120.0
SEED = int(os.environ.get("OCIMODEL_TEST_SEED") or random.randrange(1 << 30))

FAULTED_OPERATIONS = ("upload_part", "put_object", "get_object")
FAULTS = [
    *({"operation": op, "status": 500, "rate": 0.05} for op in FAULTED_OPERATIONS),
    *({"operation": op, "status": 503, "rate": 0.05} for op in FAULTED_OPERATIONS),
    *({"operation": op, "drop": True, "rate": 0.01} for op in FAULTED_OPERATIONS),
    *(
        {"operation": op, "drop": True, "drop_phase": "request", "rate": 0.01}
        for op in FAULTED_OPERATIONS
    ),
]
"""~10% 500/503 and ~2% dropped connections (half mid-response, half mid-request)."""


@pytest.fixture(scope="session")
def big_file(tmp_path_factory) -> Path:
    """BIG_MIB MiB of os.urandom, written once per session."""
    path = tmp_path_factory.mktemp("save-resume") / "weights.bin"
    with open(path, "wb") as fh:
        for _ in range(BIG_MIB):
            fh.write(os.urandom(MIB))
    return path


@pytest.fixture
def large_artifact(local_env, iris, big_file, tmp_path) -> Path:
    """A prepared iris artifact with the large incompressible file beside the model."""
    estimator, X, _ = iris
    folder = tmp_path / "artifact"
    prepare_artifact(estimator, str(folder), inference_conda_env=SLUG, X_sample=X.head(20))
    try:
        os.link(big_file, folder / "weights.bin")
    except OSError:
        (folder / "weights.bin").write_bytes(big_file.read_bytes())
    return folder


@pytest.fixture
def work_dir(tmp_path, monkeypatch) -> Path:
    """$OCIMODEL_WORK_DIR of the children (and of this process's fetch_artifact)."""
    path = tmp_path / "work"
    path.mkdir()
    monkeypatch.setenv("OCIMODEL_WORK_DIR", str(path))
    return path


# --- watching the service and the journal -------------------------------------------------------


def read_journal(work: Path) -> dict | None:
    """The upload journal of the save's zip (there is one zip per save), or None."""
    for path in work.glob(f"*{JOURNAL_SUFFIX}"):
        try:
            return json.loads(path.read_text())
        except (OSError, ValueError):  # being replaced right now
            return None
    return None


def journal_parts(journal: dict | None) -> int:
    if not journal:
        return 0
    if journal.get("committed"):
        return len(journal["committed"]["parts"])
    return len(journal.get("parts") or {})


def held_parts(client, journal: dict | None) -> set[int]:
    """Part numbers the service holds for the journal's multipart upload."""
    if not journal or not journal.get("upload_id") or journal.get("committed"):
        return set()
    loc = ObjectLocation.parse(journal["uri"])
    try:
        parts = client.list_multipart_upload_parts(
            loc.namespace, loc.bucket, loc.name, journal["upload_id"]
        ).data
    except Exception:  # the upload is gone
        return set()
    return {int(p.part_number) for p in parts}


def applied(local_oci) -> tuple[int, int]:
    """(upload_part requests the service received, requests an error or drop rule hit)."""
    rules = local_oci.faults()
    requests = sum(r["applied"] for r in rules if r.get("latency_ms"))
    faulted = sum(r["applied"] for r in rules if r.get("status") or r.get("drop"))
    return requests, faulted


# --- the child ----------------------------------------------------------------------------------


@dataclass
class Run:
    """One run of the child: what the service held before and after, what it received."""

    before: set[int]
    after: set[int] = field(default_factory=set)
    requests: int = 0
    faulted: int = 0
    killed_at: int | None = None  # parts in the journal when the kill was sent
    upload_id: str | None = None
    events: list[dict] = field(default_factory=list)

    def event(self, name: str) -> dict:
        found = [e for e in self.events if e["event"] == name]
        assert found, f"the child printed no {name!r} event: {self.events}"
        return found[-1]


class Child:
    """save_child.py running in the background, its output in files."""

    def __init__(self, folder: Path, uri: str, tmp: Path, index: int):
        self.out = tmp / f"child-{index}.out"
        self.err = tmp / f"child-{index}.err"
        with open(self.out, "wb") as out, open(self.err, "wb") as err:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    str(CHILD),
                    str(folder),
                    uri,
                    "--part-size",
                    str(PART),
                    "--workers",
                    str(WORKERS),
                    "--display-name",
                    "resumed",
                    "--poll-interval",
                    "0.2",
                ],
                env=dict(os.environ),
                stdout=out,
                stderr=err,
            )

    def events(self) -> list[dict]:
        lines = self.out.read_text().splitlines() if self.out.exists() else []
        return [json.loads(line) for line in lines if line.startswith("{")]

    def stderr(self) -> str:
        return self.err.read_text()[-4000:] if self.err.exists() else ""

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)


def kill_when(child: Child, work: Path, threshold: int) -> int:
    """SIGKILLs the child once its journal holds ``threshold`` parts; returns the count seen."""
    deadline = time.monotonic() + RUN_TIMEOUT
    try:
        while time.monotonic() < deadline:
            seen = journal_parts(read_journal(work))
            if seen >= threshold:
                child.kill()
                return seen
            if child.proc.poll() is not None:
                pytest.fail(
                    f"the save ended (exit {child.proc.returncode}) before its journal held "
                    f"{threshold} parts (seed {SEED}); stderr:\n{child.stderr()}"
                )
            time.sleep(0.01)
        pytest.fail(f"the journal never held {threshold} parts in {RUN_TIMEOUT} s")
    finally:
        child.kill()


def run_with_kills(local_oci, client, folder: Path, uri: str, work: Path, kills: int, tmp: Path):
    """Runs the save ``kills`` times, SIGKILLing each run at a random number of parts, then
    once to the end; returns the runs (the last one finished)."""
    rng = random.Random(SEED)
    estimate = math.ceil(artifact_size_estimate(str(folder)) / PART)
    thresholds = sorted(rng.sample(range(2, int(estimate * 0.6)), kills))
    runs: list[Run] = []
    for index in range(kills + 1):
        journal = read_journal(work)
        run = Run(before=held_parts(client, journal))
        requests0, faulted0 = applied(local_oci)
        child = Child(folder, uri, tmp, index)
        if index < kills:
            # The journal lists only parts the service holds: past len(before), a part is new.
            target = max(thresholds[index], len(run.before) + 1)
            run.killed_at = kill_when(child, work, target)
            time.sleep(0.5)  # requests the service was still serving end (stored or not)
        else:
            try:
                child.proc.wait(RUN_TIMEOUT)
            finally:
                child.kill()
            assert child.proc.returncode == 0, child.stderr()
        journal = read_journal(work)
        run.after = held_parts(client, journal)
        run.upload_id = (journal or {}).get("upload_id")
        requests1, faulted1 = applied(local_oci)
        run.requests, run.faulted = requests1 - requests0, faulted1 - faulted0
        run.events = child.events()
        runs.append(run)
    return runs


# --- what must hold -----------------------------------------------------------------------------


def check_resumed(runs: list[Run], *, faults: bool) -> None:
    context = f"seed {SEED}; runs: {[(len(r.before), len(r.after), r.requests) for r in runs]}"
    killed, last = runs[:-1], runs[-1]
    upload_ids = {r.upload_id for r in killed}
    assert len(upload_ids) == 1 and None not in upload_ids, f"one multipart upload: {context}"
    for run in killed:
        assert run.before <= run.after, f"a kill lost stored parts: {context}"
        assert len(run.after) > len(run.before), f"a run made no progress: {context}"
        new = len(run.after - run.before)
        # Requests beyond the new parts: those in flight at the kill (at most one per worker),
        # those an injected fault hit, and at most one stored part sent again.
        assert run.requests - run.faulted <= new + WORKERS + 1, context
    upload = last.event("upload")
    total = upload["parts_total"]
    assert total == math.ceil(upload["size"] / PART) > BIG_MIB, upload
    assert upload["upload_id"] == killed[-1].upload_id, "the last run started a new upload"
    remaining = total - len(last.before)
    assert upload["parts_sent"] <= remaining + 1, (upload, remaining, context)
    assert upload["parts_sent"] + upload["parts_reused"] == total, upload
    assert upload["parts_reused"] >= len(last.before) - 1, (upload, context)
    if faults:
        assert last.requests - last.faulted <= upload["parts_sent"] + 1, (upload, context)
    else:
        assert (last.requests, upload["retries"]) == (upload["parts_sent"], 0), (upload, context)
    saved = last.event("saved")
    assert saved["uploaded"] and not saved["created"], saved  # the first run created it


def check_converged(ds, client, namespace, bucket, compartment, work, folder, runs, tmp_path):
    model_id = runs[-1].event("saved")["model_id"]
    models = ds.list_models(compartment_id=compartment).data
    assert [(m.id, m.lifecycle_state) for m in models] == [(model_id, "ACTIVE")]
    assert SAVE_TAG in models[0].freeform_tags
    assert client.list_multipart_uploads(namespace, bucket).data == []
    assert client.list_objects(namespace, bucket).data.objects == []
    assert sorted(p.name for p in work.iterdir()) == [], "zip or journal left in the work dir"

    back = tmp_path / "back"
    fetch_artifact(model_id, str(back), bucket_uri=f"oci://{bucket}@{namespace}/downloads/")
    assert same_bytes(str(back / "weights.bin"), str(folder / "weights.bin"))
    for name in ("score.py", "runtime.yaml", "model.pkl"):
        assert same_bytes(str(back / name), str(folder / name)), name
    assert client.list_objects(namespace, bucket).data.objects == []


@pytest.mark.slow
def test_save_killed_five_times_resumes_and_converges(
    local_faults, catalog_env, ds, client, namespace, bucket, large_artifact, work_dir, tmp_path
):
    local_faults.set_faults({"operation": "upload_part", "latency_ms": UPLOAD_PART_LATENCY_MS})
    uri = f"oci://{bucket}@{namespace}/staging/"
    runs = run_with_kills(local_faults, client, large_artifact, uri, work_dir, 5, tmp_path)
    local_faults.clear_faults()
    check_resumed(runs, faults=False)
    check_converged(
        ds, client, namespace, bucket, catalog_env[0], work_dir, large_artifact, runs, tmp_path
    )


@pytest.mark.slow
def test_save_killed_under_injected_faults_resumes_and_converges(
    local_faults, catalog_env, ds, client, namespace, bucket, large_artifact, work_dir, tmp_path
):
    local_faults.set_faults({"operation": "upload_part", "latency_ms": 60}, *FAULTS)
    try:
        uri = f"oci://{bucket}@{namespace}/staging/"
        runs = run_with_kills(local_faults, client, large_artifact, uri, work_dir, 2, tmp_path)
        check_resumed(runs, faults=True)
        # The artifact also comes back through the faults (get_object is faulted too).
        check_converged(
            ds, client, namespace, bucket, catalog_env[0], work_dir, large_artifact, runs, tmp_path
        )
        hits = applied(local_faults)[1]
    finally:
        local_faults.clear_faults()
    assert hits >= 3, f"only {hits} faults were injected"
