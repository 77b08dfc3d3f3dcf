"""The end-to-end stack: a real Prefect server, the local OCI service and a process worker, each
its own process group, started once for the module and stopped even when a test fails.

Nothing here touches the user's Prefect database or OCI config: the server gets a temporary
``PREFECT_HOME``, the worker an environment without OCI settings (flows reach the local service
only through the blocks the test saves), and this process talks to the server through
``temporary_settings``.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterator

import pytest
from e2e_support import (
    DROPPED_ENV,
    SERVER_START_TIMEOUT,
    Stack,
    free_port,
    start,
    wait_healthy,
)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "e2e: a real Prefect server, worker and browser against the local OCI"
    )


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A Prefect server with ocimodel's deployments and a worker on their pool, and the local
    OCI service; all stopped at the end of the module, whatever happened."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from ocimodel.local.server import LocalOCI

    root = tmp_path_factory.mktemp("e2e")
    logs = root / "logs"
    logs.mkdir()
    port = free_port()
    api_url = f"http://127.0.0.1:{port}/api"
    env = {k: v for k, v in os.environ.items() if k not in DROPPED_ENV}
    env.update(
        PREFECT_HOME=str(root / "prefect-home"),
        PREFECT_API_URL=api_url,
        PREFECT_UI_API_URL=api_url,
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PREFECT_CLI_PROMPT="false",
        OCI_CONFIG_FILE=str(root / "no-oci-config"),  # flows must use the blocks
        OCIMODEL_WORK_DIR=str(root / "work"),
    )
    local = LocalOCI(data_dir=root / "local-oci", port=free_port(), mode="subprocess")
    stack = Stack(api_url, f"http://127.0.0.1:{port}", env, local, logs)
    try:
        server = start(
            "server",
            [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1"]
            + ["--port", str(port)],
            env,
            logs,
        )
        stack.processes["server"] = server
        local.start()  # meanwhile the server migrates its new database
        stack.found["server_start_s"] = wait_healthy(
            f"{api_url}/health", server, SERVER_START_TIMEOUT
        )
        with temporary_settings({PREFECT_API_URL: api_url}):
            yield stack
    finally:
        for process in reversed(list(stack.processes.values())):
            process.stop()
        local.stop()
        shutil.copytree(logs, root / "logs-kept", dirs_exist_ok=True)
