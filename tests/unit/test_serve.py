"""The local model server (ocimodel.serve) and safe artifact unpacking for deployments."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
import time
import zipfile
from pathlib import Path

import httpx
import pytest

from ocimodel.local.deployments_runner import (
    ArtifactError,
    ModelServers,
    ServerStartError,
    unpack_artifact,
)
from ocimodel.serve import (
    LOAD_FAILED_EXIT,
    MAX_PAYLOAD_BYTES,
    ScoreLoadError,
    build_app,
    load_score_module,
)


class AppClient:
    """Calls an ASGI app in this process through httpx's ASGI transport."""

    def __init__(self, app):
        self.app = app

    def request(self, method: str, url: str, **kwargs) -> httpx.Response:
        async def call() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://serve") as client:
                return await client.request(method, url, **kwargs)

        return asyncio.run(call())

    def get(self, url: str, **kwargs) -> httpx.Response:
        return self.request("GET", url, **kwargs)

    def post(self, url: str, **kwargs) -> httpx.Response:
        return self.request("POST", url, **kwargs)


SCORE = """
import json, os
from helper_module import scale

_model = None

def load_model():
    global _model
    with open(os.path.join(os.path.dirname(__file__), "weights.json")) as fh:
        _model = json.load(fh)
    return _model

def predict(data, model=None):
    model = model or _model or load_model()
    if isinstance(data, (bytes, bytearray)):
        return {"prediction": len(data), "kind": "bytes"}
    if data == "boom":
        raise ValueError("bad input boom")
    return {"prediction": [scale(x, model["w"]) for x in data["x"]], "kind": "json"}
"""


@pytest.fixture(autouse=True)
def _restore_import_state():
    """load_score_module puts the artifact on sys.path and registers ``score``; undo it."""
    path, modules = list(sys.path), set(sys.modules)
    yield
    sys.path[:] = path
    for name in set(sys.modules) - modules:
        del sys.modules[name]


def _artifact(tmp_path: Path, score: str = SCORE) -> Path:
    art = tmp_path / "artifact"
    art.mkdir()
    (art / "score.py").write_text(textwrap.dedent(score))
    (art / "helper_module.py").write_text("def scale(x, w):\n    return x * w\n")
    (art / "weights.json").write_text('{"w": 3}')
    return art


def test_predict_json_and_bytes_and_errors(tmp_path):
    module = load_score_module(_artifact(tmp_path))
    module.load_model()
    client = AppClient(build_app(module))
    assert client.get("/health").json()["status"] == "ok"
    answer = client.post("/predict", json={"x": [1, 2]})
    assert answer.status_code == 200
    assert answer.json() == {"prediction": [3, 6], "kind": "json"}
    raw = client.post(
        "/predict", content=b"\x00\x01\x02", headers={"content-type": "application/octet-stream"}
    )
    assert raw.json() == {"prediction": 3, "kind": "bytes"}
    failing = client.post("/predict", json="boom")
    assert failing.status_code == 500
    assert "bad input boom" in failing.json()["message"]
    bad_json = client.post(
        "/predict", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert bad_json.status_code == 400
    assert bad_json.json()["code"] == "InvalidParameter"


def test_numpy_results_are_serialised(tmp_path):
    score = """
    import numpy as np
    def load_model():
        return None
    def predict(data):
        return {"prediction": np.arange(3) * data["k"], "score": np.float64(0.5)}
    """
    module = load_score_module(_artifact(tmp_path, score))
    client = AppClient(build_app(module))
    assert client.post("/predict", json={"k": 2}).json() == {
        "prediction": [0, 2, 4],
        "score": 0.5,
    }


def test_missing_functions_are_named(tmp_path):
    art = _artifact(tmp_path, "def load_model():\n    return 1\n")
    with pytest.raises(ScoreLoadError, match="predict"):
        load_score_module(art)
    with pytest.raises(ScoreLoadError, match="score.py"):
        load_score_module(tmp_path / "nowhere")


def test_load_model_failure_exits_with_traceback(tmp_path):
    score = """
    def load_model():
        raise RuntimeError("weights are corrupt")
    def predict(data):
        return data
    """
    art = _artifact(tmp_path, score)
    done = subprocess.run(
        [sys.executable, "-m", "ocimodel.serve", str(art)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == LOAD_FAILED_EXIT
    assert "Traceback" in done.stderr
    assert "RuntimeError: weights are corrupt" in done.stderr


def test_server_process_serves_and_stops(tmp_path):
    art = _artifact(tmp_path)
    port_file = tmp_path / "port"
    proc = subprocess.Popen(
        [sys.executable, "-m", "ocimodel.serve", str(art), "--port-file", str(port_file)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 60
        while not port_file.exists():
            assert proc.poll() is None, proc.stderr.read().decode()
            assert time.monotonic() < deadline, "server never wrote its port file"
            time.sleep(0.05)
        base = f"http://127.0.0.1:{int(port_file.read_text())}"
        health = httpx.get(f"{base}/health", timeout=10)
        assert health.json()["pid"] == proc.pid
        answer = httpx.post(f"{base}/predict", json={"x": [5]}, timeout=10)
        assert answer.json()["prediction"] == [15]
    finally:
        proc.terminate()
        proc.wait(10)
    assert proc.returncode is not None


def _zip(path: Path, entries: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    return path


def test_unpack_artifact_extracts_and_replaces(tmp_path):
    dest = tmp_path / "deploy" / "artifact"
    unpack_artifact(_zip(tmp_path / "a.zip", {"score.py": b"x", "sub/model.pkl": b"m"}), dest)
    assert (dest / "sub" / "model.pkl").read_bytes() == b"m"
    unpack_artifact(_zip(tmp_path / "b.zip", {"score.py": b"y"}), dest)
    assert (dest / "score.py").read_bytes() == b"y"
    assert not (dest / "sub").exists()


@pytest.mark.parametrize("evil", ["../escape.py", "/abs/path.py", "a/../../escape.py"])
def test_unpack_artifact_refuses_escaping_entries(tmp_path, evil):
    archive = _zip(tmp_path / "evil.zip", {"score.py": b"x", evil: b"pwned"})
    dest = tmp_path / "deploy" / "artifact"
    with pytest.raises(ArtifactError, match="escapes"):
        unpack_artifact(archive, dest)
    assert not dest.exists()
    assert not (tmp_path / "escape.py").exists()
    assert list((tmp_path / "deploy").iterdir()) == []


def test_unpack_artifact_requires_top_level_score(tmp_path):
    archive = _zip(tmp_path / "nested.zip", {"artifact/score.py": b"x"})
    with pytest.raises(ArtifactError, match="top level"):
        unpack_artifact(archive, tmp_path / "out")
    (tmp_path / "junk.zip").write_bytes(b"not a zip")
    with pytest.raises(ArtifactError, match="not a zip"):
        unpack_artifact(tmp_path / "junk.zip", tmp_path / "out")


def test_model_servers_start_round_robin_and_stop(tmp_path):
    servers = ModelServers(tmp_path / "runs")
    started = servers.start("dep1", _artifact(tmp_path), 2)
    try:
        assert len({s.pid for s in started}) == 2
        first, second = servers.pick("dep1"), servers.pick("dep1")
        assert {first.pid, second.pid} == {s.pid for s in started}
        servers.release(first)
        servers.release(second)
    finally:
        pids = servers.stop("dep1")
    assert sorted(pids) == sorted(s.pid for s in started)
    assert all(not s.alive() for s in started)
    assert servers.pick("dep1") is None


def test_model_servers_report_load_failure(tmp_path):
    score = """
    def load_model():
        raise ImportError("no module named sklearn_missing")
    def predict(data):
        return data
    """
    servers = ModelServers(tmp_path / "runs")
    with pytest.raises(ServerStartError) as info:
        servers.start("dep2", _artifact(tmp_path, score), 1)
    assert "ImportError: no module named sklearn_missing" in info.value.details
    assert servers.servers("dep2") == []


def _running(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_server_exits_when_its_parent_dies(tmp_path):
    art = _artifact(tmp_path)
    port_file = tmp_path / "port"
    launcher = (
        "import os, subprocess, sys\n"
        "p = subprocess.Popen([sys.executable, '-m', 'ocimodel.serve', sys.argv[1],\n"
        "    '--port-file', sys.argv[2], '--parent-pid', str(os.getpid())])\n"
        "print(p.pid, flush=True)\n"
        "import time\n"
        "while not os.path.exists(sys.argv[2]):\n"
        "    time.sleep(0.05)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", launcher, str(art), str(port_file)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    server_pid = int(done.stdout.split()[0])
    deadline = time.monotonic() + 30
    while _running(server_pid):
        assert time.monotonic() < deadline, "the orphaned model server kept running"
        time.sleep(0.1)


def _echo_app(tmp_path: Path):
    score = """
    def load_model():
        return None
    def predict(data):
        return {"size": len(data)}
    """
    return build_app(load_score_module(_artifact(tmp_path, score)))


def test_chunked_payload_over_the_limit_is_refused_while_streaming(tmp_path):
    """A body without Content-Length is read only up to the limit, then answered with 413."""
    chunk = b"x" * (1024 * 1024)
    total_chunks = 3 * MAX_PAYLOAD_BYTES // len(chunk)
    pulled = []

    async def body():
        for index in range(total_chunks):
            pulled.append(index)
            yield chunk

    answer = AppClient(_echo_app(tmp_path)).post(
        "/predict", content=body(), headers={"content-type": "application/octet-stream"}
    )
    assert answer.status_code == 413
    assert answer.json()["code"] == "PayloadTooLarge"
    assert len(pulled) <= MAX_PAYLOAD_BYTES // len(chunk) + 2 < total_chunks


def test_declared_length_over_the_limit_is_refused_unread(tmp_path):
    """A Content-Length above the limit gets 413 before any of the body is read."""
    app = _echo_app(tmp_path)
    received = []
    sent = []

    chunks = MAX_PAYLOAD_BYTES // (1024 * 1024) + 2

    async def receive():
        received.append(1)
        more = len(received) < chunks
        return {"type": "http.request", "body": b"x" * (1024 * 1024), "more_body": more}

    async def send(message):
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/predict",
        "raw_path": b"/predict",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"content-length", str(MAX_PAYLOAD_BYTES + 1).encode())],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
    }
    asyncio.run(app(scope, receive, send))
    assert sent[0]["status"] == 413
    assert received == []


def test_payload_at_the_limit_is_accepted(tmp_path):
    body = b"y" * MAX_PAYLOAD_BYTES
    answer = AppClient(_echo_app(tmp_path)).post(
        "/predict", content=body, headers={"content-type": "application/octet-stream"}
    )
    assert answer.status_code == 200
    assert answer.json() == {"size": MAX_PAYLOAD_BYTES}


class _FailingSecondLaunch(ModelServers):
    """Launches real servers, but the second launch raises as a failed Popen would."""

    def __init__(self, root):
        super().__init__(root)
        self.procs = []

    def _launch(self, artifact_dir, run_dir, env):
        if len(self.procs) == 1:
            raise OSError("cannot start another process")
        launched = super()._launch(artifact_dir, run_dir, env)
        self.procs.append(launched[0])
        return launched


def test_failed_launch_terminates_servers_already_started(tmp_path):
    servers = _FailingSecondLaunch(tmp_path / "runs")
    with pytest.raises(OSError, match="cannot start another process"):
        servers.start("dep1", _artifact(tmp_path), 3)
    assert len(servers.procs) == 1
    proc = servers.procs[0]
    try:
        assert proc.wait(timeout=30) is not None
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
