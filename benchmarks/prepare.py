"""Benchmark: prepare of a 100-200 MB scikit-learn model against a bare cloudpickle.dump.

Prepare here is everything ``prepare_artifact`` does: serialize, score.py, runtime.yaml,
schema from a 100-row sample, taxonomy/custom metadata, git provenance and introspection. The
model's sha256 manifest is not part of prepare: it is computed when the artifact is zipped.
Both are timed in the same process, alternating, over several runs; the table shows medians.
Memory is the peak resident size during each operation (reset through /proc/self/clear_refs)
minus the resident size just before it, i.e. what the operation adds on top of the model
already in memory.

    python benchmarks/prepare.py [--runs 7] [--rows 200000] [--dir DIR]

Targets: prepare's median overhead beyond the bare dump <= 0.1 s; prepare's extra peak memory
<= 100 MB (so the whole process stays within the model's in-memory size plus 100 MB).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from typing import Any

TIME_TARGET_S = 0.1
MEMORY_TARGET_MB = 100.0
MB = 1024 * 1024
PACK = "oci://service-conda-packs@id19sfcrra6z/service_pack/cpu/General/1.0/generalml_p311"


def build_model(rows: int, cols: int = 100) -> tuple[Any, Any, Any]:
    """A scaler + brute-force k-NN pipeline: it keeps its training data, rows*cols*8 bytes."""
    import numpy as np
    import pandas as pd
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(rows, cols)), columns=[f"f{i}" for i in range(cols)])
    y = pd.Series(rng.integers(0, 2, rows), name="label")
    model = make_pipeline(StandardScaler(), KNeighborsClassifier(algorithm="brute")).fit(X, y)
    return model, X.head(100).copy(), y.head(100).copy()


def model_nbytes(model: Any) -> int:
    """Bytes held by the numpy arrays inside the model (its in-memory size, near enough)."""
    import numpy as np

    seen: set[int] = set()
    total = 0
    stack = [model]
    while stack:
        obj = stack.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        if isinstance(obj, np.ndarray):
            total += obj.nbytes
        elif isinstance(obj, dict):
            stack.extend(obj.values())
        elif isinstance(obj, (list, tuple)):
            stack.extend(obj)
        elif hasattr(obj, "__dict__"):
            stack.extend(vars(obj).values())
    return total


def _status_kb(field: str) -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def measure(op: Callable[[], Any]) -> tuple[float, float]:
    """(seconds, extra peak MB) of one call of ``op``."""
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")
    before = _status_kb("VmRSS")
    start = time.perf_counter()
    op()
    elapsed = time.perf_counter() - start
    peak = _status_kb("VmHWM")
    return elapsed, max(0, peak - before) / 1024


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--rows", type=int, default=200_000, help="training rows (x100 floats)")
    parser.add_argument("--dir", default=None, help="where to write (default: system temp)")
    args = parser.parse_args(argv)
    if not os.path.exists("/proc/self/clear_refs"):
        print("This benchmark needs Linux (/proc/self/clear_refs).", file=sys.stderr)
        return 2
    os.environ["OCI_CONFIG_FILE"] = os.path.join(tempfile.gettempdir(), "no-oci-config-here")
    warnings.simplefilter("ignore")

    import cloudpickle

    from ocimodel.pipeline import prepare_artifact

    model, X_sample, y_sample = build_model(args.rows)
    root = tempfile.mkdtemp(prefix="ocimodel-bench-", dir=args.dir)
    counter = iter(range(10**6))

    def bare_dump() -> None:
        path = os.path.join(root, f"bare-{next(counter)}.pkl")
        with open(path, "wb") as fh:
            cloudpickle.dump(model, fh)

    def prepare() -> None:
        prepare_artifact(
            model,
            os.path.join(root, f"artifact-{next(counter)}"),
            inference_conda_env=PACK,
            inference_python_version="3.11",
            X_sample=X_sample,
            y_sample=y_sample,
            use_case_type="binary_classification",
            introspect=True,
        )

    def clean() -> None:
        for name in os.listdir(root):
            path = os.path.join(root, name)
            shutil.rmtree(path) if os.path.isdir(path) else os.unlink(path)

    try:
        bare_dump()
        prepare()
        pickle_mb = os.path.getsize(os.path.join(root, "bare-0.pkl")) / MB
        clean()
        results: dict[str, list[tuple[float, float]]] = {"dump": [], "prepare": []}
        for run in range(args.runs):
            order = [("dump", bare_dump), ("prepare", prepare)]
            for name, op in order if run % 2 == 0 else reversed(order):
                results[name].append(measure(op))
                clean()
    finally:
        shutil.rmtree(root, ignore_errors=True)

    med = {
        k: (statistics.median(t for t, _ in v), max(m for _, m in v)) for k, v in results.items()
    }
    model_mb = model_nbytes(model) / MB
    overhead = med["prepare"][0] - med["dump"][0]
    extra_mb = med["prepare"][1]
    print(f"model: {type(model).__name__}, {model_mb:.1f} MB of arrays, pickle {pickle_mb:.1f} MB")
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"runs: {args.runs} (medians of time; max of extra peak memory); load avg {load}")
    print(f"cpus: {os.cpu_count()}; timings are noisy when other work shares them\n")
    print(f"{'operation':<24}{'time s':>10}{'extra peak MB':>16}")
    print(f"{'cloudpickle.dump':<24}{med['dump'][0]:>10.3f}{med['dump'][1]:>16.1f}")
    print(f"{'ocimodel prepare':<24}{med['prepare'][0]:>10.3f}{med['prepare'][1]:>16.1f}")
    ratio = med["prepare"][0] / med["dump"][0] if med["dump"][0] else float("inf")
    print(f"\nprepare / dump ratio: {ratio:.2f}x; overhead {overhead:+.3f} s")
    time_ok = overhead <= TIME_TARGET_S
    mem_ok = extra_mb <= MEMORY_TARGET_MB
    print(f"target overhead <= {TIME_TARGET_S} s: {'OK' if time_ok else 'MISSED'}")
    print(
        f"target peak <= model + {MEMORY_TARGET_MB:.0f} MB (extra {extra_mb:.1f} MB): "
        f"{'OK' if mem_ok else 'MISSED'}"
    )
    return 0 if time_ok and mem_ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
