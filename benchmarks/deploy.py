"""Benchmark: the deploy stage, each figure beside a baseline measured in the same run.

The local OCI service runs as a subprocess (as a user would run it); every deployment is a
real ``python -m ocimodel.serve`` model-server process.

1. Waiter. Models whose ``load_model()`` sleeps a chosen time (``--quick``: 5 deployments
   over 0.5-6 s; else 9 over 0.5-20 s), so each turns ACTIVE that long after it began, are
   deployed with ``ocimodel.deploy.deploy_model`` (default ``poll_interval``). For each, the
   notice delay is the time from the deployment turning ACTIVE in the service (its record:
   the work-request log line written as it turns ACTIVE, "... all healthy.") to
   ``deploy_model`` returning; the requests are those the SDK's DataScienceClient sent
   while waiting (its session's response hook), per second of the wait. Baseline: a fixed
   10 s poller of ``get_model_deployment`` from the same start, computed from the same ACTIVE
   times (it reads at 0, 10, 20... s and notices at its first read after ACTIVE, one
   request's measured latency later). Targets: p50 notice delay <= 1 s; <= 1 request/s.
2. Predict. The same scikit-learn iris model (a logistic regression), single-row JSON, 1 and
   4 client threads, served three ways: ``mlflow models serve`` (one worker,
   ``--env-manager local``, the model saved with ``mlflow.sklearn``; installed into its own
   venv under ``~/.cache/ocimodel-bench`` on first use, never into this environment), our
   model server called directly (both unsigned, same urllib3 client), and the full signed
   path through the service's predict route (``ocimodel.oci.predict.predict``). Targets: our
   model server >= 1.5x MLflow's calls/s; the signed path >= 0.75x MLflow's (unsigned,
   direct) calls/s.
3. Quickstart. A fresh ``git clone`` of this checkout's committed HEAD, installed as the
   README says (``pip install -e``, here without dependencies, into a venv that sees this
   environment's packages); the wall time of ``python -m ocimodel.flows.quickstart`` run in
   the clone as a subprocess. Target: 25 s.

    python benchmarks/deploy.py [--quick] [--calls N] [--runs N] [--skip-waiter]
                                [--skip-mlflow] [--skip-quickstart] [--verbose]

Prints a table per part and a final one: each figure, its baseline, their ratio and the target.
Exits 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from oci.data_science import DataScienceClient
from predict import create_model as create_catalog_model
from predict import (
    deploy,
    measure,
    mlflow_python,
    mlflow_server,
    mlflow_version,
    percentile,
    print_figures,
    signed_call,
    stop_process_group,
    unsigned_call,
)
from sklearn.datasets import load_iris

from ocimodel.deploy import DeploySpec, delete_deployment, deploy_model
from ocimodel.local.server import LocalOCI
from ocimodel.oci import deployment as md
from ocimodel.oci.auth import OCIAuth, resolve_auth

ROOT = Path(__file__).resolve().parent.parent
NOTICE_TARGET_S = 1.0
REQUEST_RATE_TARGET = 1.0
BASELINE_POLL_S = 10.0
SERVER_RATIO_TARGET = 1.5
SIGNED_RATIO_TARGET = 0.75
QUICKSTART_TARGET_S = 25.0
QUICKSTART_TIMEOUT_S = 600.0
ACTIVE_LOG_MARK = "all healthy"
LOADS_FULL = (0.5, 1.0, 1.5, 2.5, 4.0, 6.0, 9.0, 14.0, 20.0)
LOADS_QUICK = (0.5, 1.0, 2.0, 3.5, 6.0)

SLOW_SCORE = """
import os, time

def load_model():
    time.sleep(float(os.environ["LOAD_SECONDS"]))
    return "ready"

def predict(data, model=None):
    return {"echo": data}
"""


@dataclass
class Row:
    """One line of the final table."""

    figure: str
    value: float
    baseline: float | None
    unit: str
    target: str
    ok: bool | None  # None: no target judged on this line

    @property
    def ratio(self) -> float | None:
        """value / baseline, when there is a baseline."""
        if self.baseline in (None, 0):
            return None
        return self.value / self.baseline


# --- 1. waiter --------------------------------------------------------------------------------


@dataclass
class Wait:
    """One deployment's wait: seconds from the wait's start, and the requests it made."""

    load: float  # how long load_model() sleeps
    active: float  # when the service turned it ACTIVE (its record)
    returned: float  # when deploy_model returned
    requests: int

    @property
    def notice(self) -> float:
        """From ACTIVE in the service to deploy_model returning."""
        return self.returned - self.active

    @property
    def rate(self) -> float:
        """Requests per second of waiting."""
        return self.requests / self.returned


class _WaitStart:
    """A Progress that notes when the wait for ACTIVE begins."""

    def __init__(self) -> None:
        self.started: float | None = None

    def start(self, total: int | None, description: str = "") -> None:
        if self.started is None:
            self.started = time.time()

    def advance(self, n: int) -> None:
        pass

    def finish(self) -> None:
        pass


def _active_time(auth: OCIAuth, compartment: str, dep_id: str) -> float:
    """When the service turned the deployment ACTIVE: its work request's log line then."""
    summary = md.latest_work_request(auth, compartment, dep_id)
    for entry in md.work_request_logs(auth, summary.id):
        if ACTIVE_LOG_MARK in (entry.message or ""):
            stamp = entry.timestamp
            if isinstance(stamp, str):
                stamp = dt.datetime.fromisoformat(stamp.replace("Z", "+00:00"))
            return stamp.timestamp()
    raise RuntimeError(f"the work request of {dep_id} has no {ACTIVE_LOG_MARK!r} log line")


def request_latency(auth: OCIAuth, dep_id: str, calls: int = 50) -> float:
    """Median seconds of one ``get_model_deployment`` (what a poller's read costs)."""
    out = []
    for _ in range(calls):
        t0 = time.perf_counter()
        md.get_model_deployment(auth, dep_id)
        out.append(time.perf_counter() - t0)
    return statistics.median(out)


def run_waits(svc: LocalOCI, scratch: Path, loads: tuple[float, ...]) -> tuple[list[Wait], float]:
    """Deploy one slow-loading deployment per load time, one after the other; their waits and
    the latency of one read."""
    auth = resolve_auth(svc.auth())
    project, model_id = create_catalog_model(svc, scratch, {"score.py": SLOW_SCORE})
    compartment = svc.config["tenancy"]
    sent: list[float] = []
    hooks = auth.client(DataScienceClient).base_client.session.hooks["response"]

    def hook(response, *args, **kwargs) -> None:
        sent.append(time.time())

    hooks.append(hook)
    waits: list[Wait] = []
    dep_ids: list[str] = []
    try:
        for index, load in enumerate(loads):
            marker = _WaitStart()
            spec = DeploySpec(
                display_name=f"waiter-{index}", environment_variables={"LOAD_SECONDS": str(load)}
            )
            deployed = deploy_model(model_id, spec, auth=auth, progress=marker)
            returned = time.time()
            dep_ids.append(deployed.id)
            assert marker.started is not None
            start = marker.started
            active = _active_time(auth, compartment, deployed.id)
            count = sum(1 for t in sent if start <= t <= returned)
            waits.append(Wait(load, active - start, returned - start, count))
        latency = request_latency(auth, dep_ids[0])
    finally:
        hooks.remove(hook)
        for dep_id in dep_ids:
            delete_deployment(auth, dep_id, wait_for_completion=False)
    return waits, latency


def fixed_poller(wait: Wait, latency: float, every: float = BASELINE_POLL_S) -> tuple[float, int]:
    """Notice delay and requests of a poller reading at 0, ``every``, 2 x ``every``... s from
    the wait's start: it notices at its first read at or after ACTIVE, once that read returns."""
    reads = math.ceil(wait.active / every)
    return reads * every + latency - wait.active, reads + 1


def waiter_part(svc: LocalOCI, scratch: Path, loads: tuple[float, ...]) -> list[Row]:
    """Part 1: the waiter's notice delay and request rate against a fixed 10 s poller."""
    waits, latency = run_waits(svc, scratch, loads)
    base = [fixed_poller(w, latency) for w in waits]
    print(
        f"\n1. waiter: deploy_model of models whose load_model() sleeps a while "
        f"(one read: {latency * 1000:.1f} ms)"
    )
    print(
        f"{'load s':>10}{'ACTIVE s':>10}{'noticed s':>10}{'delay s':>9}{'requests':>9}"
        f"{'req/s':>7}  | fixed 10 s poller: {'delay s':>8}{'requests':>9}{'req/s':>7}"
    )
    for wait, (b_delay, b_reqs) in zip(waits, base, strict=True):
        b_time = wait.active + b_delay
        print(
            f"{wait.load:>10.1f}{wait.active:>10.2f}{wait.returned:>10.2f}{wait.notice:>9.2f}"
            f"{wait.requests:>9}{wait.rate:>7.2f}  | {'':>19}{b_delay:>8.2f}{b_reqs:>9}"
            f"{b_reqs / b_time:>7.2f}"
        )
    notices = [w.notice for w in waits]
    b_notices = [d for d, _ in base]
    rate = sum(w.requests for w in waits) / sum(w.returned for w in waits)
    b_rate = sum(r for _, r in base) / sum(
        w.active + d for w, (d, _) in zip(waits, base, strict=True)
    )
    p50, p90 = percentile(notices, 50), percentile(notices, 90)
    return [
        Row(
            "waiter notice delay p50",
            p50,
            percentile(b_notices, 50),
            "s",
            f"<= {NOTICE_TARGET_S:g} s",
            p50 <= NOTICE_TARGET_S,
        ),
        Row("waiter notice delay p90", p90, percentile(b_notices, 90), "s", "", None),
        Row(
            "waiter requests per second",
            rate,
            b_rate,
            "/s",
            f"<= {REQUEST_RATE_TARGET:g}/s",
            rate <= REQUEST_RATE_TARGET,
        ),
        Row(
            "waiter requests beyond 1/s (most)",
            max(w.requests - w.returned for w in waits),
            None,
            "",
            "",
            None,
        ),
    ]


# --- 2. predict -------------------------------------------------------------------------------


def predict_part(
    svc: LocalOCI, scratch: Path, calls: int, runs: int, with_mlflow: bool, verbose: bool
) -> list[Row]:
    """Part 2: calls/s and latency of MLflow's server, ours direct, and the signed route."""
    row = load_iris().data[:1].tolist()
    body = json.dumps({"instances": row}).encode()
    dep_url, server_url, model = deploy(svc, scratch)
    auth = resolve_auth(svc.auth())
    measures: dict[str, Callable[[], None]] = {}
    mlflow_proc = None
    peer = "mlflow models serve"
    try:
        python = mlflow_python(install=True) if with_mlflow else None
        if python is not None:
            mlflow_proc, mlflow_url = mlflow_server(model, scratch, python)
            mlflow_body = json.dumps({"inputs": row}).encode()
            peer = f"mlflow {mlflow_version(python)} models serve"
            measures[peer] = unsigned_call(
                "ocimodel", mlflow_url + "/invocations", mlflow_body, None
            )
        elif with_mlflow:
            print("2. predict: MLflow could not be installed; measuring ocimodel alone.")
        ours = "ocimodel.serve, direct"
        signed = "signed route (full path)"
        measures[ours] = unsigned_call("ocimodel", server_url + "/predict", body)
        measures[signed] = signed_call("ocimodel", dep_url, body, auth)
        thread_counts = (1, 4)
        lat, rps = measure(measures, calls, runs, thread_counts, max(50, calls // 10), verbose)
    finally:
        if mlflow_proc is not None:
            stop_process_group(mlflow_proc)
    print(f"\n2. predict: single-row iris, {runs} rounds x {calls} calls, medians of rounds")
    print_figures(lat, rps, "served by")
    out = []
    for threads in thread_counts:
        ours_rate = statistics.median(rps[(ours, threads)])
        signed_rate = statistics.median(rps[(signed, threads)])
        peer_rate = statistics.median(rps[(peer, threads)]) if peer in measures else None
        for name, rate, goal in (
            (ours, ours_rate, SERVER_RATIO_TARGET),
            (signed, signed_rate, SIGNED_RATIO_TARGET),
        ):
            ok = None if peer_rate is None else rate / peer_rate >= goal
            out.append(
                Row(f"{name}, {threads} thread(s)", rate, peer_rate, "/s", f">= {goal:g}x", ok)
            )
        p50 = percentile(lat[(signed, threads)], 50)
        base = percentile(lat[(peer, threads)], 50) if peer in measures else None
        out.append(Row(f"signed route p50, {threads} thread(s)", p50, base, "ms", "", None))
    return out


# --- 3. quickstart ----------------------------------------------------------------------------


def quickstart_part(scratch: Path) -> list[Row]:
    """Part 3: the quickstart's wall time on a fresh clone, installed into a venv."""
    clone = scratch / "clone"
    venv = scratch / "venv"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
    head = subprocess.run(
        ["git", "-C", str(clone), "log", "-1", "--format=%h %s"], capture_output=True, text=True
    ).stdout.strip()
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], check=True)
    python = str(venv / "bin" / "python")
    subprocess.run(
        [python, "-m", "pip", "install", "-q", "--disable-pip-version-check", "--no-deps",
         "-e", str(clone)],
        check=True,
        capture_output=True,
    )  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(PREFECT_SERVER_ANALYTICS_ENABLED="false", NO_PROXY="127.0.0.1,localhost")
    where = subprocess.run(
        [python, "-c", "import ocimodel.flows; print(ocimodel.flows.__file__)"],
        capture_output=True,
        text=True,
        env=env,
        cwd=clone,
    ).stdout.strip()
    log = scratch / "quickstart.log"
    t0 = time.perf_counter()
    with open(log, "wb") as out:
        try:
            done = subprocess.run(
                [python, "-m", "ocimodel.flows.quickstart"],
                cwd=clone,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                timeout=QUICKSTART_TIMEOUT_S,
                start_new_session=True,
            )
            code: int | str = done.returncode
        except subprocess.TimeoutExpired:
            code = f"timeout after {QUICKSTART_TIMEOUT_S:g} s"
    seconds = time.perf_counter() - t0
    tail = log.read_text(errors="replace").strip().splitlines()[-12:]
    print(f"\n3. quickstart on a fresh clone ({head}), ocimodel.flows from {where}")
    print("   " + "\n   ".join(tail))
    print(f"   exit status {code}, {seconds:.1f} s")
    ok = code == 0 and seconds <= QUICKSTART_TARGET_S
    return [
        Row(
            "quickstart wall time" + ("" if code == 0 else f" (FAILED: {code})"),
            seconds,
            QUICKSTART_TARGET_S,
            "s",
            f"<= {QUICKSTART_TARGET_S:g} s",
            ok,
        )
    ]


# --- main -------------------------------------------------------------------------------------


def print_table(rows: list[Row]) -> None:
    """The final table: figure, value, baseline, ratio, target and its verdict."""
    print(f"\n{'figure':<40}{'value':>10}{'baseline':>10}{'ratio':>8}  {'target':<10}verdict")
    for row in rows:
        base = f"{row.baseline:>10.3f}" if row.baseline is not None else f"{'-':>10}"
        ratio = f"{row.ratio:>8.2f}" if row.ratio is not None else f"{'-':>8}"
        verdict = {True: "PASS", False: "MISS", None: ""}[row.ok]
        print(f"{row.figure:<40}{row.value:>10.3f}{base}{ratio}  {row.target:<10}{verdict}")
    print(
        "baselines: waiter = a fixed 10 s poller (same ACTIVE times); predict = mlflow models "
        "serve; quickstart = the target"
    )


def main(argv: list[str] | None = None) -> int:
    """Run the three parts, print the tables, and return 1 when a target is missed."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer deployments and calls")
    parser.add_argument("--calls", type=int, help="predict calls per measure and round")
    parser.add_argument("--runs", type=int, help="interleaved predict rounds")
    parser.add_argument("--skip-waiter", action="store_true")
    parser.add_argument("--skip-mlflow", action="store_true", help="no MLflow peer")
    parser.add_argument("--skip-quickstart", action="store_true")
    parser.add_argument("--verbose", action="store_true", help="print every predict round")
    args = parser.parse_args(argv)
    calls = args.calls or (500 if args.quick else 2000)
    runs = args.runs or (1 if args.quick else 3)
    loads = LOADS_QUICK if args.quick else LOADS_FULL

    rows: list[Row] = []
    scratch = Path(tempfile.mkdtemp(prefix="bench-deploy-"))
    try:
        with LocalOCI(data_dir=scratch / "service", mode="subprocess") as svc:
            if not args.skip_waiter:
                rows += waiter_part(svc, scratch, loads)
            rows += predict_part(svc, scratch, calls, runs, not args.skip_mlflow, args.verbose)
        if not args.skip_quickstart:
            rows += quickstart_part(scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    print(f"\nload average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    print_table(rows)
    return 1 if any(row.ok is False for row in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
