"""Benchmark: single-row predict latency and throughput, direct and through the signed route.

One scikit-learn classifier (iris, LogisticRegression) is deployed on the local OCI service,
which runs as a subprocess (as a user would run it) and serves the deployment with a real
``python -m ocimodel.serve`` model-server process. The same single-row JSON payload is then sent:

- (a) ``direct``: unsigned HTTP straight to that model server (the baseline, same run), on the
  same HTTP stack as (b)'s client, so that (b) - (a) is the signature plus the route;
- (b) ``signed route``: :func:`ocimodel.oci.predict.predict` (signed with the auth's signer, one
  kept-alive session) to the service's ``POST /{deployment}/predict``, which verifies the
  signature and proxies to the same model server (``--client requests``: a plain
  ``requests.Session`` with the SDK signer instead, e.g. to measure a checkout without the
  client, ``PYTHONPATH=old/checkout python benchmarks/predict.py --client requests``);
- (c) ``mlflow models serve`` with the same model, when mlflow is installed here or in the venv
  ``benchmarks/deploy.py`` makes (else a note).

Each is run sequentially and with 4 client threads, in ``--runs`` interleaved rounds of
``--calls`` calls; the table shows p50/p99 over every call and the median throughput of the
rounds. The route's added latency is (b) - (a); the client's signing (an RSA-2048 signature per
request, paid by any signed OCI call) is measured on its own and subtracted to show what the
service adds.

    python benchmarks/predict.py [--calls 2000] [--runs 3] [--threads 4] [--client requests]

Target: the route (signature check + proxy hop) adds well under 1 ms at p50, sequentially.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

import cloudpickle
import oci
import requests
import urllib3
from oci.data_science import DataScienceClient
from oci.data_science import models as dsm
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

from ocimodel.local.server import LocalOCI
from ocimodel.oci.auth import resolve_auth

ROUTE_TARGET_MS = 1.0
THREADS = 4
MLFLOW_VERSIONS = ("3.18.0", "3.17.2")
"""Tried in turn: the index here serves mlflow 3.18.0 without its mlflow-skinny 3.18.0."""
CACHE_DIR = Path(os.environ.get("OCIMODEL_BENCH_CACHE", "~/.cache/ocimodel-bench")).expanduser()
MLFLOW_VENV = CACHE_DIR / "mlflow-venv"

SCORE_PY = """
import os
import cloudpickle
import numpy as np

_MODEL = None

def load_model():
    global _MODEL
    with open(os.path.join(os.path.dirname(os.path.realpath(__file__)), "model.pkl"), "rb") as f:
        _MODEL = cloudpickle.load(f)
    return _MODEL

def predict(data, model=None):
    model = model or _MODEL or load_model()
    rows = np.asarray(data["instances"], dtype=float)
    return {"prediction": model.predict(rows).tolist()}
"""


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (nearest rank) of a list of numbers."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


def run_calls(fn: Callable[[], None], calls: int, threads: int) -> tuple[list[float], float]:
    """Milliseconds of each call and the calls per second, ``calls`` spread over ``threads``."""
    per_thread = [calls // threads + (1 if i < calls % threads else 0) for i in range(threads)]
    times: list[list[float]] = [[] for _ in range(threads)]
    start = threading.Barrier(threads + 1)

    def worker(i: int) -> None:
        out = times[i]
        start.wait()
        for _ in range(per_thread[i]):
            t0 = time.perf_counter()
            fn()
            out.append((time.perf_counter() - t0) * 1000)

    pool = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(threads)]
    for thread in pool:
        thread.start()
    start.wait()
    t0 = time.perf_counter()
    for thread in pool:
        thread.join()
    wall = time.perf_counter() - t0
    flat = [t for chunk in times for t in chunk]
    return flat, len(flat) / wall


Figures = dict[tuple[str, int], list[float]]


def measure(
    measures: dict[str, Callable[[], None]],
    calls: int,
    runs: int,
    thread_counts: tuple[int, ...],
    warmup: int,
    verbose: bool = False,
) -> tuple[Figures, Figures]:
    """Milliseconds of every call and calls/s of every round, by (measure, threads): ``runs``
    rounds, each running every measure at every thread count in turn (interleaved, so a busy
    moment of the machine falls on all of them), after ``warmup`` calls of each."""
    for fn in measures.values():
        for _ in range(warmup):
            fn()
    lat: Figures = {}
    rps: Figures = {}
    for _ in range(runs):
        for threads in thread_counts:
            for name, fn in measures.items():
                times, rate = run_calls(fn, calls, threads)
                if verbose:
                    print(
                        f"  round: {name} x{threads}: p50 {percentile(times, 50):.3f} ms, "
                        f"{rate:.0f}/s",
                        flush=True,
                    )
                lat.setdefault((name, threads), []).extend(times)
                rps.setdefault((name, threads), []).append(rate)
    return lat, rps


def print_figures(lat: Figures, rps: Figures, first: str, width: int = 34) -> None:
    """A table of :func:`measure`'s figures: p50 and p99 of every call, median calls/s."""
    print(f"{first:<{width}}{'threads':>8}{'p50 ms':>9}{'p99 ms':>9}{'calls/s':>9}")
    for (name, threads), values in lat.items():
        rate = statistics.median(rps[(name, threads)])
        print(
            f"{name:<{width}}{threads:>8}{percentile(values, 50):>9.3f}"
            f"{percentile(values, 99):>9.3f}{rate:>9.0f}"
        )


def iris_model() -> LogisticRegression:
    """The benchmarks' model: a logistic regression fitted on iris."""
    X, y = load_iris(return_X_y=True)
    return LogisticRegression(max_iter=500).fit(X, y)


def create_model(svc: LocalOCI, scratch: Path, files: dict[str, str | bytes]) -> tuple[str, str]:
    """A project and a catalog model holding ``files`` (name -> content) zipped; their OCIDs."""
    zipped = scratch / f"artifact-{len(list(scratch.glob('artifact-*.zip')))}.zip"
    with zipfile.ZipFile(zipped, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, content in files.items():
            zf.writestr(name, content)
    ds = svc.client(DataScienceClient)
    compartment = svc.config["tenancy"]
    project = ds.create_project(
        dsm.CreateProjectDetails(compartment_id=compartment, display_name="bench")
    ).data.id
    model_id = ds.create_model(
        dsm.CreateModelDetails(compartment_id=compartment, project_id=project)
    ).data.id
    with open(zipped, "rb") as fh:
        ds.create_model_artifact(
            model_id, fh, content_disposition='attachment; filename="artifact.zip"'
        )
    return project, model_id


def deploy(svc: LocalOCI, scratch: Path) -> tuple[str, str, LogisticRegression]:
    """Deploy the iris classifier; return the deployment URL, its model server URL, the model."""
    model = iris_model()
    project, model_id = create_model(
        svc, scratch, {"score.py": SCORE_PY, "model.pkl": cloudpickle.dumps(model)}
    )
    ds = svc.client(DataScienceClient)
    compartment = svc.config["tenancy"]
    details = dsm.CreateModelDeploymentDetails(
        display_name="bench-predict",
        compartment_id=compartment,
        project_id=project,
        model_deployment_configuration_details=dsm.SingleModelDeploymentConfigurationDetails(
            deployment_type="SINGLE_MODEL",
            model_configuration_details=dsm.ModelConfigurationDetails(
                model_id=model_id,
                instance_configuration=dsm.InstanceConfiguration(
                    instance_shape_name="VM.Standard.E4.Flex",
                    model_deployment_instance_shape_config_details=(
                        dsm.ModelDeploymentInstanceShapeConfigDetails(ocpus=1, memory_in_gbs=16)
                    ),
                ),
                scaling_policy=dsm.FixedSizeScalingPolicy(
                    policy_type="FIXED_SIZE", instance_count=1
                ),
                bandwidth_mbps=10,
            ),
        ),
    )
    done = oci.data_science.DataScienceClientCompositeOperations(
        ds
    ).create_model_deployment_and_wait_for_state(
        details,
        wait_for_states=["SUCCEEDED", "FAILED"],
        waiter_kwargs={"max_interval_seconds": 0.2, "max_wait_seconds": 300},
    )
    if done.data.status != "SUCCEEDED":
        raise RuntimeError(f"the deployment did not start: {done.data.status}")
    dep_id = next(r.identifier for r in done.data.resources if r.entity_type == "modelDeployment")
    url = ds.get_model_deployment(dep_id).data.model_deployment_url
    (server,) = svc.admin("GET", f"/_admin/modelDeployments/{dep_id}/servers")
    return url, f"http://127.0.0.1:{server['port']}", model


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def mlflow_python(install: bool) -> str | None:
    """A Python that can run ``mlflow models serve``, or None (with a note printed).

    The venv under :data:`MLFLOW_VENV` (made and filled on first use when ``install``: the
    first of :data:`MLFLOW_VERSIONS` the package index can install, with the scikit-learn,
    numpy and cloudpickle versions of this interpreter, so the model pickled here loads there),
    else this interpreter when it has mlflow. The project's own environment is never changed.
    """
    python = MLFLOW_VENV / "bin" / "python"
    if python.exists() and _has_mlflow(str(python)):
        return str(python)
    if importlib.util.find_spec("mlflow") is not None:
        return sys.executable
    if not install:
        print(f"(c) mlflow is not installed (nor in {MLFLOW_VENV}); skipping it as a peer.")
        return None
    import numpy
    import sklearn

    pins = [
        f"scikit-learn=={sklearn.__version__}",
        f"numpy=={numpy.__version__}",
        f"cloudpickle=={cloudpickle.__version__}",
    ]
    for version in MLFLOW_VERSIONS:
        print(f"installing mlflow=={version} into {MLFLOW_VENV} (once; a few minutes)...")
        shutil.rmtree(MLFLOW_VENV, ignore_errors=True)
        try:
            subprocess.run([sys.executable, "-m", "venv", str(MLFLOW_VENV)], check=True)
            subprocess.run(
                [
                    str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check",
                    f"mlflow=={version}", *pins,
                ],
                check=True,
                timeout=1800,
            )  # fmt: skip
        except (OSError, subprocess.SubprocessError) as exc:
            print(f"mlflow=={version} could not be installed: {exc}")
            continue
        if _has_mlflow(str(python)):
            return str(python)
    shutil.rmtree(MLFLOW_VENV, ignore_errors=True)
    print(f"(c) no mlflow of {MLFLOW_VERSIONS} could be installed; skipping it as a peer.")
    return None


def mlflow_version(python: str) -> str:
    """The mlflow version ``python`` imports."""
    probe = subprocess.run(
        [python, "-c", "import mlflow; print(mlflow.__version__)"], capture_output=True, text=True
    )
    return probe.stdout.strip() or "?"


def _has_mlflow(python: str) -> bool:
    probe = subprocess.run([python, "-c", "import mlflow.pyfunc"], capture_output=True)
    return probe.returncode == 0


def mlflow_server(
    model: LogisticRegression, scratch: Path, python: str
) -> tuple[subprocess.Popen, str]:
    """``mlflow models serve`` (one worker, ``--env-manager local``) of the model saved with
    ``mlflow.sklearn`` by ``python``, on a free port; return the process and its URL."""
    pickled = scratch / "mlflow-model.pkl"
    pickled.write_bytes(cloudpickle.dumps(model))
    path = scratch / "mlflow-model"
    subprocess.run(
        [
            python, "-c",
            "import sys, cloudpickle, mlflow.sklearn\n"
            "with open(sys.argv[1], 'rb') as fh:\n"
            "    mlflow.sklearn.save_model(cloudpickle.load(fh), sys.argv[2])",
            str(pickled), str(path),
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    port = free_port()
    # It runs `uvicorn` from PATH: the one beside its Python.
    proc = subprocess.Popen(
        [
            python, "-m", "mlflow", "models", "serve", "-m", str(path),
            "--env-manager", "local", "--host", "127.0.0.1", "-p", str(port), "-w", "1",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        env={**os.environ, "PATH": f"{Path(python).parent}{os.pathsep}{os.environ['PATH']}"},
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"mlflow models serve exited with {proc.returncode}")
        try:
            if requests.get(url + "/ping", timeout=2).status_code == 200:
                return proc, url
        except requests.RequestException:
            pass
        time.sleep(0.2)
    stop_process_group(proc)
    raise RuntimeError("mlflow models serve did not answer /ping within 180 s")


def stop_process_group(proc: subprocess.Popen) -> None:
    """End a server started in its own session, with every process it started."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


def unsigned_call(
    client: str, url: str, body: bytes, session: requests.Session | None = None
) -> Callable[[], None]:
    """One unsigned call straight to the model server, on the same HTTP stack as (b)'s client
    (urllib3 for ours, requests for ``--client requests``), so that b - a leaves it out."""
    headers = {"content-type": "application/json"}
    if client == "ocimodel":
        pool = urllib3.PoolManager(num_pools=1, maxsize=32)

        def call() -> None:
            answer = pool.urlopen("POST", url, body=body, headers=headers, retries=False)
            if answer.status != 200:
                raise RuntimeError(f"direct predict answered {answer.status}: {answer.data!r}")

        return call

    http = session or requests.Session()

    def call_requests() -> None:
        resp = http.post(url, data=body, headers=headers)
        if resp.status_code != 200:
            raise RuntimeError(f"direct predict answered {resp.status_code}: {resp.text}")

    return call_requests


def signed_call(client: str, dep_url: str, body: bytes, auth) -> Callable[[], None]:
    """One signed predict call through the route, with our client or a plain requests session."""
    if client == "ocimodel":
        from ocimodel.oci.predict import predict

        def ours() -> None:
            predict(dep_url, body, "application/json", auth=auth)

        return ours
    session = requests.Session()
    session.trust_env = False
    session.mount("http://", requests.adapters.HTTPAdapter(pool_maxsize=32))
    url, signer = dep_url + "/predict", auth.signer

    def call() -> None:
        resp = session.post(
            url, data=body, headers={"content-type": "application/json"}, auth=signer
        )
        if resp.status_code != 200:
            raise RuntimeError(f"predict answered {resp.status_code}: {resp.text}")

    return call


def cpu_seconds(pid: int) -> float | None:
    """CPU seconds (user + system) process ``pid`` has used; None without Linux's /proc."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_per_call(fn: Callable[[], None], calls: int, pids: tuple[int, ...]) -> list[float]:
    """Milliseconds of CPU each process of ``pids`` spends per sequential call of ``fn``
    (empty without /proc): steadier than latency on a busy machine."""
    before = [cpu_seconds(pid) for pid in pids]
    for _ in range(calls):
        fn()
    after = [cpu_seconds(pid) for pid in pids]
    if None in before or None in after:
        return []
    return [(b - a) * 1000 / calls for a, b in zip(before, after, strict=True)]  # type: ignore[operator]


def signing_ms(auth, url: str, body: bytes, calls: int = 500) -> float:
    """Median milliseconds the client spends signing one predict request (RSA-2048 + hash)."""
    signer = auth.signer
    out = []
    for _ in range(calls):
        req = requests.Request(
            "POST", url, data=body, headers={"content-type": "application/json"}
        ).prepare()
        t0 = time.perf_counter()
        signer(req)
        out.append((time.perf_counter() - t0) * 1000)
    return statistics.median(out)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark, print the table, and return 1 when the target is missed."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=2000, help="calls per measure and round")
    parser.add_argument("--runs", type=int, default=3, help="interleaved rounds")
    parser.add_argument("--threads", type=int, default=THREADS)
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--verbose", action="store_true", help="print every round's p50")
    parser.add_argument(
        "--client",
        choices=("ocimodel", "requests"),
        default="ocimodel",
        help="the signed client of (b): ocimodel.oci.predict, or requests with the SDK signer",
    )
    args = parser.parse_args(argv)

    row = load_iris().data[:1].tolist()
    body = json.dumps({"instances": row}).encode()
    scratch = Path(tempfile.mkdtemp(prefix="bench-predict-"))
    mlflow_proc = None
    try:
        with LocalOCI(data_dir=scratch / "service", mode="subprocess") as svc:
            dep_url, server_url, model = deploy(svc, scratch)
            expected = {"prediction": model.predict(row).tolist()}
            auth = resolve_auth(svc.auth())
            plain = requests.Session()
            plain.trust_env = False
            plain.mount("http://", requests.adapters.HTTPAdapter(pool_maxsize=32))
            direct = unsigned_call(args.client, server_url + "/predict", body, plain)

            routed = signed_call(args.client, dep_url, body, auth)
            measures: dict[str, Callable[[], None]] = {
                "(a) direct": direct,
                "(b) signed route": routed,
            }
            check = requests.post(
                dep_url + "/predict",
                data=body,
                headers={"content-type": "application/json"},
                auth=auth.signer,
                timeout=60,
            )
            if check.json() != expected:
                raise RuntimeError("the deployment's prediction differs from the local model's")
            mlflow_py = mlflow_python(install=False)
            if mlflow_py is not None:
                mlflow_proc, mlflow_url = mlflow_server(model, scratch, mlflow_py)
                mlflow_body = json.dumps({"inputs": row}).encode()

                def via_mlflow() -> None:
                    resp = plain.post(
                        mlflow_url + "/invocations",
                        data=mlflow_body,
                        headers={"content-type": "application/json"},
                    )
                    if resp.status_code != 200:
                        raise RuntimeError(f"mlflow answered {resp.status_code}: {resp.text}")

                measures["(c) mlflow models serve"] = via_mlflow

            lat, rps = measure(
                measures, args.calls, args.runs, (1, args.threads), args.warmup, args.verbose
            )
            sign = signing_ms(auth, dep_url + "/predict", body)
            server_pid = svc.admin(
                "GET", f"/_admin/modelDeployments/{dep_url.rsplit('/', 1)[-1]}/servers"
            )[0]["pid"]
            cpu = {
                name: cpu_per_call(measures[name], args.calls, (svc.pid, server_pid))
                for name in ("(a) direct", "(b) signed route")
            }
    finally:
        if mlflow_proc is not None:
            stop_process_group(mlflow_proc)
        shutil.rmtree(scratch, ignore_errors=True)

    import ocimodel

    print(
        f"\nsingle-row predict, iris LogisticRegression, {args.runs} rounds x {args.calls} calls, "
        f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs\n"
        f"ocimodel from {Path(ocimodel.__file__).parent}; signed client: {args.client}"
    )
    print_figures(lat, rps, "measure")
    print()
    for threads in (1, args.threads):
        a = percentile(lat[("(a) direct", threads)], 50)
        b = percentile(lat[("(b) signed route", threads)], 50)
        print(f"route added latency (b - a), {threads} thread(s): p50 {b - a:.3f} ms")
    added = percentile(lat[("(b) signed route", 1)], 50) - percentile(lat[("(a) direct", 1)], 50)
    service = added - sign
    print(f"client signing alone (RSA-2048 signature + body hash): {sign:.3f} ms per call")
    print(f"service route alone (b - a - signing), sequential: p50 {service:.3f} ms")
    if cpu["(b) signed route"]:
        (_, server_a), (svc_b, server_b) = cpu["(a) direct"], cpu["(b) signed route"]
        print(
            f"CPU per call, sequential: the service {svc_b:.3f} ms per routed call; the model "
            f"server {server_a:.3f} ms direct, {server_b:.3f} ms routed"
        )
    ok = service < ROUTE_TARGET_MS
    print(
        f"\n[{'PASS' if ok else 'MISS'}] the route (signature check + proxy hop) adds "
        f"{service:.3f} ms < {ROUTE_TARGET_MS} ms at p50"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
