"""End to end on a real Prefect server: deployments/prefect.yaml deployed with the ``prefect``
command line, flow runs triggered through the API and run by a process worker against the local
OCI service, an endpoint that keeps answering through a promote and a rollback, and the run's
artifacts rendered by the Prefect UI in headless Chromium.

The flows get no OCI settings from the worker's environment: they reach the local service only
through the OCICredentials and ModelDeploymentSettings blocks saved here. Timings (trigger to a
predicting endpoint, per operation) and the screenshots are printed at the end and kept in
``$TMPDIR/ocimodel-e2e``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import oci
import pytest
from e2e_support import Stack, prefect_cli, start_worker
from endpoint_support import Predictor
from prefect import get_client
from prefect.deployments import run_deployment
from prepare_support import SLUG

pytestmark = pytest.mark.e2e

OUTPUT = Path(tempfile.gettempdir()) / "ocimodel-e2e"
"""Where screenshots, DOM dumps and timings are kept after the run."""
RUN_TIMEOUT = 240.0
CREDENTIALS = "e2e-local-oci"
SETTINGS = "e2e-settings"
FAST = {"poll_interval": 1, "max_wait_time": 180}


def _wait_for_run(stack: Stack, flow_run_id: Any, timeout: float = RUN_TIMEOUT) -> Any:
    """The flow run once it ended; fails with its logs and the processes' logs unless
    Completed."""
    started = time.monotonic()
    with get_client(sync_client=True) as client:
        while time.monotonic() - started < timeout:
            run = client.read_flow_run(flow_run_id)
            if run.state is not None and run.state.is_final():
                break
            time.sleep(0.25)
        else:
            pytest.fail(
                f"Flow run {flow_run_id} did not end in {timeout:.0f} s\n{stack.describe()}"
            )
        if not run.state.is_completed():
            from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId

            logs = client.read_logs(LogFilter(flow_run_id=LogFilterFlowRunId(any_=[run.id])))
            text = "\n".join(log.message for log in logs)[-6000:]
            pytest.fail(f"Flow run {run.name} ended {run.state.type}:\n{text}\n{stack.describe()}")
    return run


def _trigger(name: str, parameters: dict[str, Any]) -> Any:
    """Starts a run of a deployment through the API (returns at once)."""
    return run_deployment(name, parameters=parameters, timeout=0)


def _until_predicting(url: str, data: Any, auth: Any, expected: list, timeout: float = 60) -> None:
    """Waits until the endpoint answers ``expected``."""
    from ocimodel.predict import predict_endpoint

    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = predict_endpoint(url, data, auth=auth)["prediction"]
            if last == expected:
                return
        except Exception as exc:
            last = exc
        time.sleep(0.1)
    pytest.fail(f"{url} answered {last!r}, not {expected!r}")


@pytest.fixture(scope="module")
def deployed(stack: Stack, iris, tmp_path_factory) -> Stack:
    """The stack with ocimodel's deployments, a worker, the blocks, a bucket holding a zipped
    iris artifact, and a compartment and project."""
    import oci.data_science.models as dsm
    from oci.object_storage.models import CreateBucketDetails

    from ocimodel.blocks import ModelDeploymentSettings, OCICredentials
    from ocimodel.oci.auth import OCIAuth
    from ocimodel.pipeline import prepare_artifact

    local = stack.local
    csv = tmp_path_factory.mktemp("data") / "iris.csv"
    estimator, X, y = iris
    X.assign(species=y).to_csv(csv, index=False)

    prefect_cli(["work-pool", "create", "ocimodel-process", "--type", "process"], stack.env)
    env = {**stack.env, "OCIMODEL_RETRAIN_DATA_URI": str(csv), "OCIMODEL_RETRAIN_TARGET": "species"}
    started = time.monotonic()
    prefect_cli(
        ["--no-prompt", "deploy", "--all", "--prefect-file", "deployments/prefect.yaml"], env
    )
    stack.found["prefect_deploy_s"] = time.monotonic() - started
    start_worker(stack)

    auth = OCIAuth.from_config_file(str(local.config_path), endpoint=local.endpoint)
    compartment = f"ocid1.compartment.oc1..{uuid.uuid4().hex}"
    ds = local.client(oci.data_science.DataScienceClient)
    project = ds.create_project(dsm.CreateProjectDetails(compartment_id=compartment)).data.id
    credentials = OCICredentials(config_file=str(local.config_path), endpoint=local.endpoint)
    credentials.save(CREDENTIALS, overwrite=True)
    ModelDeploymentSettings(
        compartment_id=compartment, project_id=project, deployment_instance_count=1
    ).save(SETTINGS, overwrite=True)

    folder = tmp_path_factory.mktemp("artifact") / "iris"
    prepare_artifact(
        estimator, str(folder), inference_conda_env=SLUG, X_sample=X.head(20), auth=auth
    )
    archive = shutil.make_archive(str(folder.parent / "iris"), "zip", folder)
    storage = local.client(oci.object_storage.ObjectStorageClient)
    namespace = storage.get_namespace().data
    bucket = f"e2e-{uuid.uuid4().hex[:8]}"
    storage.create_bucket(
        namespace, CreateBucketDetails(name=bucket, compartment_id=local.config["tenancy"])
    )
    with open(archive, "rb") as fh:
        storage.put_object(namespace, bucket, "artifacts/iris.zip", fh)
    stack.found.update(
        auth=auth,
        artifact_uri=f"oci://{bucket}@{namespace}/artifacts/iris.zip",
        artifact_folder=str(folder),
        compartment=compartment,
        project=project,
        data_uri=str(csv),
    )
    return stack


def test_deploy_promote_and_rollback_through_a_worker(deployed: Stack, iris, tmp_path, capsys):
    """From API triggers to a live endpoint that never misses a prediction while it changes."""
    from sklearn.dummy import DummyClassifier

    from ocimodel.pipeline import prepare_artifact
    from ocimodel.save import SaveSpec, save_model

    stack, found = deployed, deployed.found
    auth = found["auth"]
    estimator, X, y = iris
    sample = X.head(3)
    blocks = {"credentials_block": CREDENTIALS, "settings_block": SETTINGS}

    with get_client(sync_client=True) as client:
        nightly = client.read_deployment_by_name("retrain-and-deploy/nightly")
    assert [s.schedule.cron for s in nightly.schedules] == ["0 2 * * *"]
    assert nightly.schedules[0].active and nightly.work_pool_name == "ocimodel-process"
    assert nightly.parameters["data_uri"] == found["data_uri"]
    assert nightly.entrypoint == "ocimodel.flows.retrain:retrain_and_deploy"

    started = time.monotonic()
    run = _trigger(
        "deploy-artifact/deploy-artifact",
        {
            "artifact_uri": found["artifact_uri"],
            "model_display_name": "iris-e2e",
            "deployment_display_name": "iris-e2e",
            "freeform_tags": {"suite": "e2e"},
            **blocks,
            **FAST,
        },
    )
    done = _wait_for_run(stack, run.id)
    ds = stack.local.client(oci.data_science.DataScienceClient)
    live = [
        d
        for d in ds.list_model_deployments(compartment_id=found["compartment"]).data
        if d.lifecycle_state == "ACTIVE"
    ]
    assert len(live) == 1, live
    dep_id, url = live[0].id, live[0].model_deployment_url
    record = ds.get_model_deployment(dep_id).data
    model_a = record.model_deployment_configuration_details.model_configuration_details.model_id
    _until_predicting(url, sample, auth, estimator.predict(sample).tolist())
    found["deploy_run_id"] = str(done.id)
    found["timings"] = {
        "deploy-artifact: trigger to a predicting endpoint": time.monotonic() - started
    }
    assert record.display_name == "iris-e2e" and record.freeform_tags["suite"] == "e2e"
    assert ds.get_model(model_a).data.display_name == "iris-e2e"

    twos = DummyClassifier(strategy="constant", constant=2).fit(X, y)
    prepare_artifact(
        twos, str(tmp_path / "twos"), inference_conda_env=SLUG, X_sample=X.head(20), auth=auth
    )
    model_b = save_model(
        str(tmp_path / "twos"),
        SaveSpec(
            display_name="twos", compartment_id=found["compartment"], project_id=found["project"]
        ),
        auth=auth,
    ).model_id

    watcher = Predictor(url, sample, auth=auth)
    watcher.start()
    try:
        started = time.monotonic()
        run = _trigger(
            "promote-model/promote-model",
            {"model_id": model_b, "deployment_id": dep_id, **blocks, **FAST},
        )
        _wait_for_run(stack, run.id)
        _until_predicting(url, sample, auth, [2, 2, 2])
        found["timings"]["promote-model: trigger to the new model answering"] = (
            time.monotonic() - started
        )
        tags = ds.get_model_deployment(dep_id).data.freeform_tags
        assert tags["ocimodel-previous-model"] == model_a

        started = time.monotonic()
        run = _trigger(
            "rollback-deployment/rollback-deployment",
            {"deployment_id": dep_id, "credentials_block": CREDENTIALS, **FAST},
        )
        _wait_for_run(stack, run.id)
        _until_predicting(url, sample, auth, estimator.predict(sample).tolist())
        found["timings"]["rollback-deployment: trigger to the old model answering"] = (
            time.monotonic() - started
        )
        tags = ds.get_model_deployment(dep_id).data.freeform_tags
        assert tags["ocimodel-previous-model"] == model_b
    finally:
        watcher.stop()
    assert watcher.errors == [], watcher.errors[:3]
    assert set(watcher.answers) == {tuple(estimator.predict(sample).tolist()), (2, 2, 2)}
    found["predictions_during_changes"] = len(watcher.answers)

    started = time.monotonic()
    run = _trigger(
        "tear-down/tear-down",
        {"deployment_id": dep_id, "credentials_block": CREDENTIALS, **FAST},
    )
    _wait_for_run(stack, run.id)
    assert ds.get_model_deployment(dep_id).data.lifecycle_state == "DELETED"
    found["timings"]["tear-down: trigger to deleted"] = time.monotonic() - started
    with capsys.disabled():
        _report(found)
    status = httpx.post(f"{url}/predict", json={"x": 1}, timeout=10).status_code
    assert status in (401, 404)


def _chromium(args: list[str], timeout: float = 90) -> subprocess.CompletedProcess:
    """Headless Chromium on a throwaway profile; its process group is killed on a timeout."""
    profile = tempfile.mkdtemp(prefix="ocimodel-e2e-chromium-")
    cmd = [
        shutil.which("chromium") or "chromium",
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--hide-scrollbars",
        "--no-first-run",
        f"--user-data-dir={profile}",
        "--window-size=1400,1000",
        "--virtual-time-budget=20000",
        *args,
    ]
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        import os
        import signal

        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        pytest.fail(f"chromium {args[-1]} did not finish in {timeout} s")
    finally:
        shutil.rmtree(profile, ignore_errors=True)
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


def _page(url: str, screenshot: Path) -> str:
    """Screenshots the page and returns its rendered DOM."""
    shot = _chromium([f"--screenshot={screenshot}", url])
    assert screenshot.is_file(), shot.stderr[-2000:]
    return _chromium(["--dump-dom", url]).stdout


def test_the_ui_shows_the_deploy_runs_artifacts(deployed: Stack, tmp_path, capsys):
    """The Prefect UI renders the introspection table and the deployment's markdown."""
    if shutil.which("chromium") is None:
        pytest.skip("chromium is not installed (.ci/run installs it)")
    found = deployed.found
    run_id = found.get("deploy_run_id")
    if run_id is None:
        pytest.skip("the deploy run did not complete (see the test before)")
    answer = httpx.post(
        f"{deployed.api_url}/artifacts/filter",
        json={"artifacts": {"flow_run_id": {"any_": [run_id]}}},
        timeout=30,
    )
    answer.raise_for_status()
    artifacts = {a["key"]: a for a in answer.json() if a.get("key")}
    table, markdown = artifacts["model-introspection"], artifacts["model-deployment"]
    check_keys = [row["Test key"] for row in json.loads(table["data"])]

    started = time.monotonic()
    shots = {
        "introspection": tmp_path / "introspection-table.png",
        "deployment": tmp_path / "deployment-markdown.png",
        "flow-run": tmp_path / "deploy-flow-run.png",
    }
    dom = _page(f"{deployed.ui_url}/artifacts/artifact/{table['id']}", shots["introspection"])
    assert "Can't connect to Server API" not in dom
    assert all(key in dom for key in check_keys), check_keys
    assert "Passed" in dom
    dom = _page(f"{deployed.ui_url}/artifacts/artifact/{markdown['id']}", shots["deployment"])
    deployment_id = markdown["data"].split("`")[1]
    assert deployment_id.startswith("ocid1.datasciencemodeldeployment") and deployment_id in dom
    assert "Open the deployment in the OCI console" in dom
    dom = _page(f"{deployed.ui_url}/runs/flow-run/{run_id}", shots["flow-run"])
    assert "deploy-artifact" in dom
    found.setdefault("timings", {})["browser: three pages, screenshot and DOM each"] = (
        time.monotonic() - started
    )

    OUTPUT.mkdir(parents=True, exist_ok=True)
    for path in shots.values():
        shutil.copy2(path, OUTPUT / path.name)
    with capsys.disabled():
        _report(found)


def _report(found: dict[str, Any]) -> None:
    """Prints the timings measured so far and keeps them in OUTPUT/timings.json."""
    timings = {k: round(v, 1) for k, v in found.get("timings", {}).items()}
    timings["prefect server start"] = round(found["server_start_s"], 1)
    timings["prefect deploy --all"] = round(found["prefect_deploy_s"], 1)
    OUTPUT.mkdir(parents=True, exist_ok=True)
    (OUTPUT / "timings.json").write_text(json.dumps(timings, indent=2) + "\n")
    print(f"\nEnd-to-end timings and screenshots in {OUTPUT}:")
    for name, seconds in timings.items():
        print(f"  {name}: {seconds} s")
    answered = found.get("predictions_during_changes")
    if answered is not None:
        print(f"  predictions answered during the promote and the rollback: {answered}")
