"""Benchmark: ocimodel's save (and fetch) of a large artifact against the straightforward way
with the SDK's own pieces, on the local OCI service.

The artifact is a prepared iris model plus ``--size-mib`` MiB of incompressible bytes
(``weights.bin``, os.urandom). The local service runs as a subprocess; every measured operation
runs in a fresh child process (alternating sides), so neither warms the other's interpreter or
counts the other's memory; each child reports its seconds (from the first call of the operation
to its end: interpreter start, imports and one warm-up request excluded on both sides; the
"process s" column is the child's whole life), its peak resident memory (VmHWM, the whole
process) and what it held before the operation (VmRSS), and the seconds of each phase.

1. Save, through Object Storage (``bucket_uri``):
   - ocimodel: ``save_model(folder, SaveSpec(bucket_uri=...))`` with its defaults (checks,
     create, zip-while-uploading, export, wait, temporary object removed);
   - the straightforward way: ``create_model`` with the same details, the folder zipped with
     ``zipfile.ZIP_DEFLATED`` into a temporary file, ``UploadManager(client).upload_file`` with
     its defaults, ``export_model_artifact``, ``oci.wait_until(client,
     client.get_work_request(id), 'status', 'SUCCEEDED')`` with its defaults, the temporary
     object deleted.
2. Resume: an ocimodel save SIGKILLed once its upload journal holds half the parts, then run
   again; the re-run's seconds against a full save's.
3. Download (fetch) of the saved artifact:
   - ocimodel: ``fetch_artifact(model_id, folder, bucket_uri=...)`` (import, wait, parallel
     ranged download, safe extraction, manifest check, temporary object removed);
   - the straightforward way: ``import_model_artifact``, ``oci.wait_until`` on the work
     request, ``get_object`` streamed to a file in 1 MiB chunks, the temporary object deleted
     (no extraction: it does less than fetch_artifact).

    python benchmarks/save.py [--size-mib 1024] [--runs 1] [--dir DIR]

Targets: ocimodel's save <= 0.5x the straightforward way's time; its peak RSS <= 256 MB; a
resumed save after a kill at 50% <= 55% of a full save. The fetch has no target: its ratio is
printed for information (fetch_artifact also extracts and checks the zip, the other does not).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
import zipfile
from pathlib import Path

MIB = 1024 * 1024
SLUG = "generalml_p311_cpu_x86_64_v1"
SAVE_RATIO_TARGET = 0.5
RSS_TARGET_MB = 256.0
RESUME_TARGET = 0.55


def status_mb(field: str) -> float:
    """A ``/proc/self/status`` memory field (VmRSS, VmHWM) in MB."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return 0.0


# --- the children: one measured operation each -------------------------------------------------


class _Phases:
    """Seconds spent in named phases of an operation (wrapping the functions it calls)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.extra: dict[str, object] = {}
        self.t0 = time.perf_counter()
        self.rss_before = 0.0

    def begin(self) -> None:
        """The measured operation starts now (imports and warm-up calls are done)."""
        self.rss_before = status_mb("VmRSS")
        self.t0 = time.perf_counter()

    def wrap(self, module, name: str, label: str) -> None:
        real = getattr(module, name)

        def timed(*args, **kwargs):
            start = time.perf_counter()
            try:
                return real(*args, **kwargs)
            finally:
                self.seconds[label] = self.seconds.get(label, 0.0) + time.perf_counter() - start

        setattr(module, name, timed)

    def mark(self, label: str, start: float) -> None:
        self.seconds[label] = time.perf_counter() - start


def _sdk_clients():
    import oci

    config = oci.config.from_file(os.environ["OCI_CONFIG_FILE"], os.environ["OCI_CONFIG_PROFILE"])
    endpoint = os.environ["OCIMODEL_SERVICE_ENDPOINT"]
    ds = oci.data_science.DataScienceClient(config, service_endpoint=endpoint)
    storage = oci.object_storage.ObjectStorageClient(config, service_endpoint=endpoint)
    return config, ds, storage


def _metadata_items(items: list[dict]) -> list:
    from oci.data_science.models import Metadata

    return [
        Metadata(
            key=i.get("key"),
            value=i.get("value"),
            description=i.get("description"),
            category=i.get("category"),
        )
        for i in items
    ]


def sdk_save(args: dict, phases: _Phases) -> dict:
    """The straightforward way: create, zip (deflate), UploadManager, export, wait_until."""
    import oci
    from oci.data_science.models import (
        ArtifactExportDetailsObjectStorage,
        CreateModelDetails,
        ExportModelArtifactDetails,
    )
    from oci.object_storage import UploadManager

    config, ds, storage = _sdk_clients()
    ds.list_projects(compartment_id=args["compartment"], limit=1)  # warm, as ocimodel's below
    folder, details = args["folder"], args["details"]
    phases.begin()
    t0 = time.perf_counter()
    model = ds.create_model(
        CreateModelDetails(
            compartment_id=details["compartment_id"],
            project_id=details["project_id"],
            display_name=details["display_name"],
            freeform_tags=details["freeform_tags"],
            custom_metadata_list=_metadata_items(details["custom_metadata_list"]),
            defined_metadata_list=_metadata_items(details["defined_metadata_list"]),
            input_schema=details["input_schema"],
            output_schema=details["output_schema"],
        )
    ).data
    phases.mark("create", t0)
    start = time.perf_counter()
    scratch = tempfile.mkdtemp(prefix="sdk-save-", dir=args["work"])
    zip_path = os.path.join(scratch, "artifact.zip")
    with zipfile.ZipFile(zip_path, "w", zipfile.ZIP_DEFLATED) as zf:
        for root, dirs, files in os.walk(folder):
            dirs.sort()
            for name in sorted(files):
                path = os.path.join(root, name)
                zf.write(path, os.path.relpath(path, folder))
    phases.mark("zip (deflate)", start)
    start = time.perf_counter()
    name = f"sdk-staging/{model.id}.zip"
    UploadManager(storage).upload_file(args["namespace"], args["bucket"], name, zip_path)
    phases.mark("upload", start)
    start = time.perf_counter()
    response = ds.export_model_artifact(
        model.id,
        ExportModelArtifactDetails(
            artifact_export_details=ArtifactExportDetailsObjectStorage(
                namespace=args["namespace"],
                source_bucket=args["bucket"],
                source_object_name=name,
                source_region=config["region"],
            )
        ),
    )
    wr_id = response.headers["opc-work-request-id"]
    oci.wait_until(ds, ds.get_work_request(wr_id), "status", "SUCCEEDED")
    phases.mark("export + wait", start)
    start = time.perf_counter()
    storage.delete_object(args["namespace"], args["bucket"], name)
    shutil.rmtree(scratch)
    phases.mark("cleanup", start)
    return {"model_id": model.id}


def ocimodel_save(args: dict, phases: _Phases) -> dict:
    """ocimodel's save with its defaults; the phases are timed by wrapping what it calls."""
    import ocimodel.introspect  # noqa: F401 - imported before the clock starts, as the SDK's
    import ocimodel.verify  # noqa: F401
    from ocimodel import save as save_module
    from ocimodel.artifact import uploader as uploader_module
    from ocimodel.oci import catalog, multipart, version_sets
    from ocimodel.oci.auth import resolve_auth

    phases.wrap(save_module, "check_before_save", "checks (introspect, load_model)")
    phases.wrap(version_sets, "resolve_version_set_id", "version set")
    phases.wrap(save_module, "save_identity", "identity (stat files)")
    phases.wrap(save_module, "_uploader", "bucket checks")
    phases.wrap(catalog, "find_models_by_tag", "find by tag")
    phases.wrap(catalog, "create_model", "create")
    phases.wrap(catalog, "ensure_provenance", "provenance")
    phases.wrap(catalog, "get_model", "get model")
    phases.wrap(catalog, "export_model_artifact", "export + wait")
    phases.wrap(multipart, "upload_file", "zip + upload (overlapped)")
    timed_upload = multipart.upload_file

    def upload_file(*a, **kw):
        result = timed_upload(*a, **kw)
        phases.extra["upload"] = {
            k: getattr(result, k) for k in ("parts_total", "parts_sent", "parts_reused")
        }
        return result

    multipart.upload_file = upload_file
    phases.wrap(multipart, "delete_object", "cleanup")
    real_zip = uploader_module.start_zip_into

    def start_zip_into(*a, **kw):
        start = time.perf_counter()
        job = real_zip(*a, **kw)
        threading.Thread(
            target=lambda: (job.done.wait(), phases.mark("  of which zip", start)), daemon=True
        ).start()
        return job

    uploader_module.start_zip_into = start_zip_into
    resolve_auth(None).client("data_science").list_projects(
        compartment_id=args["compartment"], limit=1
    )
    spec = save_module.SaveSpec(display_name=args["display_name"], bucket_uri=args["bucket_uri"])
    phases.begin()
    saved = save_module.save_model(args["folder"], spec)
    return {"model_id": saved.model_id, "created": saved.created}


def sdk_fetch(args: dict, phases: _Phases) -> dict:
    """The straightforward download: import, wait_until, get_object streamed to a file."""
    import oci
    from oci.data_science.models import (
        ArtifactImportDetailsObjectStorage,
        ImportModelArtifactDetails,
    )

    config, ds, storage = _sdk_clients()
    storage.get_namespace()
    name = f"sdk-downloads/{args['model_id']}.zip"
    phases.begin()
    start = time.perf_counter()
    response = ds.import_model_artifact(
        args["model_id"],
        ImportModelArtifactDetails(
            artifact_import_details=ArtifactImportDetailsObjectStorage(
                namespace=args["namespace"],
                destination_bucket=args["bucket"],
                destination_object_name=name,
                destination_region=config["region"],
            )
        ),
    )
    wr_id = response.headers["opc-work-request-id"]
    oci.wait_until(ds, ds.get_work_request(wr_id), "status", "SUCCEEDED")
    phases.mark("import + wait", start)
    start = time.perf_counter()
    resp = storage.get_object(args["namespace"], args["bucket"], name)
    with open(args["path"], "wb") as fh:
        for chunk in resp.data.raw.stream(MIB, decode_content=False):
            fh.write(chunk)
    phases.mark("download", start)
    start = time.perf_counter()
    storage.delete_object(args["namespace"], args["bucket"], name)
    phases.mark("cleanup", start)
    return {}


def ocimodel_fetch(args: dict, phases: _Phases) -> dict:
    from ocimodel.artifact import downloader
    from ocimodel.oci import catalog
    from ocimodel.oci.auth import resolve_auth

    phases.wrap(catalog, "import_model_artifact", "import + wait")
    phases.wrap(downloader, "download_file", "download")
    phases.wrap(downloader, "place_artifact", "extract + verify")
    phases.wrap(downloader, "delete_object", "cleanup")
    resolve_auth(None).client("object_storage").get_namespace()
    phases.begin()
    downloader.fetch_artifact(args["model_id"], args["path"], bucket_uri=args["bucket_uri"])
    return {}


CHILD_OPS = {
    "sdk_save": sdk_save,
    "ocimodel_save": ocimodel_save,
    "sdk_fetch": sdk_fetch,
    "ocimodel_fetch": ocimodel_fetch,
}


def child(op: str, args: dict) -> dict:
    phases = _Phases()
    out = CHILD_OPS[op](args, phases)
    seconds = time.perf_counter() - phases.t0
    if phases.seconds:
        timed = sum(v for k, v in phases.seconds.items() if not k.startswith(" "))
        phases.seconds["other"] = seconds - timed
    return {
        **out,
        "seconds": seconds,
        "rss_before_mb": phases.rss_before,
        "peak_mb": status_mb("VmHWM"),
        "phases": phases.seconds,
        **phases.extra,
    }


def child_cmd(op: str, args: dict) -> list[str]:
    return [sys.executable, __file__, "--child", op, json.dumps(args)]


def run_child(env: dict, op: str, args: dict) -> dict:
    """Runs ``op`` in a fresh process after flushing dirty pages; returns what it measured."""
    os.sync()
    wall = time.perf_counter()
    proc = subprocess.run(child_cmd(op, args), env=env, capture_output=True, text=True)
    wall = time.perf_counter() - wall
    if proc.returncode != 0:
        raise RuntimeError(f"{op} failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result["process_seconds"] = wall
    return result


# --- the parent ---------------------------------------------------------------------------------


def make_artifact(folder: Path, size_mib: int) -> None:
    """A prepared iris artifact plus ``size_mib`` MiB of os.urandom in ``weights.bin``."""
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from ocimodel.pipeline import prepare_artifact

    X, y = load_iris(return_X_y=True, as_frame=True)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=300)).fit(X, y)
    prepare_artifact(model, str(folder), inference_conda_env=SLUG, X_sample=X.head(20))
    with open(folder / "weights.bin", "wb") as fh:
        for _ in range(size_mib):
            fh.write(os.urandom(MIB))


def model_details(folder: Path, compartment: str, project: str, display_name: str) -> dict:
    """The details ocimodel's save gives the model (its metadata, schemas and tag)."""
    from ocimodel.metadata.limits import catalog_metadata_payload
    from ocimodel.metadata.prepared import read_metadata

    metadata = read_metadata(str(folder))
    payload = catalog_metadata_payload(metadata.custom, metadata.taxonomy)
    inputs, outputs = metadata.catalog_schemas()
    return {
        "compartment_id": compartment,
        "project_id": project,
        "display_name": display_name,
        "freeform_tags": {"ocimodel-save-id": uuid.uuid4().hex},
        "custom_metadata_list": payload["customMetadataList"],
        "defined_metadata_list": payload["definedMetadataList"],
        "input_schema": inputs,
        "output_schema": outputs,
    }


def journal_parts(work: Path) -> tuple[int, dict | None]:
    for path in work.glob("*.upload.json"):
        try:
            doc = json.loads(path.read_text())
        except (OSError, ValueError):
            return 0, None
        return len(doc.get("parts") or {}), doc
    return 0, None


def kill_at_half(env: dict, args: dict, work: Path, total_parts: int) -> dict:
    """Starts an ocimodel save and SIGKILLs it once its journal holds half the parts."""
    half = math.ceil(total_parts / 2)
    os.sync()
    proc = subprocess.Popen(
        child_cmd("ocimodel_save", args),
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    t0 = time.perf_counter()
    try:
        while True:
            parts, doc = journal_parts(work)
            if parts >= half:
                os.kill(proc.pid, signal.SIGKILL)
                break
            if proc.poll() is not None:
                raise RuntimeError(
                    f"the save ended before half its parts were in:\n{proc.stderr.read()[-4000:]}"
                )
            time.sleep(0.005)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        proc.stderr.close()
    return {"seconds_before_kill": time.perf_counter() - t0, "parts_at_kill": parts, "doc": doc}


def check_artifact(ds, model_id: str, expected_min: int) -> int:
    size = int(ds.head_model_artifact(model_id).headers["content-length"])
    if size < expected_min:
        raise RuntimeError(f"model {model_id} has an artifact of {size} bytes only")
    return size


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--dir", default=None, help="scratch directory (default: a temp dir)")
    parser.add_argument("--child", nargs=2, metavar=("OP", "ARGS"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child[0], json.loads(args.child[1]))))
        return 0

    import oci
    from oci.data_science.models import CreateProjectDetails
    from oci.object_storage.models import CreateBucketDetails

    from ocimodel.files import same_bytes
    from ocimodel.local.server import LocalOCI
    from ocimodel.oci.multipart import choose_part_size

    scratch = Path(tempfile.mkdtemp(prefix="bench-save-", dir=args.dir))
    results: dict[str, list[dict]] = {}
    resumes: list[dict] = []
    try:
        with LocalOCI(data_dir=scratch / "service", mode="subprocess") as svc:
            env = {**os.environ, **svc.env(), "NO_PROXY": "127.0.0.1,localhost"}
            os.environ.update(svc.env())
            folder = scratch / "artifact"
            t0 = time.perf_counter()
            make_artifact(folder, args.size_mib)
            print(
                f"prepared the artifact (+{args.size_mib} MiB) in {time.perf_counter() - t0:.1f} s"
            )
            storage = svc.client(oci.object_storage.ObjectStorageClient)
            ds = svc.client(oci.data_science.DataScienceClient)
            namespace = storage.get_namespace().data
            bucket = f"bench-{uuid.uuid4().hex[:8]}"
            storage.create_bucket(
                namespace, CreateBucketDetails(name=bucket, compartment_id=svc.config["tenancy"])
            )
            compartment = f"ocid1.compartment.oc1..{uuid.uuid4().hex}"
            project = ds.create_project(CreateProjectDetails(compartment_id=compartment)).data.id
            env.update({"PROJECT_COMPARTMENT_OCID": compartment, "PROJECT_OCID": project})
            bucket_uri = f"oci://{bucket}@{namespace}/staging/"
            min_size = args.size_mib * MIB
            counter = iter(range(10_000))

            def ocimodel_save(label: str) -> dict:
                work = scratch / f"work-{next(counter)}"
                work.mkdir()
                run_env = {**env, "OCIMODEL_WORK_DIR": str(work)}
                res = run_child(
                    run_env,
                    "ocimodel_save",
                    {
                        "folder": str(folder),
                        "bucket_uri": bucket_uri,
                        "display_name": f"ocimodel-{uuid.uuid4().hex[:8]}",
                        "compartment": compartment,
                    },
                )
                check_artifact(ds, res["model_id"], min_size)
                shutil.rmtree(work)
                results.setdefault(label, []).append(res)
                return res

            def sdk_save(label: str) -> dict:
                name = f"sdk-{uuid.uuid4().hex[:8]}"
                res = run_child(
                    env,
                    "sdk_save",
                    {
                        "folder": str(folder),
                        "details": model_details(folder, compartment, project, name),
                        "namespace": namespace,
                        "bucket": bucket,
                        "compartment": compartment,
                        "work": str(scratch),
                    },
                )
                check_artifact(ds, res["model_id"], min_size)
                results.setdefault(label, []).append(res)
                return res

            for _ in range(args.runs):
                sdk_save("save: SDK (deflate zip, UploadManager, wait_until)")
                saved = ocimodel_save("save: ocimodel save_model")

            # 2. resume after a kill at 50% of the parts
            zip_bound = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
            part = choose_part_size(zip_bound)
            total_parts = math.ceil(zip_bound / part)
            for _ in range(args.runs):
                work = scratch / f"work-{next(counter)}"
                work.mkdir()
                run_env = {**env, "OCIMODEL_WORK_DIR": str(work)}
                child_args = {
                    "folder": str(folder),
                    "bucket_uri": bucket_uri,
                    "display_name": f"resumed-{uuid.uuid4().hex[:8]}",
                    "compartment": compartment,
                }
                killed = kill_at_half(run_env, child_args, work, total_parts)
                loc = killed["doc"]["uri"].split("/", 3)[3] if killed["doc"] else None
                held = (
                    len(
                        storage.list_multipart_upload_parts(
                            namespace, bucket, loc, killed["doc"]["upload_id"]
                        ).data
                    )
                    if loc
                    else 0
                )
                res = run_child(run_env, "ocimodel_save", child_args)
                check_artifact(ds, res["model_id"], min_size)
                shutil.rmtree(work)
                res.update(killed_after=killed["seconds_before_kill"], held=held, total=total_parts)
                resumes.append(res)
                results.setdefault("save: ocimodel, re-run after a kill at 50%", []).append(res)

            # 3. download
            model_id = saved["model_id"]
            for _ in range(args.runs):
                out = scratch / "sdk-download.zip"
                res = run_child(
                    env,
                    "sdk_fetch",
                    {
                        "model_id": model_id,
                        "namespace": namespace,
                        "bucket": bucket,
                        "path": str(out),
                    },
                )
                with zipfile.ZipFile(out) as zf:
                    if zf.getinfo("weights.bin").file_size != min_size:
                        raise RuntimeError("the SDK download holds another weights.bin")
                out.unlink()
                results.setdefault("fetch: SDK (import, wait_until, get_object)", []).append(res)
                target = scratch / "fetched"
                res = run_child(
                    env,
                    "ocimodel_fetch",
                    {
                        "model_id": model_id,
                        "path": str(target),
                        "bucket_uri": f"oci://{bucket}@{namespace}/downloads/",
                    },
                )
                if not same_bytes(str(target / "weights.bin"), str(folder / "weights.bin")):
                    raise RuntimeError("fetch_artifact wrote another weights.bin")
                shutil.rmtree(target)
                results.setdefault("fetch: ocimodel fetch_artifact", []).append(res)
            left = storage.list_objects(namespace, bucket).data.objects
            if left:
                raise RuntimeError(f"objects left in the bucket: {[o.name for o in left]}")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    return report(results, resumes, args)


def report(results: dict[str, list[dict]], resumes: list[dict], args) -> int:
    size_mb = args.size_mib * MIB / 1e6
    print(
        f"\nartifact: iris model + {args.size_mib} MiB of random bytes; local OCI service "
        f"(subprocess); medians of {args.runs} run(s), each in a fresh process"
    )
    print(
        f"{'operation':<52}{'seconds':>9}{'MB/s':>7}{'peak RSS MB':>13}{'(extra)':>9}"
        f"{'process s':>11}   runs (s)"
    )
    med: dict[str, dict] = {}
    for label, runs in results.items():
        row = {
            "seconds": statistics.median(r["seconds"] for r in runs),
            "peak": statistics.median(r["peak_mb"] for r in runs),
            "extra": statistics.median(r["peak_mb"] - r["rss_before_mb"] for r in runs),
            "process": statistics.median(r["process_seconds"] for r in runs),
        }
        med[label] = row
        print(
            f"{label:<52}{row['seconds']:>9.2f}{size_mb / row['seconds']:>7.0f}"
            f"{row['peak']:>13.0f}{row['extra']:>9.0f}{row['process']:>11.2f}   "
            + ", ".join(f"{r['seconds']:.2f}" for r in runs)
        )
        phases: dict[str, list[float]] = {}
        for r in runs:
            for name, secs in r["phases"].items():
                phases.setdefault(name, []).append(secs)
        for name, values in phases.items():
            print(f"    {name:<48}{statistics.median(values):>9.2f}")
    sdk = med["save: SDK (deflate zip, UploadManager, wait_until)"]["seconds"]
    ours = med["save: ocimodel save_model"]["seconds"]
    ratio = ours / sdk
    peak = max(r["peak_mb"] for r in results["save: ocimodel save_model"])
    resumed = med["save: ocimodel, re-run after a kill at 50%"]["seconds"] / ours
    fetch_ratio = (
        med["fetch: ocimodel fetch_artifact"]["seconds"]
        / med["fetch: SDK (import, wait_until, get_object)"]["seconds"]
    )
    print()
    for r in resumes:
        up = r.get("upload", {})
        print(
            f"kill at 50%: killed {r['killed_after']:.2f} s after the child started, the service "
            f"held {r['held']} of {r['total']} parts; the re-run sent {up.get('parts_sent')}, "
            f"reused {up.get('parts_reused')}, took {r['seconds']:.2f} s"
        )
    transfer = sum(
        statistics.median(r["phases"][k] for r in results["fetch: ocimodel fetch_artifact"])
        for k in ("import + wait", "download")
    )
    sdk_fetch = med["fetch: SDK (import, wait_until, get_object)"]["seconds"]
    checks = [
        (f"ocimodel save {ratio:.2f}x the straightforward way's time <= {SAVE_RATIO_TARGET}x",
         ratio <= SAVE_RATIO_TARGET),
        (f"ocimodel save peak RSS {peak:.0f} MB <= {RSS_TARGET_MB:.0f} MB", peak <= RSS_TARGET_MB),
        (f"re-run after a kill at 50%: {resumed:.0%} of a full save <= {RESUME_TARGET:.0%}",
         resumed <= RESUME_TARGET),
    ]  # fmt: skip
    print()
    for text, ok in checks:
        print(f"[{'PASS' if ok else 'FAIL'}] {text}")
    print(
        f"[INFO] ocimodel fetch_artifact {fetch_ratio:.2f}x the straightforward download's time; "
        f"its import + download alone {transfer / sdk_fetch:.2f}x (the rest extracts and checks)"
    )
    return 0 if all(ok for _, ok in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
