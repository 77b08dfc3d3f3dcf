"""The predict endpoint of local model deployments: signed calls, payload and time limits."""

from __future__ import annotations

import json
import os
import threading
import time

import oci
import oci.data_science.models as dsm
import pytest
import requests
from deployment_support import (
    ECHO_SCORE,
    create_and_wait,
    create_model,
    deployment_details,
    server_pids,
    sklearn_artifact,
    wait_work_request,
    zip_artifact,
)
from sdk_calls import NO_RETRY

from ocimodel.local import deployments_predict, deployments_runner
from ocimodel.local.deployments import engine_of
from ocimodel.local.deployments_predict import MAX_PAYLOAD_BYTES, TIMEOUT_KEY


@pytest.fixture(scope="module")
def md(local_oci):
    return local_oci.client(oci.model_deployment.ModelDeploymentClient)


@pytest.fixture(scope="module")
def echo(local_oci, ds, tmp_path_factory):
    """An ACTIVE two-instance deployment of an echoing score.py; deleted (servers gone) after."""
    compartment = local_oci.config["tenancy"]
    project = ds.create_project(
        dsm.CreateProjectDetails(compartment_id=compartment, display_name="predict")
    ).data.id
    zipped = zip_artifact(tmp_path_factory.mktemp("echo"), {"score.py": ECHO_SCORE})
    model_id = create_model(ds, compartment, project, zipped)
    dep_id, wr = create_and_wait(
        ds, deployment_details(compartment, project, model_id, instances=2)
    )
    assert wr.status == "SUCCEEDED"
    pids = server_pids(local_oci, dep_id)
    yield dep_id
    resp = ds.delete_model_deployment(dep_id)
    assert wait_work_request(ds, resp.headers["opc-work-request-id"]).status == "SUCCEEDED"
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def _url(ds, dep_id: str) -> str:
    return ds.get_model_deployment(dep_id).data.model_deployment_url


def test_sdk_and_signed_requests_reach_every_instance(local_oci, ds, md, echo):
    answer = md.predict(echo, {"a": [1, 2, 3]})
    assert answer.status == 200
    assert json.loads(answer.data)["echo"] == {"a": [1, 2, 3]}
    url = _url(ds, echo)
    signer = local_oci.signer()
    seen = set()
    for i in range(6):
        resp = requests.post(url + "/predict", json={"i": i}, auth=signer, timeout=30)
        assert resp.status_code == 200, resp.text
        assert resp.json()["echo"] == {"i": i}
        assert resp.headers["opc-request-id"]
        seen.add(resp.json()["pid"])
    assert seen == set(server_pids(local_oci, echo))


def test_bytes_payload_passes_through(local_oci, ds, echo):
    payload = bytes(range(256)) * 40
    resp = requests.post(
        _url(ds, echo) + "/predict",
        data=payload,
        headers={"content-type": "application/octet-stream"},
        auth=local_oci.signer(),
        timeout=30,
    )
    assert resp.status_code == 200, resp.text
    assert resp.json()["bytes"] == len(payload)


def test_sklearn_predictions_match_local_model(local_oci, ds, md, tmp_path):
    compartment = local_oci.config["tenancy"]
    project = ds.create_project(
        dsm.CreateProjectDetails(compartment_id=compartment, display_name="sk")
    ).data.id
    zipped, model, rows = sklearn_artifact(tmp_path)
    model_id = create_model(ds, compartment, project, zipped)
    dep_id, wr = create_and_wait(ds, deployment_details(compartment, project, model_id))
    assert wr.status == "SUCCEEDED"
    try:
        expected = model.predict(rows).tolist()
        assert json.loads(md.predict(dep_id, {"instances": rows}).data)["prediction"] == expected
        resp = requests.post(
            _url(ds, dep_id) + "/predict",
            json={"instances": rows},
            auth=local_oci.signer(),
            timeout=30,
        )
        assert resp.json() == {"prediction": expected}
    finally:
        done = ds.delete_model_deployment(dep_id)
        assert wait_work_request(ds, done.headers["opc-work-request-id"]).status == "SUCCEEDED"


def test_generated_score_py_takes_json_records_for_a_dataframe_pipeline(
    local_oci, ds, md, tmp_path
):
    import pandas as pd
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    from ocimodel.score import generate_score_py
    from ocimodel.serde import get_model_save_serializer

    frame = pd.DataFrame(
        {"city": ["oslo", "rome", "lima", "rome"] * 5, "x": [float(i) for i in range(20)]}
    )
    labels = ((frame.city == "rome") | (frame.x > 15)).astype(int)
    columns = ColumnTransformer(
        [("oh", OneHotEncoder(), ["city"]), ("sc", StandardScaler(), ["x"])]
    )
    model = make_pipeline(columns, LogisticRegression()).fit(frame, labels)
    folder = tmp_path / "art"
    folder.mkdir()
    get_model_save_serializer("cloudpickle").save(model, folder / "model.pkl")
    generate_score_py(str(folder), model_file_name="model.pkl")
    files = {name: (folder / name).read_bytes() for name in ("score.py", "model.pkl")}
    zipped = zip_artifact(tmp_path / "zip", files)
    compartment = local_oci.config["tenancy"]
    project = ds.create_project(
        dsm.CreateProjectDetails(compartment_id=compartment, display_name="records")
    ).data.id
    model_id = create_model(ds, compartment, project, zipped)
    dep_id, wr = create_and_wait(ds, deployment_details(compartment, project, model_id))
    assert wr.status == "SUCCEEDED"
    try:
        sample = frame.iloc[[0, 1, 2, 18, 19]]
        expected = model.predict(sample).tolist()
        assert len(set(expected)) > 1
        records = sample[["x", "city"]].to_dict(orient="records")
        assert json.loads(md.predict(dep_id, records).data) == {"prediction": expected}
        resp = requests.post(
            _url(ds, dep_id) + "/predict",
            json=sample.to_dict(orient="list"),
            auth=local_oci.signer(),
            timeout=30,
        )
        assert resp.json() == {"prediction": expected}
    finally:
        done = ds.delete_model_deployment(dep_id)
        assert wait_work_request(ds, done.headers["opc-work-request-id"]).status == "SUCCEEDED"


def test_oversize_payload_is_refused(local_oci, ds, echo):
    payload = b"x" * (MAX_PAYLOAD_BYTES + 1)
    resp = requests.post(
        _url(ds, echo) + "/predict",
        data=payload,
        headers={"content-type": "application/octet-stream"},
        auth=local_oci.signer(),
        timeout=60,
    )
    assert resp.status_code == 413
    assert "exceeds" in resp.json()["message"]


def test_unsigned_and_foreign_callers_are_refused(local_oci, ds, md, echo):
    url = _url(ds, echo) + "/predict"
    assert requests.post(url, json={"x": 1}, timeout=30).status_code == 401
    stranger_cfg = local_oci.add_user()
    stranger = local_oci.client(oci.model_deployment.ModelDeploymentClient, config=stranger_cfg)
    with pytest.raises(oci.exceptions.ServiceError) as info:
        stranger.predict(echo, {"x": 1}, retry_strategy=NO_RETRY)
    assert info.value.status == 404
    resp = requests.post(url, json={"x": 1}, auth=local_oci.signer(stranger_cfg), timeout=30)
    assert resp.status_code == 404


def test_unknown_deployment_is_not_found(md):
    with pytest.raises(oci.exceptions.ServiceError) as info:
        md.predict(
            "ocid1.datasciencemodeldeployment.oc1.local.nothere", {"x": 1}, retry_strategy=NO_RETRY
        )
    assert (info.value.status, info.value.code) == (404, "NotAuthorizedOrNotFound")


def test_predict_error_is_reported(md, echo):
    with pytest.raises(oci.exceptions.ServiceError) as info:
        md.predict(echo, {"fail": True}, retry_strategy=NO_RETRY)
    assert info.value.status == 500
    assert "predict was asked to fail" in info.value.message


def _post_async(url: str, body: dict, signer, results: list) -> threading.Thread:
    def run() -> None:
        results.append(requests.post(url, json=body, auth=signer, timeout=60))

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def _wait_in_flight(local_oci, dep_id: str, count: int) -> None:
    servers = engine_of(local_oci.state).servers
    deadline = time.monotonic() + 30
    while sum(s.in_flight for s in servers.servers(dep_id)) < count:
        assert time.monotonic() < deadline, "requests never reached the model servers"
        time.sleep(0.02)


def test_slow_model_times_out(local_oci, ds, echo, tmp_path):
    flag = tmp_path / "release"
    local_oci.state.extras[TIMEOUT_KEY] = 0.5
    try:
        resp = requests.post(
            _url(ds, echo) + "/predict",
            json={"wait_for": str(flag)},
            auth=local_oci.signer(),
            timeout=60,
        )
    finally:
        local_oci.state.extras.pop(TIMEOUT_KEY, None)
        flag.touch()
    assert resp.status_code == 504
    assert resp.json()["code"] == "GatewayTimeout"


def test_busy_instances_answer_429(local_oci, ds, echo, tmp_path, monkeypatch):
    monkeypatch.setattr(deployments_runner, "MAX_IN_FLIGHT_PER_INSTANCE", 1)
    flag = tmp_path / "release"
    url = _url(ds, echo) + "/predict"
    signer = local_oci.signer()
    results: list = []
    threads = [_post_async(url, {"wait_for": str(flag), "n": n}, signer, results) for n in (1, 2)]
    try:
        _wait_in_flight(local_oci, echo, 2)
        busy = requests.post(url, json={"n": 3}, auth=signer, timeout=30)
        assert busy.status_code == 429
        assert busy.json()["code"] == "TooManyRequests"
    finally:
        flag.touch()
        for thread in threads:
            thread.join(60)
    assert sorted(r.status_code for r in results) == [200, 200]
    assert {r.json()["echo"]["n"] for r in results} == {1, 2}


def test_fault_rules_apply_to_predict_as_to_any_route(local_oci, ds, echo):
    """Predict skips the app's generic stack only while no fault rule is armed."""
    url = _url(ds, echo) + "/predict"
    signer = local_oci.signer()
    local_oci.set_faults({"path": "/predict$", "status": 503, "count": 1})
    try:
        faulted = requests.post(url, json={"n": 1}, auth=signer, timeout=30)
        assert (faulted.status_code, faulted.json()["code"]) == (503, "ServiceUnavailable")
        assert faulted.headers["opc-request-id"]
    finally:
        local_oci.clear_faults()
    served = requests.post(url, json={"n": 2}, auth=signer, timeout=30)
    assert served.status_code == 200 and served.json()["echo"]["n"] == 2


def test_paths_of_other_routes_are_not_taken_for_predict(local_oci):
    """``/n/predict`` is the Object Storage namespace ``predict``, not a deployment."""
    resp = requests.post(
        local_oci.endpoint + "/n/predict", json={}, auth=local_oci.signer(), timeout=30
    )
    assert "Model deployment" not in resp.json()["message"]


def test_an_unexpected_error_in_predict_is_a_500(local_oci, ds, echo, monkeypatch):
    async def broken(*args: object) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(deployments_predict.PredictEndpoint, "serve", broken)
    resp = requests.post(
        _url(ds, echo) + "/predict", json={"n": 1}, auth=local_oci.signer(), timeout=30
    )
    assert (resp.status_code, resp.json()["code"]) == (500, "InternalServerError")
    assert resp.headers["opc-request-id"]


def test_quick_predictions_run_on_the_loop_and_a_slow_one_sends_them_back_to_threads(
    monkeypatch,
):
    """The model server calls a quick predict() on its event loop (no thread hand-offs) after
    a few quick calls, and goes back to worker threads after one over the budget."""
    import asyncio

    from ocimodel import serve
    from ocimodel.serve import QUICK_STREAK, Predictor

    monkeypatch.setattr(serve, "INLINE_BUDGET_SECONDS", 0.05)  # a busy machine stays under it
    threads: list[str] = []
    slow = {"on": False}

    def predict(data):
        threads.append(threading.current_thread().name)
        if slow["on"]:
            time.sleep(0.1)
        return data

    async def calls(n: int) -> None:
        for i in range(n):
            assert await predictor(i) == i

    predictor = Predictor(predict)
    loop_thread = threading.current_thread().name
    asyncio.run(calls(QUICK_STREAK + 2))
    assert loop_thread not in threads[:QUICK_STREAK]
    assert threads[QUICK_STREAK:] == [loop_thread] * 2
    slow["on"] = True
    asyncio.run(calls(1))
    assert not predictor.inline
    slow["on"] = False
    del threads[:]
    asyncio.run(calls(1))
    assert threads != [loop_thread]
    predictor.pool.shutdown()
