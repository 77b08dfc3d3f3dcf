"""The fast predict client (ocimodel.oci.predict) against deployments on the local service."""

from __future__ import annotations

import json
import socket
import threading
import time

import oci.data_science.models as dsm
import pytest
import requests
from deployment_support import (
    ECHO_SCORE,
    create_and_wait,
    create_model,
    deployment_details,
    wait_work_request,
    zip_artifact,
)

from ocimodel.errors import NotActiveDeploymentError
from ocimodel.local import deployments_runner
from ocimodel.local.deployments import engine_of
from ocimodel.local.deployments_predict import TIMEOUT_KEY
from ocimodel.oci.auth import resolve_auth
from ocimodel.oci.predict import (
    MAX_PAYLOAD_BYTES,
    DeploymentNotActiveError,
    PredictError,
    PredictThrottledError,
    PredictTimeoutError,
    predict,
    predict_url,
    session_for,
)

# A score.py whose load_model() waits for a flag file: its deployment stays CREATING until then.
GATED_SCORE = """
import os, time

def load_model():
    deadline = time.monotonic() + 60
    while not os.path.exists(os.environ["LOAD_GATE"]) and time.monotonic() < deadline:
        time.sleep(0.02)
    return "gated"

def predict(data, model=None):
    return {"gated": data}
"""


@pytest.fixture(scope="module")
def project(local_oci, ds) -> str:
    details = dsm.CreateProjectDetails(
        compartment_id=local_oci.config["tenancy"], display_name="predict-client"
    )
    return ds.create_project(details).data.id


@pytest.fixture(scope="module")
def echo_model(local_oci, ds, project, tmp_path_factory) -> str:
    zipped = zip_artifact(tmp_path_factory.mktemp("echo"), {"score.py": ECHO_SCORE})
    return create_model(ds, local_oci.config["tenancy"], project, zipped)


def _delete(ds, dep_id: str) -> None:
    done = ds.delete_model_deployment(dep_id)
    assert wait_work_request(ds, done.headers["opc-work-request-id"]).status == "SUCCEEDED"


@pytest.fixture(scope="module")
def echo(local_oci, ds, project, echo_model):
    """(deployment id, deployment URL) of an ACTIVE one-instance echo deployment."""
    details = deployment_details(local_oci.config["tenancy"], project, echo_model)
    dep_id, wr = create_and_wait(ds, details)
    assert wr.status == "SUCCEEDED"
    yield dep_id, ds.get_model_deployment(dep_id).data.model_deployment_url
    _delete(ds, dep_id)


@pytest.fixture(scope="module")
def auth(local_oci):
    return resolve_auth(local_oci.auth())


def _json(value) -> bytes:
    return json.dumps(value).encode()


def test_predict_answers_json_and_bytes(echo, auth, local_oci):
    _, url = echo
    answer = predict(url, _json({"a": [1, 2, 3]}), "application/json", auth=auth)
    assert answer.status == 200
    assert answer.json()["echo"] == {"a": [1, 2, 3]}
    assert answer.content_type.startswith("application/json")
    assert answer.request_id
    raw = bytes(range(256)) * 8
    answer = predict(url, raw, "application/octet-stream", auth=local_oci.auth())
    assert answer.json()["bytes"] == len(raw)
    # The full predict URL works too, and a str payload is sent as UTF-8.
    answer = predict(url + "/predict", '{"s": "é"}', "application/json", auth=auth)
    assert answer.json()["echo"] == {"s": "é"}


def test_default_auth_comes_from_the_environment(echo, local_env):
    _, url = echo
    assert predict(url, _json({"env": 1}), "application/json").json()["echo"] == {"env": 1}


def test_one_kept_alive_session_per_auth_and_host(echo, auth):
    _, url = echo
    session = session_for(auth, url)
    assert session_for(auth, predict_url(url)) is session
    for i in range(5):
        answer = predict(url, _json({"i": i}), "application/json", auth=auth)
        assert answer.json()["echo"] == {"i": i}
    manager = session.get_adapter(url).poolmanager
    (pool,) = [manager.pools[key] for key in manager.pools.keys()]
    assert pool.num_connections == 1  # one connection, kept alive across the calls
    (conn,) = [c for c in pool.pool.queue if c is not None]
    assert conn.sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)


def test_a_given_session_is_used(echo, auth):
    _, url = echo
    with requests.Session() as session:
        answer = predict(url, _json({"s": 1}), "application/json", auth=auth, session=session)
        assert answer.json()["echo"] == {"s": 1}
        assert session.get_adapter(url).poolmanager.pools  # it carried the request


def test_score_py_error_comes_back_with_its_message(echo, auth):
    _, url = echo
    with pytest.raises(PredictError) as info:
        predict(url, _json({"fail": True}), "application/json", auth=auth)
    err = info.value
    assert (err.status, err.code) == (500, "InternalServerError")
    assert "predict was asked to fail" in err.message
    assert "predict was asked to fail" in str(err)
    assert err.request_id and err.request_id in str(err)


def test_bad_json_is_an_invalid_parameter(echo, auth):
    _, url = echo
    with pytest.raises(PredictError) as info:
        predict(url, b"{not json", "application/json", auth=auth)
    assert (info.value.status, info.value.code) == (400, "InvalidParameter")


def test_unknown_and_foreign_deployments_are_not_found(local_oci, echo, auth):
    dep_id, url = echo
    missing = url.replace(dep_id, "ocid1.datasciencemodeldeployment.oc1.local.nothere")
    with pytest.raises(PredictError) as info:
        predict(missing, _json({}), "application/json", auth=auth)
    assert (info.value.status, info.value.code) == (404, "NotAuthorizedOrNotFound")
    assert not isinstance(info.value, NotActiveDeploymentError)
    stranger = local_oci.auth(local_oci.add_user())
    with pytest.raises(PredictError) as info:
        predict(url, _json({}), "application/json", auth=stranger)
    assert info.value.status == 404


def test_busy_deployment_is_throttled_with_the_bandwidth_hint(
    local_oci, echo, auth, tmp_path, monkeypatch
):
    dep_id, url = echo
    monkeypatch.setattr(deployments_runner, "MAX_IN_FLIGHT_PER_INSTANCE", 1)
    flag = tmp_path / "release"
    results: list = []
    thread = threading.Thread(
        target=lambda: results.append(
            predict(url, _json({"wait_for": str(flag)}), "application/json", auth=auth)
        ),
        daemon=True,
    )
    thread.start()
    servers = engine_of(local_oci.state).servers
    deadline = time.monotonic() + 30
    while sum(s.in_flight for s in servers.servers(dep_id)) < 1:
        assert time.monotonic() < deadline, "the first request never reached the model server"
        time.sleep(0.02)
    try:
        with pytest.raises(PredictThrottledError) as info:
            predict(url, _json({"n": 2}), "application/json", auth=auth)
    finally:
        flag.touch()
        thread.join(60)
    err = info.value
    assert (err.status, err.code) == (429, "TooManyRequests")
    assert "deployment_bandwidth_mbps" in str(err)
    assert results and results[0].json()["echo"]["wait_for"] == str(flag)


def test_service_timeout_is_a_timeout_error(local_oci, echo, auth, tmp_path):
    _, url = echo
    flag = tmp_path / "release"
    local_oci.state.extras[TIMEOUT_KEY] = 0.5
    try:
        with pytest.raises(PredictTimeoutError) as info:
            predict(url, _json({"wait_for": str(flag)}), "application/json", auth=auth)
    finally:
        local_oci.state.extras.pop(TIMEOUT_KEY, None)
        flag.touch()
    assert (info.value.status, info.value.code) == (504, "GatewayTimeout")


def test_client_timeout_is_a_timeout_error(echo, auth, tmp_path):
    _, url = echo
    flag = tmp_path / "release"
    try:
        with pytest.raises(PredictTimeoutError) as info:
            predict(url, _json({"wait_for": str(flag)}), "application/json", auth=auth, timeout=0.3)
    finally:
        flag.touch()
    assert info.value.status is None
    # The session is still usable afterwards.
    assert predict(url, _json({"after": 1}), "application/json", auth=auth).json()["echo"] == {
        "after": 1
    }


def test_bad_input_fails_before_sending():
    url = "http://127.0.0.1:9/ocid1.datasciencemodeldeployment.oc1.local.x"
    with pytest.raises(PredictError) as info:
        predict(url, b"x" * (MAX_PAYLOAD_BYTES + 1), "application/octet-stream")
    assert info.value.status == 413 and "10 MB" in str(info.value)
    with pytest.raises(TypeError, match="json.dumps"):
        predict(url, {"not": "bytes"}, "application/json")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="modelDeploymentUrl"):
        predict("ocid1.datasciencemodeldeployment.oc1.local.x", b"{}", "application/json")
    assert predict_url(url + "/") == url + "/predict"
    assert predict_url(url + "/predictWithResponseStream").endswith("/predictWithResponseStream")


def test_deployments_that_are_not_active(local_oci, ds, project, tmp_path, auth):
    """CREATING answers 503 and INACTIVE 404: both raise DeploymentNotActiveError."""
    gate = tmp_path / "gate"
    zipped = zip_artifact(tmp_path / "gated", {"score.py": GATED_SCORE})
    model_id = create_model(ds, local_oci.config["tenancy"], project, zipped)
    environment = dsm.DefaultModelDeploymentEnvironmentConfigurationDetails(
        environment_configuration_type="DEFAULT", environment_variables={"LOAD_GATE": str(gate)}
    )
    details = deployment_details(
        local_oci.config["tenancy"], project, model_id, environment=environment
    )
    created = ds.create_model_deployment(details)
    dep_id, url = created.data.id, created.data.model_deployment_url
    try:
        with pytest.raises(DeploymentNotActiveError) as info:
            predict(url, _json({}), "application/json", auth=auth)
        err = info.value
        assert (err.status, err.state) == (503, "CREATING")
        assert isinstance(err, NotActiveDeploymentError) and isinstance(err, PredictError)
        assert "not ACTIVE" in str(err)
        gate.touch()
        assert wait_work_request(ds, created.headers["opc-work-request-id"]).status == "SUCCEEDED"
        assert predict(url, _json(1), "application/json", auth=auth).json() == {"gated": 1}

        done = ds.deactivate_model_deployment(dep_id)
        assert wait_work_request(ds, done.headers["opc-work-request-id"]).status == "SUCCEEDED"
        with pytest.raises(NotActiveDeploymentError) as info:
            predict(url, _json({}), "application/json", auth=auth)
        assert (info.value.state, info.value.status) == ("INACTIVE", 404)
        assert info.value.code == "NotAuthorizedOrNotFound"
    finally:
        gate.touch()
        state = ds.get_model_deployment(dep_id).data.lifecycle_state
        if state in ("CREATING", "UPDATING"):
            deadline = time.monotonic() + 60
            while ds.get_model_deployment(dep_id).data.lifecycle_state in ("CREATING", "UPDATING"):
                assert time.monotonic() < deadline
                time.sleep(0.1)
        _delete(ds, dep_id)
