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
from ocimodel.oci import predict as predict_module
from ocimodel.oci.auth import resolve_auth
from ocimodel.oci.predict import (
    MAX_PAYLOAD_BYTES,
    DeploymentNotActiveError,
    PredictError,
    PredictThrottledError,
    PredictTimeoutError,
    predict,
    predict_url,
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


def test_connections_are_kept_open_per_auth_and_host(echo, auth):
    _, url = echo
    host = predict_module._connections_for(auth, url)
    assert predict_module._connections_for(auth, predict_url(url)) is host
    for i in range(5):
        answer = predict(url, _json({"i": i}), "application/json", auth=auth)
        assert answer.json()["echo"] == {"i": i}
    (pool,) = [host.pool.pools[key] for key in host.pool.pools.keys()]
    assert pool.num_connections == 1  # one connection, kept alive across the calls
    (conn,) = [c for c in pool.pool.queue if c is not None]
    assert conn.sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)


def test_a_proxy_in_the_environment_is_honoured(monkeypatch):
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    host = predict_module._HostConnections("https://modeldeployment.example.com/")
    assert host.pool is None and host.session is not None
    assert host.session.proxies["https"] == "http://proxy.example:3128"
    monkeypatch.setenv("NO_PROXY", "modeldeployment.example.com")
    assert predict_module._HostConnections("https://modeldeployment.example.com/").session is None


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


def test_a_payload_near_the_limit_passes_through(echo, auth):
    _, url = echo
    payload = b"\x00\x01" * (9 * 1024 * 1024 // 2)
    answer = predict(url, payload, "application/octet-stream", auth=auth)
    assert answer.json()["bytes"] == len(payload)


def test_a_model_server_that_dies_answers_503(local_oci, ds, project, echo_model, auth, tmp_path):
    import os
    import signal

    details = deployment_details(local_oci.config["tenancy"], project, echo_model)
    dep_id, wr = create_and_wait(ds, details)
    assert wr.status == "SUCCEEDED"
    url = ds.get_model_deployment(dep_id).data.model_deployment_url
    try:
        assert predict(url, _json(1), "application/json", auth=auth).json()["echo"] == 1
        (server,) = engine_of(local_oci.state).servers.servers(dep_id)
        results: list = []

        def call() -> None:
            try:
                predict(url, _json({"wait_for": str(tmp_path / "never")}), auth=auth)
            except PredictError as exc:
                results.append(exc)

        thread = threading.Thread(target=call, daemon=True)
        thread.start()
        deadline = time.monotonic() + 30
        while server.in_flight < 1:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        os.kill(server.pid, signal.SIGKILL)
        thread.join(30)
        (err,) = results
        assert (err.status, err.code) == (503, "ServiceUnavailable")
        with pytest.raises(PredictError) as info:
            predict(url, _json(2), "application/json", auth=auth)
        assert info.value.status == 503 and "no healthy model server" in info.value.message
        assert not isinstance(info.value, NotActiveDeploymentError)  # it is ACTIVE
    finally:
        _delete(ds, dep_id)


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


# --- the route's upstream connections, against scripted HTTP servers ---------------------------


def _run_upstream(answers, calls):
    """Start a server answering each request with the next of ``answers`` (bytes, or a callable
    taking the writer), POST ``calls`` bodies through one ServerPool; return the results (or
    exceptions) and how many connections the server saw."""
    import asyncio
    import types

    from ocimodel.local.deployments_predict import ServerPool

    script = list(answers)
    connections = []

    async def handle(reader, writer):
        connections.append(writer)
        try:
            while script:
                head = await reader.readuntil(b"\r\n\r\n")
                length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
                await reader.readexactly(length)
                answer = script.pop(0)
                if callable(answer):
                    await answer(writer)
                    return
                writer.write(answer)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def main():
        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        pool = ServerPool(types.SimpleNamespace(port=port))
        results = []
        for body in calls:
            try:
                results.append(await pool.post(body, "application/json"))
            except Exception as exc:  # noqa: BLE001 - the test inspects it
                results.append(exc)
        pool.close()
        server.close()
        return results

    results = asyncio.run(main())
    return results, len(connections)


def _answer(body: bytes, *extra: str) -> bytes:
    head = "".join(f"{h}\r\n" for h in extra)
    return (
        f"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n{head}"
        f"content-length: {len(body)}\r\n\r\n"
    ).encode() + body


def test_upstream_connections_are_kept_and_answers_read_in_every_framing():
    chunked = (
        b"HTTP/1.1 100 Continue\r\n\r\n"
        b"HTTP/1.1 500 Internal Server Error\r\ntransfer-encoding: chunked\r\n"
        b"content-type: application/json\r\n\r\n"
        b'4\r\n{"a"\r\n3;ext=1\r\n: 1\r\n1\r\n}\r\n0\r\nx-trailer: t\r\n\r\n'
    )
    results, connections = _run_upstream(
        [_answer(b"[1]"), chunked, _answer(b"[3]")], [b"{}", b"{}", b"{}"]
    )
    assert results == [
        (200, "application/json", b"[1]"),
        (500, "application/json", b'{"a": 1}'),
        (200, "application/json", b"[3]"),
    ]
    assert connections == 1


def test_upstream_connection_close_and_dropped_connections_are_handled():
    from ocimodel.local.deployments_predict import UpstreamError

    async def drop(writer):
        writer.transport.abort()

    # "connection: close" is honoured (a new connection follows); a kept connection the
    # server drops without answering is replaced once, on a new connection.
    results, connections = _run_upstream(
        [_answer(b"[1]", "connection: close"), _answer(b"[2]"), drop, _answer(b"[3]")],
        [b"{}", b"{}", b"{}"],
    )
    assert [r[2] for r in results] == [b"[1]", b"[2]", b"[3]"]
    assert connections == 3
    # A new connection dropped unanswered is not retried.
    results, connections = _run_upstream([drop], [b"{}"])
    assert isinstance(results[0], UpstreamError) and connections == 1


def test_upstream_answers_that_break_off_are_errors():
    from ocimodel.local.deployments_predict import UpstreamError

    async def half(writer):
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nabc")
        await writer.drain()

    results, _ = _run_upstream([half], [b"{}"])
    assert isinstance(results[0], UpstreamError) and "broke off" in str(results[0])
    results, _ = _run_upstream([b"SSH-2.0-OpenSSH\r\n\r\n"], [b"{}"])
    assert isinstance(results[0], UpstreamError) and "not HTTP/1.x" in str(results[0])
