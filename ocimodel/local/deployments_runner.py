"""Local model-server processes behind model deployments: unpack, start, health-check, stop.

Each deployment instance is a real ``python -m ocimodel.serve ARTIFACT_DIR`` process bound to a
free port on 127.0.0.1, started with the current interpreter.
"""

from __future__ import annotations

import itertools
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import httpx

START_TIMEOUT = 120.0
STOP_GRACE = 5.0
MAX_IN_FLIGHT_PER_INSTANCE = 16


class ArtifactError(Exception):
    """The model artifact cannot be unpacked (not a zip, unsafe paths, no score.py)."""


class ServerStartError(Exception):
    """A model server exited or never became healthy; ``details`` holds its stderr."""

    def __init__(self, message: str, details: str = ""):
        super().__init__(message)
        self.details = details


def unpack_artifact(zip_path: str | os.PathLike, dest: str | os.PathLike) -> Path:
    """Unpack a zipped artifact into ``dest`` (replaced whole); refuse entries escaping it.

    Extraction goes to a sibling temporary directory first, so a bad archive leaves nothing.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=dest.parent, prefix=".unpack-"))
    try:
        try:
            archive = zipfile.ZipFile(zip_path)
        except zipfile.BadZipFile as exc:
            raise ArtifactError(f"the model artifact is not a zip archive: {exc}") from exc
        with archive:
            for info in archive.infolist():
                _extract_member(archive, info, tmp)
        if not (tmp / "score.py").is_file():
            raise ArtifactError(
                "the model artifact has no score.py at its top level; zip the artifact "
                "directory's contents, not the directory itself."
            )
        if dest.exists():
            shutil.rmtree(dest)
        os.replace(tmp, dest)
        return dest
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _extract_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, root: Path) -> None:
    name = info.filename
    parts = PurePosixPath(name.replace("\\", "/")).parts
    if name.startswith(("/", "\\")) or ".." in parts or (parts and ":" in parts[0]):
        raise ArtifactError(f"the model artifact entry {name!r} escapes the artifact directory.")
    if stat.S_ISLNK(info.external_attr >> 16):
        raise ArtifactError(f"the model artifact entry {name!r} is a symbolic link.")
    target = root.joinpath(*parts) if parts else root
    if not target.resolve().is_relative_to(root.resolve()):
        raise ArtifactError(f"the model artifact entry {name!r} escapes the artifact directory.")
    if info.is_dir():
        target.mkdir(parents=True, exist_ok=True)
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    with archive.open(info) as src, open(target, "wb") as out:
        shutil.copyfileobj(src, out, 1 << 20)


@dataclass
class ModelServer:
    """One running model-server process."""

    process: subprocess.Popen
    port: int
    log_path: Path
    in_flight: int = 0

    @property
    def pid(self) -> int:
        """The operating-system process id."""
        return self.process.pid

    @property
    def url(self) -> str:
        """Base URL of the server."""
        return f"http://127.0.0.1:{self.port}"

    def alive(self) -> bool:
        """Whether the process is still running."""
        return self.process.poll() is None


@dataclass
class _Group:
    servers: list[ModelServer] = field(default_factory=list)
    cursor: itertools.count = field(default_factory=itertools.count)


class ModelServers:
    """Every model-server process of one local service, grouped by deployment id."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)
        self._lock = threading.Lock()
        self._groups: dict[str, _Group] = {}
        self._closed = threading.Event()

    def start(
        self,
        deployment_id: str,
        artifact_dir: Path,
        count: int,
        env: dict[str, str] | None = None,
        timeout: float = START_TIMEOUT,
    ) -> list[ModelServer]:
        """Start ``count`` servers for a deployment and wait until all are healthy.

        They replace the deployment's current servers only once healthy (a rolling swap), so a
        failed start leaves the running ones in place. Raises :class:`ServerStartError`.
        """
        if self._closed.is_set():
            raise ServerStartError("the service is shutting down.")
        run_dir = self.root / deployment_id / "run"
        run_dir.mkdir(parents=True, exist_ok=True)
        launched: list[tuple[subprocess.Popen, Path, Path]] = []
        try:
            for _ in range(count):
                launched.append(self._launch(artifact_dir, run_dir, env))
            servers = [self._await_healthy(p, pf, log, timeout) for p, pf, log in launched]
        except BaseException:
            for proc, _, _ in launched:
                _terminate(proc)
            raise
        with self._lock:
            if self._closed.is_set():
                _stop_servers(servers)
                raise ServerStartError("the service is shutting down.")
            old = self._groups.get(deployment_id)
            self._groups[deployment_id] = _Group(servers)
        if old:
            _stop_servers(old.servers)
        return servers

    def _launch(
        self, artifact_dir: Path, run_dir: Path, env: dict[str, str] | None
    ) -> tuple[subprocess.Popen, Path, Path]:
        fd, port_file = tempfile.mkstemp(dir=run_dir, suffix=".port")
        os.close(fd)
        os.unlink(port_file)
        log_path = Path(port_file).with_suffix(".log")
        full_env = {**os.environ, **(env or {}), "PYTHONUNBUFFERED": "1"}
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "ocimodel.serve",
                    str(artifact_dir),
                    "--port",
                    "0",
                    "--port-file",
                    port_file,
                    "--parent-pid",
                    str(os.getpid()),
                ],
                cwd=str(artifact_dir),
                env=full_env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return proc, Path(port_file), log_path

    def _await_healthy(
        self, proc: subprocess.Popen, port_file: Path, log_path: Path, timeout: float
    ) -> ModelServer:
        deadline = time.monotonic() + timeout
        port: int | None = None
        while time.monotonic() < deadline and not self._closed.is_set():
            code = proc.poll()
            if code is not None:
                raise ServerStartError(
                    f"the model server exited with status {code} while loading the model.",
                    _tail(log_path),
                )
            if port is None and port_file.exists():
                port = int(port_file.read_text())
            if port is not None and _healthy(port):
                return ModelServer(proc, port, log_path)
            time.sleep(0.05)
        if self._closed.is_set():
            raise ServerStartError("the service is shutting down.")
        raise ServerStartError(
            f"the model server did not become healthy within {timeout:.0f} s.", _tail(log_path)
        )

    def stop(self, deployment_id: str) -> list[int]:
        """Stop a deployment's servers (SIGTERM, then SIGKILL after a grace); return their pids."""
        with self._lock:
            group = self._groups.pop(deployment_id, None)
        if group is None:
            return []
        _stop_servers(group.servers)
        return [s.pid for s in group.servers]

    def close(self) -> None:
        """Stop every server and refuse to start more."""
        self._closed.set()
        self.stop_all()

    def stop_all(self) -> None:
        """Stop every server of this service."""
        with self._lock:
            groups, self._groups = list(self._groups.values()), {}
        for group in groups:
            _stop_servers(group.servers)

    def servers(self, deployment_id: str) -> list[ModelServer]:
        """The deployment's servers (running or not)."""
        with self._lock:
            group = self._groups.get(deployment_id)
            return list(group.servers) if group else []

    def pick(self, deployment_id: str) -> ModelServer | None:
        """Round-robin over live servers with spare capacity; None if there are none."""
        with self._lock:
            group = self._groups.get(deployment_id)
            if group is None or not group.servers:
                return None
            n = len(group.servers)
            start = next(group.cursor)
            for i in range(n):
                server = group.servers[(start + i) % n]
                if server.alive() and server.in_flight < MAX_IN_FLIGHT_PER_INSTANCE:
                    server.in_flight += 1
                    return server
        return None

    def release(self, server: ModelServer) -> None:
        """Mark one request to ``server`` as finished."""
        with self._lock:
            server.in_flight = max(0, server.in_flight - 1)

    def has_live(self, deployment_id: str) -> bool:
        """Whether any server of the deployment is running."""
        return any(s.alive() for s in self.servers(deployment_id))


def _healthy(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/health", timeout=2.0).status_code == 200
    except httpx.HTTPError:
        return False


def _tail(path: Path, limit: int = 20000) -> str:
    try:
        data = path.read_bytes()
    except OSError:
        return ""
    return data[-limit:].decode("utf-8", errors="replace").strip()


def _terminate(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        try:
            proc.send_signal(signal.SIGTERM)
        except ProcessLookupError:
            pass
    try:
        proc.wait(STOP_GRACE)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _stop_servers(servers: list[ModelServer]) -> None:
    for server in servers:
        if server.alive():
            try:
                server.process.send_signal(signal.SIGTERM)
            except ProcessLookupError:
                pass
    for server in servers:
        _terminate(server.process)
