"""The quickstart, as the README runs it: a fresh process, a live endpoint, exit status 0."""

from __future__ import annotations

import os
import subprocess
import sys

from prefect.settings import PREFECT_API_URL


def test_the_quickstart_predicts_from_a_live_endpoint_and_exits_0(tmp_path):
    env = {**os.environ, "PREFECT_API_URL": PREFECT_API_URL.value()}  # the session's server
    for name in ("OCIMODEL_SERVICE_ENDPOINT", "OCI_CONFIG_FILE", "OCI_CONFIG_PROFILE"):
        env.pop(name, None)  # the quickstart brings its own local service
    done = subprocess.run(
        [sys.executable, "-m", "ocimodel.flows.quickstart"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "Match." in done.stdout
    assert "ocid1.datasciencemodeldeployment." in done.stdout
    assert (tmp_path / "quickstart-artifact" / "score.py").is_file()
