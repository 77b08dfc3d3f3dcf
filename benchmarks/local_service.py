"""Benchmark: the local OCI service's small-request latency and upload throughput.

The service runs as a subprocess (as a user would run it) and its resident memory is sampled
from /proc every 20 ms while the uploads run.

- Latency: ``DataScienceClient.get_model`` (and ``ObjectStorageClient.get_namespace`` beside it)
  called sequentially; p50 and p99 over ``--calls`` calls after a warm-up.
- Throughput: ``UploadManager.upload_file`` (multipart, default part size and parallelism) of a
  ``--size-mib`` file, against a baseline in the same run: the same file streamed by httpx as one
  signed ``put_object`` (the SDK's unsigned-body form) to the same server. Each is run
  ``--runs`` times, alternating; the table shows medians.

    python benchmarks/local_service.py [--size-mib 1024] [--calls 1000] [--runs 3] [--dir DIR]

Targets: get_model p50 <= 5 ms; UploadManager >= 70% of the raw stream's throughput; service
peak RSS < 200 MB during the uploads.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import httpx
import oci
import requests
from oci.data_science import DataScienceClient
from oci.data_science.models import CreateModelDetails, CreateProjectDetails
from oci.object_storage import ObjectStorageClient, UploadManager
from oci.object_storage.models import CreateBucketDetails

from ocimodel.local.server import LocalOCI

MIB = 1024 * 1024
P50_TARGET_MS = 5.0
THROUGHPUT_RATIO_TARGET = 0.70
RSS_TARGET_MB = 200.0


def rss_mb(pid: int) -> float:
    """Resident set size of a process in MB (0 when it is gone)."""
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


class RssSampler:
    """Samples a process's RSS in a thread; ``peak`` is the highest value seen."""

    def __init__(self, pid: int, interval: float = 0.02):
        self.pid, self.interval = pid, interval
        self.peak = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_mb(self.pid))
            time.sleep(self.interval)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_mb(self.pid))


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (nearest rank) of a list of numbers."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


def time_calls(fn, calls: int, warmup: int = 50) -> list[float]:
    """Milliseconds of each of ``calls`` sequential calls of ``fn`` after a warm-up."""
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(calls):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1000)
    return out


def make_file(path: Path, size_mib: int) -> None:
    """A file of incompressible bytes (one random MiB repeated with a counter)."""
    block = bytearray(os.urandom(MIB))
    with open(path, "wb") as fh:
        for i in range(size_mib):
            block[:8] = i.to_bytes(8, "little")
            fh.write(block)


def signed_put_headers(svc: LocalOCI, url: str, size: int) -> dict[str, str]:
    """Headers of a put_object signed as the SDK signs it (body not signed)."""
    prepared = requests.Request(
        "PUT", url, headers={"content-type": "application/octet-stream"}
    ).prepare()
    svc.signer()(prepared, enforce_content_headers=False)
    headers = {k.lower(): v for k, v in prepared.headers.items()}
    headers["content-length"] = str(size)
    return headers


def raw_stream_put(svc: LocalOCI, url: str, path: Path) -> None:
    """Stream a file as one signed put_object with httpx."""
    size = path.stat().st_size

    def chunks():
        with open(path, "rb") as fh:
            while chunk := fh.read(MIB):
                yield chunk

    with httpx.Client(timeout=600, trust_env=False) as client:
        resp = client.put(url, content=chunks(), headers=signed_put_headers(svc, url, size))
    if resp.status_code != 200:
        raise RuntimeError(f"raw put answered {resp.status_code}: {resp.text}")


def latency(svc: LocalOCI, calls: int) -> dict[str, list[float]]:
    """Per-call milliseconds of get_model and get_namespace."""
    compartment = svc.config["tenancy"]
    ds = svc.client(DataScienceClient)
    project = ds.create_project(
        CreateProjectDetails(compartment_id=compartment, display_name="bench")
    ).data
    model = ds.create_model(
        CreateModelDetails(compartment_id=compartment, project_id=project.id, display_name="bench")
    ).data
    os_client = svc.client(ObjectStorageClient)
    return {
        "get_model": time_calls(lambda: ds.get_model(model.id), calls),
        "get_namespace": time_calls(lambda: os_client.get_namespace(), calls),
    }


def throughput(svc: LocalOCI, path: Path, runs: int) -> tuple[dict[str, list[float]], float]:
    """MB/s of UploadManager and of the raw stream per run, and the service's peak RSS."""
    os_client = svc.client(ObjectStorageClient, retry_strategy=oci.retry.NoneRetryStrategy())
    namespace = os_client.get_namespace().data
    bucket = f"bench-{uuid.uuid4().hex[:8]}"
    os_client.create_bucket(
        namespace, CreateBucketDetails(name=bucket, compartment_id=svc.config["tenancy"])
    )
    manager = UploadManager(os_client, allow_parallel_uploads=True)
    size_mb = path.stat().st_size / 1e6
    results: dict[str, list[float]] = {"UploadManager multipart": [], "raw httpx stream": []}
    with RssSampler(svc.pid) as sampler:
        for run in range(runs):
            name = f"um-{run}"
            t0 = time.perf_counter()
            manager.upload_file(namespace, bucket, name, str(path))
            results["UploadManager multipart"].append(size_mb / (time.perf_counter() - t0))
            os_client.delete_object(namespace, bucket, name)

            name = f"raw-{run}"
            url = f"{svc.endpoint}/n/{namespace}/b/{bucket}/o/{name}"
            t0 = time.perf_counter()
            raw_stream_put(svc, url, path)
            results["raw httpx stream"].append(size_mb / (time.perf_counter() - t0))
            head = os_client.head_object(namespace, bucket, name)
            if int(head.headers["content-length"]) != path.stat().st_size:
                raise RuntimeError("the raw upload stored a different size")
            os_client.delete_object(namespace, bucket, name)
    return results, sampler.peak


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark, print the table, and return 1 when a target is missed."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--dir", default=None, help="scratch directory (default: a temp dir)")
    args = parser.parse_args(argv)

    scratch = Path(tempfile.mkdtemp(prefix="bench-local-", dir=args.dir))
    try:
        src = scratch / "upload.bin"
        make_file(src, args.size_mib)
        with LocalOCI(data_dir=scratch / "service", mode="subprocess") as svc:
            idle_rss = rss_mb(svc.pid)
            lat = latency(svc, args.calls)
            rates, peak_rss = throughput(svc, src, args.runs)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    print(f"\nlocal OCI service (subprocess), {args.calls} sequential calls, "
          f"{args.size_mib} MiB file x {args.runs} runs")  # fmt: skip
    print(f"{'measure':<34}{'p50 ms':>10}{'p99 ms':>10}")
    for name, values in lat.items():
        print(f"{name:<34}{percentile(values, 50):>10.2f}{percentile(values, 99):>10.2f}")
    print(f"\n{'upload':<34}{'MB/s (median)':>16}{'runs':>24}")
    for name, values in rates.items():
        runs = ", ".join(f"{v:.0f}" for v in values)
        print(f"{name:<34}{statistics.median(values):>16.1f}{runs:>24}")
    ratio = statistics.median(rates["UploadManager multipart"]) / statistics.median(
        rates["raw httpx stream"]
    )
    p50 = percentile(lat["get_model"], 50)
    print(f"\nservice RSS: idle {idle_rss:.0f} MB, peak during uploads {peak_rss:.0f} MB")
    checks = [
        (f"get_model p50 {p50:.2f} ms <= {P50_TARGET_MS} ms", p50 <= P50_TARGET_MS),
        (
            f"UploadManager / raw stream {ratio:.0%} >= {THROUGHPUT_RATIO_TARGET:.0%}",
            ratio >= THROUGHPUT_RATIO_TARGET,
        ),
        (f"service peak RSS {peak_rss:.0f} MB < {RSS_TARGET_MB:.0f} MB", peak_rss < RSS_TARGET_MB),
    ]
    print()
    for text, ok in checks:
        print(f"[{'PASS' if ok else 'MISS'}] {text}")
    return 0 if all(ok for _, ok in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
