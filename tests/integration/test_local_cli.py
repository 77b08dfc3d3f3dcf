"""The local OCI service as a process: CLI, config file, restart, signals, lifecycle hooks."""

from __future__ import annotations

import asyncio
import importlib.metadata
import os
import re
import signal
import socket
import stat
import subprocess
import sys
import threading
import uuid
from pathlib import Path

import oci
import pytest
from oci.data_science import DataScienceClient
from oci.data_science.models import CreateProjectDetails
from oci.object_storage import ObjectStorageClient
from oci.object_storage.models import CreateBucketDetails

from ocimodel.local.__main__ import main
from ocimodel.local.server import LocalOCI, LocalServiceError, build_service

ENDPOINT = re.compile(r"endpoint: (http://127\.0\.0\.1:\d+)")


def _start_cli(args: list[str], cwd: Path) -> tuple[subprocess.Popen, str, list[str]]:
    """Start the CLI and return it, its endpoint and the lines printed so far."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "ocimodel.local", *args],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: list[str] = []
    assert proc.stdout is not None
    for line in proc.stdout:
        lines.append(line)
        match = ENDPOINT.search(line)
        if match:
            return proc, match.group(1), lines
    proc.kill()
    raise AssertionError(f"no endpoint printed: {lines} {proc.stderr.read()}")


def _client(config_path: Path, endpoint: str, **kw) -> ObjectStorageClient:
    config = oci.config.from_file(str(config_path))
    return ObjectStorageClient(config, service_endpoint=endpoint, **kw)


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_cli_serves_with_its_config_and_stops_cleanly(tmp_path, sig):
    proc, endpoint, lines = _start_cli(["--port", "0"], cwd=tmp_path)
    try:
        config_path = tmp_path / ".ocimodel-local" / "config"
        assert str(config_path) in "".join(lines)
        config = oci.config.from_file(str(config_path))
        oci.config.validate_config(config)
        assert set(config) >= {"user", "tenancy", "fingerprint", "key_file", "region"}
        assert stat.S_IMODE(os.stat(config["key_file"]).st_mode) == 0o600
        client = _client(config_path, endpoint, retry_strategy=oci.retry.NoneRetryStrategy())
        assert client.get_namespace().data
    finally:
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "stopped" in out


@pytest.mark.slow
def test_cli_fault_flag_injects_faults(tmp_path):
    proc, endpoint, _ = _start_cli(
        [
            "--data-dir",
            str(tmp_path / "d"),
            "--fault",
            "operation=get_namespace,status=503,count=1",
        ],
        cwd=tmp_path,
    )
    try:
        client = _client(
            tmp_path / "d" / "config", endpoint, retry_strategy=oci.retry.NoneRetryStrategy()
        )
        with pytest.raises(oci.exceptions.ServiceError) as err:
            client.get_namespace()
        assert (err.value.status, err.value.code) == (503, "ServiceUnavailable")
        assert client.get_namespace().data
    finally:
        proc.terminate()
        proc.communicate(timeout=30)
    assert proc.returncode == 0


def test_cli_rejects_a_bad_fault_naming_it(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "ocimodel.local", "--data-dir", str(tmp_path),
         "--fault", "operation=get_modle,status=503"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2
    assert "get_modle" in done.stderr
    assert not (tmp_path / "config").exists()


def test_cli_rejects_a_busy_port(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        with pytest.raises(SystemExit) as exc:
            main(["--port", str(port), "--data-dir", str(tmp_path)])
    assert exc.value.code == 2


def test_console_script_is_declared():
    scripts = importlib.metadata.entry_points(group="console_scripts")
    [script] = [ep for ep in scripts if ep.name == "ocimodel-local"]
    assert script.value == "ocimodel.local.__main__:main"
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0


@pytest.mark.slow
def test_subprocess_restart_keeps_keys_users_and_resources(tmp_path):
    data_dir = tmp_path / "persist"
    with LocalOCI(data_dir=data_dir, mode="subprocess") as svc:
        assert svc.pid != os.getpid()
        first_config = dict(svc.config)
        client = svc.client(ObjectStorageClient)
        namespace = client.get_namespace().data
        bucket = f"keep-{uuid.uuid4().hex[:8]}"
        client.create_bucket(
            namespace, CreateBucketDetails(name=bucket, compartment_id=first_config["tenancy"])
        )
        client.put_object(namespace, bucket, "kept.txt", b"still here")
        other = svc.add_user()
        ds = svc.client(DataScienceClient)
        project = ds.create_project(
            CreateProjectDetails(compartment_id=first_config["tenancy"], display_name="kept")
        ).data
    assert svc.returncode == 0

    with LocalOCI(data_dir=data_dir, mode="thread") as svc:
        assert dict(svc.config) == first_config
        client = svc.client(ObjectStorageClient)
        assert client.get_namespace().data == namespace
        assert client.get_object(namespace, bucket, "kept.txt").data.content == b"still here"
        assert svc.client(DataScienceClient).get_project(project.id).data.display_name == "kept"
        stranger = svc.client(ObjectStorageClient, config=other)
        with pytest.raises(oci.exceptions.ServiceError) as err:
            stranger.get_object(namespace, bucket, "kept.txt")
        assert err.value.status == 404


def _alive(pid: int) -> bool:
    """True while a process exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signals_stop_the_model_servers_the_service_started(tmp_path, sig):
    from deployment_support import (
        ECHO_SCORE,
        create_and_wait,
        create_model,
        deployment_details,
        server_pids,
        zip_artifact,
    )
    from oci.data_science import DataScienceClient
    from oci.data_science.models import CreateProjectDetails

    svc = LocalOCI(data_dir=tmp_path / "svc", mode="subprocess").start()
    try:
        ds = svc.client(DataScienceClient)
        compartment = svc.config["tenancy"]
        project = ds.create_project(
            CreateProjectDetails(compartment_id=compartment, display_name="cli")
        ).data
        artifact = zip_artifact(tmp_path / "art", {"score.py": ECHO_SCORE})
        model_id = create_model(ds, compartment, project.id, artifact)
        dep_id, wr = create_and_wait(ds, deployment_details(compartment, project.id, model_id))
        assert wr.status == "SUCCEEDED"
        pids = server_pids(svc, dep_id)
        assert pids and all(_alive(pid) for pid in pids)
        os.kill(svc.pid, sig)
        assert svc._process.wait(60) == 0
    finally:
        svc.stop()
    assert svc.returncode == 0
    assert not any(_alive(pid) for pid in pids)


def test_thread_mode_stop_runs_shutdown_hooks(tmp_path):
    called = threading.Event()
    svc = LocalOCI(data_dir=tmp_path / "hooks").start()
    try:
        svc.state.extras.setdefault("shutdown", []).append(called.set)
    finally:
        svc.stop()
    assert called.is_set()
    assert svc.endpoint == ""


def test_lifespan_runs_startup_hooks_with_the_endpoint_known(tmp_path):
    state, app = build_service(tmp_path / "life")
    state.endpoint = "http://127.0.0.1:1"
    seen: list[str] = []

    async def async_hook() -> None:
        seen.append("async " + state.endpoint)

    state.extras["startup"] = [lambda: seen.append("sync " + state.endpoint), async_hook]
    state.extras["shutdown"] = [lambda: seen.append("down")]
    asyncio.run(_lifespan(app, lambda: seen.copy()))
    assert seen[:2] == ["sync http://127.0.0.1:1", "async http://127.0.0.1:1"]
    assert seen[2:] == ["down"]
    state.store.close()


async def _lifespan(app, snapshot) -> None:
    """Drive the ASGI lifespan protocol: startup, then shutdown."""
    inbox: asyncio.Queue = asyncio.Queue()
    sent: list[str] = []

    async def receive():
        return await inbox.get()

    async def send(message):
        sent.append(message["type"])

    await inbox.put({"type": "lifespan.startup"})
    task = asyncio.create_task(app({"type": "lifespan", "asgi": {"version": "3.0"}}, receive, send))
    while "lifespan.startup.complete" not in sent:
        await asyncio.sleep(0.01)
    assert len(snapshot()) == 2
    await inbox.put({"type": "lifespan.shutdown"})
    await task
    assert sent == ["lifespan.startup.complete", "lifespan.shutdown.complete"]


def test_own_temporary_data_dir_is_removed_on_stop():
    svc = LocalOCI().start()
    data_dir = svc.data_dir
    assert (data_dir / "config").exists()
    svc.stop()
    assert not data_dir.exists()


def test_busy_port_in_thread_mode_names_the_port(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        svc = LocalOCI(data_dir=tmp_path / "busy", port=port)
        with pytest.raises(LocalServiceError, match=str(port)):
            svc.start()
    assert svc.endpoint == "" and svc.state is None


def test_bad_mode_is_rejected():
    with pytest.raises(ValueError, match="thread"):
        LocalOCI(mode="process")
