"""Benchmark: ocimodel's multipart upload and ranged download against the SDK's own, on the
local OCI service.

A file of incompressible bytes (``os.urandom`` in 1 MiB chunks) is sent to the local service
(a subprocess, as a user would run it) and fetched back:

- upload: ``UploadManager.upload_file`` with its defaults (128 MiB parts, 3 in parallel) against
  :func:`ocimodel.oci.multipart.upload_file` with its defaults;
- download: the SDK's ``get_object`` streamed to a file in 1 MiB chunks against
  :func:`ocimodel.oci.download.download_file`.

Every measured operation runs in a fresh child process, alternating between the two sides, so
neither warms the other's caches or counts the other's memory; each child reports its wall
time and its peak resident memory (VmHWM) beyond what it held before the operation. The table
shows medians over ``--runs`` and the ratios. ``--part-sizes`` adds ocimodel uploads at other
part sizes (the default part size was chosen with it).

    python benchmarks/transfer.py [--size-mib 1024] [--runs 3] [--part-sizes 32,64,128] [--dir DIR]

Targets: ocimodel's upload and download at least as fast as the SDK's; its upload's extra peak
RSS under 256 MB.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

MIB = 1024 * 1024
RSS_TARGET_MB = 256.0


def status_mb(field: str) -> float:
    """A ``/proc/self/status`` memory field (VmRSS, VmHWM) in MB."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return 0.0


def make_file(path: Path, size_mib: int) -> None:
    """``size_mib`` MiB of os.urandom, written 1 MiB at a time."""
    with open(path, "wb") as fh:
        for _ in range(size_mib):
            fh.write(os.urandom(MIB))


# --- the child: one measured operation ----------------------------------------------------------


def _sdk_client(endpoint: str):
    import oci

    config = oci.config.from_file(os.environ["OCI_CONFIG_FILE"], os.environ["OCI_CONFIG_PROFILE"])
    return oci.object_storage.ObjectStorageClient(config, service_endpoint=endpoint)


def child(op: str, args: dict) -> dict:
    """Runs one operation; returns its seconds and memory."""
    endpoint = os.environ["OCIMODEL_SERVICE_ENDPOINT"]
    namespace, bucket, name, path = args["namespace"], args["bucket"], args["name"], args["path"]
    uri = f"oci://{bucket}@{namespace}/{name}"
    if op in ("sdk_upload", "sdk_download"):
        from oci.object_storage import UploadManager

        client = _sdk_client(endpoint)
        client.get_namespace()  # connection and signer warm, as for ocimodel below
    else:
        from ocimodel.oci.auth import resolve_auth
        from ocimodel.oci.download import download_file
        from ocimodel.oci.multipart import no_retry_client, upload_file

        auth = resolve_auth(None)
        no_retry_client(auth).get_namespace()
    before = status_mb("VmRSS")
    t0 = time.perf_counter()
    if op == "sdk_upload":
        UploadManager(client, allow_parallel_uploads=True).upload_file(
            namespace, bucket, name, path
        )
    elif op == "ocimodel_upload":
        upload_file(path, uri, auth=auth, part_size=args.get("part_size"))
    elif op == "sdk_download":
        resp = client.get_object(namespace, bucket, name)
        with open(path, "wb") as fh:
            for chunk in resp.data.raw.stream(MIB, decode_content=False):
                fh.write(chunk)
    elif op == "ocimodel_download":
        download_file(uri, path, auth=auth)
    else:
        raise SystemExit(f"unknown operation {op!r}")
    seconds = time.perf_counter() - t0
    return {"seconds": seconds, "rss_before_mb": before, "peak_mb": status_mb("VmHWM")}


def run_child(env: dict, op: str, **args) -> dict:
    """Runs ``op`` in a fresh process after flushing dirty pages (so the kernel's write-back of
    an earlier run does not land in this one); returns what it measured."""
    os.sync()
    out = subprocess.run(
        [sys.executable, __file__, "--child", op, json.dumps(args)],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


# --- the parent ---------------------------------------------------------------------------------


def default_dir(args: argparse.Namespace) -> str | None:
    """/dev/shm when it holds the file, the stored objects and a download with room to spare."""
    shm = "/dev/shm"
    if os.path.isdir(shm) and shutil.disk_usage(shm).free > 6 * args.size_mib * MIB:
        return shm
    return None


def same_file(a: Path, b: Path) -> bool:
    from ocimodel.files import same_bytes

    return same_bytes(str(a), str(b))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--part-sizes", default="", help="extra ocimodel part sizes, MiB: 32,128")
    parser.add_argument(
        "--dir",
        default=None,
        help="scratch directory (default: /dev/shm when it has room, so disk write-back does "
        "not add noise; else a temp dir)",
    )
    parser.add_argument("--warmup", type=int, default=1, help="unmeasured rounds first")
    parser.add_argument("--child", nargs=2, metavar=("OP", "ARGS"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child[0], json.loads(args.child[1]))))
        return 0

    import oci
    from oci.object_storage.models import CreateBucketDetails

    from ocimodel.local.server import LocalOCI

    scratch = Path(tempfile.mkdtemp(prefix="bench-transfer-", dir=args.dir or default_dir(args)))
    results: dict[str, list[dict]] = {}
    try:
        src = scratch / "upload.bin"
        t0 = time.perf_counter()
        make_file(src, args.size_mib)
        print(f"wrote {args.size_mib} MiB of random bytes in {time.perf_counter() - t0:.1f} s")
        with LocalOCI(data_dir=scratch / "service", mode="subprocess") as svc:
            env = {**os.environ, **svc.env(), "NO_PROXY": "127.0.0.1,localhost"}
            client = svc.client(oci.object_storage.ObjectStorageClient)
            namespace = client.get_namespace().data
            bucket = f"bench-{uuid.uuid4().hex[:8]}"
            client.create_bucket(
                namespace, CreateBucketDetails(name=bucket, compartment_id=svc.config["tenancy"])
            )
            common = {"namespace": namespace, "bucket": bucket}
            extra = [int(v) for v in args.part_sizes.split(",") if v.strip()]

            def upload(label: str, op: str, part_size: int | None = None) -> None:
                name = f"{op}-{uuid.uuid4().hex[:8]}"
                res = run_child(env, op, name=name, path=str(src), part_size=part_size, **common)
                head = client.head_object(namespace, bucket, name)
                assert int(head.headers["content-length"]) == src.stat().st_size
                client.delete_object(namespace, bucket, name)
                Path(str(src) + ".upload.json").unlink(missing_ok=True)
                results.setdefault(label, []).append(res)

            def download(label: str, op: str, name: str) -> None:
                out = scratch / f"{op}.out"
                res = run_child(env, op, name=name, path=str(out), **common)
                if not same_file(src, out):
                    raise RuntimeError(f"{op} wrote other bytes than were uploaded")
                out.unlink()
                results.setdefault(label, []).append(res)

            for _ in range(args.warmup):
                upload("warm-up", "sdk_upload")
                upload("warm-up", "ocimodel_upload")
            for _ in range(args.runs):
                upload("upload: SDK UploadManager", "sdk_upload")
                upload("upload: ocimodel upload_file", "ocimodel_upload")
                for mib in extra:
                    upload(f"upload: ocimodel, {mib} MiB parts", "ocimodel_upload", mib * MIB)
            src_name = "download-source"
            run_child(
                env, "ocimodel_upload", name=src_name, path=str(src), part_size=None, **common
            )
            Path(str(src) + ".upload.json").unlink(missing_ok=True)
            for _ in range(args.warmup):
                download("warm-up", "sdk_download", src_name)
                download("warm-up", "ocimodel_download", src_name)
            results.pop("warm-up", None)
            for _ in range(args.runs):
                download("download: SDK get_object stream", "sdk_download", src_name)
                download("download: ocimodel download_file", "ocimodel_download", src_name)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    size_mb = args.size_mib * MIB / 1e6
    print(f"\n{args.size_mib} MiB of random bytes in {scratch.parent}, local OCI service "
          f"(subprocess), {os.cpu_count()} CPUs, medians of {args.runs} runs after "
          f"{args.warmup} warm-up, each in a fresh process")  # fmt: skip
    print(f"{'operation':<40}{'seconds':>9}{'MB/s':>8}{'peak RSS MB':>13}{'(extra)':>9}   runs (s)")
    medians = {}
    for label, runs in results.items():
        secs = statistics.median(r["seconds"] for r in runs)
        extra_rss = statistics.median(r["peak_mb"] - r["rss_before_mb"] for r in runs)
        peak = statistics.median(r["peak_mb"] for r in runs)
        medians[label] = (secs, extra_rss)
        shown = ", ".join(f"{r['seconds']:.2f}" for r in runs)
        print(
            f"{label:<40}{secs:>9.2f}{size_mb / secs:>8.0f}{peak:>13.0f}{extra_rss:>9.0f}   {shown}"
        )
    up_ratio = medians["upload: SDK UploadManager"][0] / medians["upload: ocimodel upload_file"][0]
    down_ratio = (
        medians["download: SDK get_object stream"][0]
        / medians["download: ocimodel download_file"][0]
    )
    rss = max(r["peak_mb"] - r["rss_before_mb"] for r in results["upload: ocimodel upload_file"])
    print(f"\nupload speed-up (SDK time / ocimodel time):   {up_ratio:.2f}x")
    print(f"download speed-up (SDK time / ocimodel time): {down_ratio:.2f}x")
    checks = [
        (f"ocimodel upload {up_ratio:.2f}x the SDK's speed >= 1x", up_ratio >= 1.0),
        (f"ocimodel download {down_ratio:.2f}x the SDK's speed >= 1x", down_ratio >= 1.0),
        (f"ocimodel upload extra peak RSS {rss:.0f} MB < {RSS_TARGET_MB:.0f} MB",
         rss < RSS_TARGET_MB),
    ]  # fmt: skip
    print()
    for text, ok in checks:
        print(f"[{'PASS' if ok else 'MISS'}] {text}")
    return 0 if all(ok for _, ok in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
