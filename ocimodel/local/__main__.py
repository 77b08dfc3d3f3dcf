"""``python -m ocimodel.local`` / ``ocimodel-local``: serve the local OCI service until stopped.

Prints the endpoint and the OCI config file to use with it; Ctrl-C or SIGTERM shut it down
cleanly, running every shutdown hook (model servers it started are stopped).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import uvicorn

from .faults import ENV_VAR as FAULTS_ENV_VAR
from .faults import FaultRule, FaultSpecError, faults_of, rules_from_env
from .server import DEFAULT_REGION, HOST, bind_socket, build_service, uvicorn_config

DEFAULT_DATA_DIR = "./.ocimodel-local"


class _Server(uvicorn.Server):
    """uvicorn server whose SIGINT/SIGTERM end the process with status 0 after shutdown."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        handled = (signal.SIGINT, signal.SIGTERM)
        original = {sig: signal.signal(sig, self.handle_exit) for sig in handled}
        try:
            yield
        finally:
            for sig, handler in original.items():
                signal.signal(sig, handler)


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface."""
    parser = argparse.ArgumentParser(
        prog="ocimodel-local",
        description="A local OCI-compatible service (Object Storage, Data Science, model "
        f"deployment predict) on {HOST}. Stop it with Ctrl-C or SIGTERM; state is kept in "
        "--data-dir, so a restart with the same folder finds every resource again.",
        epilog="Without --port the service takes a free port, so the endpoint changes on each "
        "start: pass the same --port to keep OCIMODEL_SERVICE_ENDPOINT valid across restarts.",
    )
    parser.add_argument("--port", type=int, default=0, help="TCP port (default: a free one)")
    parser.add_argument(
        "--data-dir",
        default=DEFAULT_DATA_DIR,
        help=f"where state, blobs, the config file and keys live (default {DEFAULT_DATA_DIR})",
    )
    parser.add_argument("--region", default=DEFAULT_REGION, help="region written to the config")
    parser.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="RULE",
        help="inject a fault (repeatable): comma-separated key=value fields among operation, "
        "method, path (regex), status, code, message, rate (0..1), count (next N requests), "
        "latency_ms, drop (true), drop_phase (response|request), deployment_failure (message). "
        "Examples: operation=put_object,status=503,count=2 | method=GET,path=^/n,latency_ms=200 "
        "| operation=upload_part,drop=true | 'deployment_failure=Out of host capacity'. "
        f"Rules may also come as JSON in ${FAULTS_ENV_VAR}.",
    )
    parser.add_argument("--parent-pid", type=int, default=None, help=argparse.SUPPRESS)
    return parser


def _exit_with_parent(server: uvicorn.Server, parent_pid: int) -> None:
    """Stop the server gracefully once the process that started it is gone."""

    def watch() -> None:
        while not server.should_exit:
            if os.getppid() != parent_pid:
                server.should_exit = True
                return
            time.sleep(0.5)

    threading.Thread(target=watch, name="ocimodel-local-parent", daemon=True).start()


def main(argv: Sequence[str] | None = None) -> int:
    """Run the service in the foreground; return the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not 0 <= args.port <= 65535:
        parser.error(f"--port {args.port} is not a TCP port; use 0 for a free port")
    try:
        rules = [FaultRule.parse(spec) for spec in args.fault]
        rules_from_env()
    except FaultSpecError as exc:
        parser.error(str(exc))
    data_dir = Path(args.data_dir).expanduser().resolve()
    try:
        sock = bind_socket(args.port)
    except OSError as exc:
        parser.error(f"cannot listen on {HOST}:{args.port} ({exc}); pick another --port or 0")
    state, app = build_service(data_dir, args.region, rules)
    state.endpoint = f"http://{HOST}:{sock.getsockname()[1]}"
    config_path = data_dir / "config"
    print("ocimodel.local: Object Storage, Data Science and model deployment predict", flush=True)
    print(f"  config:   {config_path} (profile DEFAULT)", flush=True)
    print(
        f"  export OCIMODEL_SERVICE_ENDPOINT={state.endpoint} OCI_CONFIG_FILE={config_path}",
        flush=True,
    )
    print(f"  endpoint: {state.endpoint}", flush=True)
    for rule in faults_of(state).rules():
        shown = ",".join(f"{k}={v}" for k, v in rule.items() if k != "applied")
        print(f"  fault:    {shown}", flush=True)
    print("  Ctrl-C or SIGTERM stops it (and every model server it started).", flush=True)
    server = _Server(uvicorn_config(app))
    if args.parent_pid is not None:
        _exit_with_parent(server, args.parent_pid)
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()
        state.store.close()
    print("ocimodel.local: stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
