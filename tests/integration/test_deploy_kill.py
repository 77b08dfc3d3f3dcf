"""Acceptance of the deploy stage: a deploy SIGKILLed while it waits for ACTIVE, then run again,
leaves exactly one deployment, ACTIVE and answering.

A child process (``deploy_child.py``) runs ``deploy_model`` against the local service. The
model's ``load_model()`` waits for a flag file (named in the deployment's environment), so the
deployment stays CREATING until the test releases it: the child is killed once its wait has
begun and the service shows the deployment CREATING. A second child then deploys the same
model with the same spec, the flag is released, and:

- the second run finds the first run's deployment (``created`` is False, same OCID) instead of
  creating another;
- the compartment holds exactly that one deployment, ever (deleted ones included), tagged
  with the identity of this model and spec, and it is ACTIVE;
- it answers a signed predict through the service.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import oci
import pytest
from deployment_support import create_model, zip_artifact

from ocimodel.deploy import DEPLOY_TAG, DeploySpec, delete_deployment, deploy_identity
from ocimodel.oci import deployment as md
from ocimodel.oci.predict import predict

CHILD = Path(__file__).with_name("deploy_child.py")
RUN_TIMEOUT = 60.0
NAME = "killed-while-waiting"

GATED_SCORE = """
import os, time

def load_model():
    flag = os.environ["RELEASE_FLAG"]
    deadline = time.monotonic() + 120
    while not os.path.exists(flag) and time.monotonic() < deadline:
        time.sleep(0.02)
    return "ready"

def predict(data, model=None):
    return {"echo": data, "pid": os.getpid()}
"""


class Child:
    """deploy_child.py running in the background, its output in files."""

    def __init__(self, model_id: str, flag: Path, tmp: Path, index: int):
        self.out = tmp / f"deploy-{index}.out"
        self.err = tmp / f"deploy-{index}.err"
        with open(self.out, "wb") as out, open(self.err, "wb") as err:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    str(CHILD),
                    model_id,
                    "--display-name",
                    NAME,
                    "--env",
                    f"RELEASE_FLAG={flag}",
                    "--poll-interval",
                    "0.5",
                ],
                env=dict(os.environ),
                stdout=out,
                stderr=err,
            )

    def events(self) -> list[dict]:
        lines = self.out.read_text().splitlines() if self.out.exists() else []
        return [json.loads(line) for line in lines if line.startswith("{")]

    def stderr(self) -> str:
        return self.err.read_text()[-4000:] if self.err.exists() else ""

    def wait_for(self, name: str) -> dict:
        """The child's first ``name`` event, waiting for it (fails if the child ends first)."""
        deadline = time.monotonic() + RUN_TIMEOUT
        while time.monotonic() < deadline:
            found = [e for e in self.events() if e["event"] == name]
            if found:
                return found[0]
            if self.proc.poll() is not None:
                pytest.fail(
                    f"deploy_child.py ended (exit {self.proc.returncode}) before printing "
                    f"{name!r}; stderr:\n{self.stderr()}"
                )
            time.sleep(0.02)
        pytest.fail(f"deploy_child.py printed no {name!r} event in {RUN_TIMEOUT} s")

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)


def _deployments(ds, compartment: str) -> list:
    """Every deployment of the compartment, deleted ones included."""
    return oci.pagination.list_call_get_all_results(
        ds.list_model_deployments, compartment_id=compartment
    ).data


def test_deploy_killed_while_waiting_is_resumed_by_a_retry(
    deploy_place, ds, tmp_path, tmp_path_factory
):
    compartment, project = deploy_place
    zipped = zip_artifact(tmp_path_factory.mktemp("gated"), {"score.py": GATED_SCORE})
    model_id = create_model(ds, compartment, project, zipped)
    flag = tmp_path / "release"
    children: list[Child] = []
    deployment_id = None
    try:
        first = Child(model_id, flag, tmp_path, 0)
        children.append(first)
        first.wait_for("waiting")
        (creating,) = _deployments(ds, compartment)
        deployment_id = creating.id
        assert creating.lifecycle_state == "CREATING"
        first.kill()
        assert first.proc.returncode == -signal.SIGKILL
        assert md.get_model_deployment(None, deployment_id).lifecycle_state == "CREATING"

        second = Child(model_id, flag, tmp_path, 1)
        children.append(second)
        second.wait_for("waiting")
        flag.touch()
        done = second.wait_for("deployed")
        assert second.proc.wait(RUN_TIMEOUT) == 0, second.stderr()
        assert (done["id"], done["state"], done["created"]) == (deployment_id, "ACTIVE", False)

        (only,) = _deployments(ds, compartment)
        assert (only.id, only.lifecycle_state) == (deployment_id, "ACTIVE")
        spec = DeploySpec(display_name=NAME, environment_variables={"RELEASE_FLAG": str(flag)})
        identity = deploy_identity(
            model_id,
            dataclasses.replace(spec.resolve(), compartment_id=compartment, project_id=project),
        )
        assert only.freeform_tags[DEPLOY_TAG] == identity
        tagged = md.find_model_deployments_by_tag(
            None, compartment, DEPLOY_TAG, identity, include_deleted=True
        )
        assert [d.id for d in tagged] == [deployment_id]

        answer = predict(done["url"], b'{"x": 1}', "application/json")
        assert answer.json()["echo"] == {"x": 1}
    finally:
        flag.touch()
        for child in children:
            child.kill()
        if deployment_id is not None:
            delete_deployment(None, deployment_id, max_wait_time=60, poll_interval=0.5)
