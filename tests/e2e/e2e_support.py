"""Processes of the end-to-end tests: commands in their own process groups (so everything they
start can be stopped), the Prefect command line, the worker, and the stack they share.

Importable from the tests of this folder (pytest puts it on ``sys.path``).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

REPO = Path(__file__).resolve().parents[2]
WORK_POOL = "ocimodel-process"
"""The work pool deployments/prefect.yaml names."""
SERVER_START_TIMEOUT = 120.0
WORKER_QUERY_SECONDS = "2"
DROPPED_ENV = (
    "PREFECT_API_URL",
    "PREFECT_API_KEY",
    "PREFECT_PROFILE",
    "PREFECT_HOME",
    "PREFECT_UI_API_URL",
    "OCI_CONFIG_FILE",
    "OCI_CONFIG_PROFILE",
    "OCIMODEL_SERVICE_ENDPOINT",
    "OCI_IAM_TYPE",
    "PROJECT_OCID",
    "PROJECT_COMPARTMENT_OCID",
)


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Process:
    """A command running in its own process group, its output in a log file."""

    name: str
    popen: subprocess.Popen
    log: Path

    def tail(self, limit: int = 4000) -> str:
        """The end of its log."""
        try:
            return self.log.read_text(errors="replace")[-limit:]
        except OSError:
            return ""

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM to the whole group, then SIGKILL to what is left."""
        for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.popen.pid, sig)
            try:
                self.popen.wait(wait)
            except subprocess.TimeoutExpired:
                continue
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.popen.pid, signal.SIGKILL)  # children that outlived the leader
            return


def start(name: str, cmd: list[str], env: Mapping[str, str], logs: Path) -> Process:
    """Starts ``cmd`` in a new session (so its group can be killed whole), logging to a file."""
    log = logs / f"{name}.log"
    with open(log, "ab") as out:
        popen = subprocess.Popen(
            cmd,
            cwd=REPO,
            env=dict(env),
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    return Process(name, popen, log)


def prefect_cli(args: list[str], env: Mapping[str, str], timeout: float = 120) -> str:
    """Runs the ``prefect`` command line from the repository root; its output, or a failure
    naming it."""
    done = subprocess.run(
        [sys.executable, "-m", "prefect", *args],
        cwd=REPO,
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        start_new_session=True,
    )
    if done.returncode != 0:
        pytest.fail(f"prefect {' '.join(args)} exited {done.returncode}:\n{done.stdout[-3000:]}")
    return done.stdout


@dataclass
class Stack:
    """What the module's tests share: the server, the local OCI, the worker and what the
    tests found along the way."""

    api_url: str
    ui_url: str
    env: dict[str, str]
    """The environment of the Prefect CLI and the worker."""
    local: Any
    """The local OCI service (an ocimodel.local.server.LocalOCI in subprocess mode)."""
    logs: Path
    processes: dict[str, Process] = field(default_factory=dict)
    found: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> str:
        """The last log lines of every process, for a failure message."""
        return "\n".join(f"--- {p.name} ---\n{p.tail()}" for p in self.processes.values())


def wait_healthy(url: str, process: Process, timeout: float) -> float:
    """Seconds until ``url`` answers 200; fails naming the process if it never does."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if process.popen.poll() is not None:
            pytest.fail(f"{process.name} exited {process.popen.returncode}:\n{process.tail()}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=2).status_code == 200:
                return time.monotonic() - started
        time.sleep(0.25)
    pytest.fail(f"{process.name} did not answer {url} in {timeout:.0f} s:\n{process.tail()}")


def start_worker(stack: Stack) -> Process:
    """A process worker on the deployments' pool, polling every few seconds."""
    env = {**stack.env, "PREFECT_WORKER_QUERY_SECONDS": WORKER_QUERY_SECONDS}
    worker = start(
        "worker",
        [sys.executable, "-m", "prefect", "worker", "start", "--pool", WORK_POOL],
        env,
        stack.logs,
    )
    stack.processes["worker"] = worker
    return worker
