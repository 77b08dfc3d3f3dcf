"""Run the local OCI service: in a thread of this process or as a subprocess.

:class:`LocalOCI` starts the service on a loopback port, hands out a config, signer and clients
pointed at it, manages fault rules, users and tokens through the signed admin API, and stops it
(running every shutdown hook, so model servers it started stop too).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import oci
import requests
import uvicorn

from .app import create_app
from .deployments_predict import PredictFastPath
from .faults import ENV_VAR as FAULTS_ENV_VAR
from .faults import FaultRule, faults_of
from .http11 import one_write_http_protocol
from .keys import (
    PROFILE,
    ApiKey,
    KeyRing,
    fingerprint_of,
    generate_private_key,
    keyring_of,
    private_pem,
    public_pem,
    write_identity,
)
from .state import ServiceState

HOST = "127.0.0.1"
DEFAULT_REGION = "us-ashburn-1"
ENDPOINT_LINE = re.compile(r"endpoint: (http://127\.0\.0\.1:\d+)")
USERS_DIR = "users"

FaultSpec = FaultRule | Mapping[str, Any] | str


class LocalServiceError(RuntimeError):
    """The local service could not start, or an admin call to it failed."""


def bind_socket(port: int = 0) -> socket.socket:
    """A listening loopback TCP socket with TCP_NODELAY (no 40 ms Nagle/delayed-ACK stalls)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind((HOST, port))
        sock.listen(2048)
    except OSError:
        sock.close()
        raise
    return sock


def uvicorn_config(app) -> uvicorn.Config:
    """uvicorn settings of the service: quiet, lifespan on, bounded graceful shutdown.

    httptools' protocol, each answer in one write
    (:func:`~ocimodel.local.http11.one_write_http_protocol`); no proxy-header middleware runs:
    nothing stands in front of a loopback service.
    """
    return uvicorn.Config(
        app,
        log_level="warning",
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=5,
        timeout_keep_alive=30,
        http=one_write_http_protocol(),
        proxy_headers=False,
    )


def fast_retry_strategy(max_attempts: int = 5) -> oci.retry.RetryStrategy:
    """An SDK retry strategy like the default (5xx, 429, connection errors) but with short waits."""
    return oci.retry.RetryStrategyBuilder(
        max_attempts_check=True,
        max_attempts=max_attempts,
        total_elapsed_time_check=True,
        total_elapsed_time_seconds=60,
        retry_base_sleep_time_seconds=0.05,
        retry_exponential_growth_factor=2,
        retry_max_wait_between_calls_seconds=0.5,
        backoff_type=oci.retry.BACKOFF_FULL_JITTER_VALUE,
    ).get_retry_strategy()


def build_service(
    data_dir: Path, region: str = DEFAULT_REGION, faults: Iterable[FaultSpec] = ()
) -> tuple[ServiceState, Any]:
    """The state and ASGI app of a service over ``data_dir`` (config and keys created or reused)."""
    state = ServiceState(data_dir=Path(data_dir), region=region)
    app = PredictFastPath(create_app(state), state)
    rules = list(faults)
    if rules:
        faults_of(state).add(rules)
    return state, app


class LocalOCI:
    """A running local OCI service and everything a client needs to talk to it."""

    def __init__(
        self,
        data_dir: str | os.PathLike | None = None,
        port: int = 0,
        mode: str = "thread",
        faults: Iterable[FaultSpec] | None = None,
        region: str = DEFAULT_REGION,
        startup_timeout: float = 60.0,
    ):
        if mode not in ("thread", "subprocess"):
            raise ValueError(f"mode must be 'thread' or 'subprocess', got {mode!r}")
        self._own_dir = data_dir is None
        self.data_dir = Path(data_dir or tempfile.mkdtemp(prefix="ocimodel-local-")).resolve()
        self.port = port
        self.mode = mode
        self.region = region
        self.startup_timeout = startup_timeout
        self._initial_faults = [
            r.public() if isinstance(r, FaultRule) else r for r in (faults or [])
        ]
        self.endpoint = ""
        self.profile = PROFILE
        self.state: ServiceState | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._thread_error: BaseException | None = None
        self._process: subprocess.Popen | None = None
        self._config: dict | None = None
        self._session: requests.Session | None = None
        self._signer: oci.signer.Signer | None = None
        self.returncode: int | None = None  # exit status of the last subprocess

    # --- lifecycle ----------------------------------------------------------------------------

    def start(self) -> LocalOCI:
        """Start the service and wait until it answers a signed health check."""
        if self.endpoint:
            return self
        self.data_dir.mkdir(parents=True, exist_ok=True)
        try:
            if self.mode == "thread":
                self._start_thread()
            else:
                self._start_subprocess()
            self._wait_healthy()
        except BaseException:
            self.stop()
            raise
        return self

    def _start_thread(self) -> None:
        state, app = build_service(self.data_dir, self.region, self._initial_faults)
        self.state = state
        try:
            sock = bind_socket(self.port)
        except OSError as exc:
            raise LocalServiceError(
                f"Cannot listen on {HOST}:{self.port} ({exc}); pass port=0 for a free port."
            ) from exc
        port = sock.getsockname()[1]
        state.endpoint = f"http://{HOST}:{port}"
        server = uvicorn.Server(uvicorn_config(app))

        def run() -> None:
            loop = asyncio.new_event_loop()
            try:
                loop.run_until_complete(server.serve(sockets=[sock]))
            except BaseException as exc:  # reported by start()
                self._thread_error = exc
            finally:
                loop.close()
                sock.close()

        self._server = server
        self._thread = threading.Thread(target=run, name=f"ocimodel-local-{port}", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + self.startup_timeout
        while not server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                cause = self._thread_error or "a startup hook failed (see the log above)"
                raise LocalServiceError(f"The local OCI service did not start: {cause!r}")
            time.sleep(0.005)
        self.endpoint = state.endpoint

    def _start_subprocess(self) -> None:
        log_path = self.data_dir / "service.log"
        env = dict(os.environ)
        if self._initial_faults:
            env[FAULTS_ENV_VAR] = json.dumps(self._initial_faults)
        cmd = [
            sys.executable,
            "-m",
            "ocimodel.local",
            "--port",
            str(self.port),
            "--data-dir",
            str(self.data_dir),
            "--region",
            self.region,
            "--parent-pid",
            str(os.getpid()),
        ]
        log = open(log_path, "ab")
        self._log = log
        self._process = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=log, env=env, start_new_session=True
        )
        found: list[str] = []
        ready = threading.Event()

        def pump() -> None:
            assert self._process is not None and self._process.stdout is not None
            for raw in self._process.stdout:
                log.write(raw)
                log.flush()
                match = ENDPOINT_LINE.search(raw.decode(errors="replace"))
                if match and not found:
                    found.append(match.group(1))
                    ready.set()
            ready.set()

        threading.Thread(target=pump, name="ocimodel-local-stdout", daemon=True).start()
        if not ready.wait(self.startup_timeout) or not found:
            raise LocalServiceError(
                f"The local OCI service subprocess did not print its endpoint; see {log_path}:\n"
                + _tail(log_path)
            )
        self.endpoint = found[0]

    def _wait_healthy(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        last: Exception | None = None
        while time.monotonic() < deadline:
            if self._process is not None and self._process.poll() is not None:
                break
            try:
                self.admin("GET", "/_admin/health", timeout=5)
                return
            except (requests.RequestException, LocalServiceError, OSError) as exc:
                last = exc
                time.sleep(0.05)
        raise LocalServiceError(f"The local OCI service at {self.endpoint} is not healthy: {last}")

    @property
    def pid(self) -> int:
        """The process id serving requests (this process in thread mode)."""
        return self._process.pid if self._process is not None else os.getpid()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the service gracefully (shutdown hooks run); idempotent."""
        if self._session is not None:
            self._session.close()
            self._session = None
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout)
            if self._thread.is_alive():
                self._server.force_exit = True
                self._thread.join(5)
        if self.state is not None:
            self.state.store.close()
        if self._process is not None:
            if self._process.poll() is None:
                self._process.send_signal(signal.SIGTERM)
                try:
                    self._process.wait(timeout)
                except subprocess.TimeoutExpired:
                    self._process.kill()
                    self._process.wait(10)
            self.returncode = self._process.returncode
            self._log.close()
        self._server = self._thread = self._process = None
        self.state = None
        self.endpoint = ""
        self._config = None
        self._signer = None
        if self._own_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def __enter__(self) -> LocalOCI:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- credentials and clients --------------------------------------------------------------

    @property
    def config_path(self) -> Path:
        """The OCI config file of the local tenancy's user (profile DEFAULT)."""
        return self.data_dir / "config"

    @property
    def config(self) -> dict:
        """The config dict of the local user, as ``oci.config.from_file`` reads it."""
        if self._config is None:
            self._config = oci.config.from_file(str(self.config_path), self.profile)
        return self._config

    def signer(self, config: Mapping[str, Any] | None = None) -> oci.signer.Signer:
        """An API-key signer for ``config`` (default: the local user; built once, it is slow)."""
        if config is None:
            if self._signer is None:
                self._signer = self.signer(self.config)
            return self._signer
        cfg = config
        return oci.signer.Signer(
            tenancy=cfg["tenancy"],
            user=cfg["user"],
            fingerprint=cfg["fingerprint"],
            private_key_file_location=cfg["key_file"],
        )

    def auth(self, config: Mapping[str, Any] | None = None) -> dict:
        """An ocimodel auth dict (``config``, ``signer``, ``client_kwargs``) for this service."""
        cfg = dict(config or self.config)
        return {
            "config": cfg,
            "signer": self.signer(config),
            "client_kwargs": {"service_endpoint": self.endpoint},
        }

    def client(self, client_cls, config: Mapping[str, Any] | None = None, **kwargs):
        """An oci client pointed at the service, with fast retries and no circuit breaker."""
        kwargs.setdefault("service_endpoint", self.endpoint)
        kwargs.setdefault("retry_strategy", fast_retry_strategy())
        kwargs.setdefault(
            "circuit_breaker_strategy", oci.circuit_breaker.NoCircuitBreakerStrategy()
        )
        return client_cls(dict(config or self.config), **kwargs)

    def env(self) -> dict[str, str]:
        """Environment variables that point ocimodel's default auth at this service."""
        return {
            "OCIMODEL_SERVICE_ENDPOINT": self.endpoint,
            "OCI_CONFIG_FILE": str(self.config_path),
            "OCI_CONFIG_PROFILE": self.profile,
        }

    # --- admin API ----------------------------------------------------------------------------

    def admin(self, method: str, path: str, body: Any = None, timeout: float = 30) -> Any:
        """Call the signed admin API; return its JSON, or raise LocalServiceError."""
        if not self.endpoint:
            raise LocalServiceError("The local OCI service is not running; call start() first.")
        if self._session is None:
            self._session = requests.Session()
            self._session.trust_env = False
        resp = self._session.request(
            method,
            self.endpoint + path,
            json=body,
            auth=self.signer(),
            timeout=timeout,
        )
        if resp.status_code >= 300:
            raise LocalServiceError(f"{method} {path} answered {resp.status_code}: {resp.text}")
        return resp.json() if resp.content else None

    def set_faults(self, *rules: FaultSpec) -> list[dict]:
        """Replace the fault rules (dicts, FaultRule or ``k=v,...`` strings); return them."""
        return self.admin("PUT", "/_admin/faults", {"rules": _rule_dicts(rules)})["rules"]

    def add_faults(self, *rules: FaultSpec) -> list[dict]:
        """Add fault rules after the existing ones; return all rules."""
        return self.admin("POST", "/_admin/faults", {"rules": _rule_dicts(rules)})["rules"]

    def clear_faults(self) -> None:
        """Remove every fault rule."""
        self.admin("DELETE", "/_admin/faults")

    def faults(self) -> list[dict]:
        """The active fault rules, each with how many times it has hit (``applied``)."""
        return self.admin("GET", "/_admin/faults")["rules"]

    def add_user(self, tenancy: str | None = None) -> dict:
        """Create a user (in a new tenancy unless given) and return its OCI config dict.

        Its config file and key are written under ``data_dir/users/``; the file is
        ``Path(cfg["key_file"]).parent / "config"``.
        """
        key = generate_private_key()
        body = {"publicKey": public_pem(key)}
        if tenancy:
            body["tenancyId"] = tenancy
        answer = self.admin("POST", "/_admin/users", body)
        api_key = ApiKey(
            answer["tenancyId"], answer["userId"], fingerprint_of(key), key.public_key()
        )
        directory = self.data_dir / USERS_DIR / answer["userId"].rsplit(".", 1)[-1][:16]
        identity = write_identity(directory, api_key, key, answer.get("region", self.region))
        return oci.config.from_file(str(identity.config_path), PROFILE)

    def mint_session_token(
        self,
        public_key_pem: str,
        tenancy: str | None = None,
        user: str | None = None,
        ttl: int = 3600,
    ) -> str:
        """A session token (``ST$`` auth) bound to ``public_key_pem``."""
        body: dict[str, Any] = {"publicKey": public_key_pem, "ttlSeconds": ttl}
        if tenancy:
            body["tenancyId"] = tenancy
        if user:
            body["userId"] = user
        return self.admin("POST", "/_admin/tokens/session", body)["token"]

    def session_signer(self, ttl: int = 3600) -> oci.auth.signers.SecurityTokenSigner:
        """A SecurityTokenSigner for the local user with a freshly minted session token."""
        key = generate_private_key()
        token = self.mint_session_token(public_pem(key), ttl=ttl)
        return oci.auth.signers.SecurityTokenSigner(token, key)

    def mint_resource_principal_token(
        self,
        public_key_pem: str,
        tenancy: str | None = None,
        compartment: str | None = None,
        resource_id: str | None = None,
        ttl: int = 3600,
    ) -> str:
        """A resource-principal session token (RPST) bound to ``public_key_pem``."""
        body: dict[str, Any] = {"publicKey": public_key_pem, "ttlSeconds": ttl}
        for name, value in (
            ("tenancyId", tenancy),
            ("compartmentId", compartment),
            ("resourceId", resource_id),
        ):
            if value:
                body[name] = value
        return self.admin("POST", "/_admin/tokens/resource-principal", body)["token"]

    def resource_principal_env(
        self,
        tenancy: str | None = None,
        compartment: str | None = None,
        resource_id: str | None = None,
        ttl: int = 3600,
    ) -> dict[str, str]:
        """Environment for the SDK's resource principal v2.2 signer, plus the endpoint."""
        key = generate_private_key()
        token = self.mint_resource_principal_token(
            public_pem(key), tenancy, compartment, resource_id, ttl
        )
        return {
            "OCI_RESOURCE_PRINCIPAL_VERSION": "2.2",
            "OCI_RESOURCE_PRINCIPAL_RPST": token,
            "OCI_RESOURCE_PRINCIPAL_PRIVATE_PEM": private_pem(key).decode(),
            "OCI_RESOURCE_PRINCIPAL_REGION": self.region,
            "OCIMODEL_SERVICE_ENDPOINT": self.endpoint,
        }

    def keyring(self) -> KeyRing:
        """The key ring of an in-thread service (not available in subprocess mode)."""
        if self.state is None:
            raise LocalServiceError("The key ring is only reachable in thread mode.")
        return keyring_of(self.state)


def _rule_dicts(rules: Iterable[FaultSpec]) -> list:
    return [r.public() if isinstance(r, FaultRule) else r for r in rules]


def _tail(path: Path, limit: int = 4000) -> str:
    with contextlib.suppress(OSError):
        return path.read_text(errors="replace")[-limit:]
    return ""


@contextlib.contextmanager
def running(**kwargs: Any) -> Iterator[LocalOCI]:
    """``with running(data_dir=...) as svc:`` start a service and stop it afterwards."""
    svc = LocalOCI(**kwargs)
    svc.start()
    try:
        yield svc
    finally:
        svc.stop()
