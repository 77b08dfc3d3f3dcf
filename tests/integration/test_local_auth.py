"""Request authentication of the local OCI service, through the real oci SDK and raw requests."""

from __future__ import annotations

import email.utils
import json
import time
import uuid

import oci
import pytest
import requests
from oci.object_storage import ObjectStorageClient
from oci.object_storage.models import CreateBucketDetails

from ocimodel.local.keys import generate_private_key, private_pem, public_pem


@pytest.fixture
def http() -> requests.Session:
    session = requests.Session()
    session.trust_env = False
    yield session
    session.close()


def _error(resp: requests.Response) -> tuple[int, str]:
    return resp.status_code, resp.json()["code"]


def _bucket(client: ObjectStorageClient, namespace: str, compartment: str) -> str:
    name = f"auth-{uuid.uuid4().hex[:10]}"
    client.create_bucket(namespace, CreateBucketDetails(name=name, compartment_id=compartment))
    return name


def test_signed_sdk_call_is_accepted_as_the_config_user(local_oci, http):
    namespace = local_oci.client(ObjectStorageClient).get_namespace().data
    assert isinstance(namespace, str) and namespace
    who = http.get(local_oci.endpoint + "/_admin/health", auth=local_oci.signer()).json()
    assert who["tenancy"] == local_oci.config["tenancy"]
    assert who["user"] == local_oci.config["user"]
    assert who["principalType"] == "api_key"


def test_unsigned_request_is_not_authenticated(local_oci, http):
    resp = http.get(local_oci.endpoint + "/n")
    assert _error(resp) == (401, "NotAuthenticated")
    assert resp.headers["opc-request-id"]


def test_garbage_authorization_header_is_not_authenticated(local_oci, http):
    for value in ("Bearer abc", 'Signature keyId="x"', 'Signature signature="AAAA"'):
        resp = http.get(local_oci.endpoint + "/n", headers={"authorization": value})
        assert _error(resp) == (401, "NotAuthenticated"), value


def test_wrong_private_key_for_a_known_key_id_is_rejected(local_oci, tmp_path):
    wrong = tmp_path / "wrong.pem"
    wrong.write_bytes(private_pem(generate_private_key()))
    config = dict(local_oci.config, key_file=str(wrong))
    client = local_oci.client(ObjectStorageClient, config=config)
    with pytest.raises(oci.exceptions.ServiceError) as err:
        client.get_namespace()
    assert (err.value.status, err.value.code) == (401, "NotAuthenticated")


def test_unregistered_key_is_rejected(local_oci, tmp_path):
    from ocimodel.local.keys import fingerprint_of

    key = generate_private_key()
    path = tmp_path / "unknown.pem"
    path.write_bytes(private_pem(key))
    config = dict(local_oci.config, key_file=str(path), fingerprint=fingerprint_of(key))
    with pytest.raises(oci.exceptions.ServiceError) as err:
        local_oci.client(ObjectStorageClient, config=config).get_namespace()
    assert (err.value.status, err.value.code) == (401, "NotAuthenticated")


def test_tampered_signed_body_is_rejected(local_oci, http):
    url = local_oci.endpoint + "/_admin/faults"
    body = json.dumps({"rules": [{"operation": "get_model", "latency_ms": 1}]}).encode()
    prepared = requests.Request("POST", url, data=body, auth=local_oci.signer()).prepare()
    prepared.body = body.replace(b"get_model", b"put_model")  # same length, other content
    assert _error(http.send(prepared)) == (401, "NotAuthenticated")
    assert local_oci.faults() == []


def test_tampered_path_is_rejected(local_oci, http):
    prepared = requests.Request(
        "GET", local_oci.endpoint + "/_admin/health", auth=local_oci.signer()
    ).prepare()
    prepared.url = local_oci.endpoint + "/_admin/faults"
    assert _error(http.send(prepared)) == (401, "NotAuthenticated")


def test_stale_and_future_dates_are_rejected(local_oci, http):
    for offset in (-600, 600):
        date = email.utils.formatdate(time.time() + offset, usegmt=True)
        resp = http.get(local_oci.endpoint + "/n", headers={"date": date}, auth=local_oci.signer())
        assert _error(resp) == (401, "NotAuthenticated")
        assert "date" in resp.json()["message"]


def test_body_operation_must_sign_body_headers(local_oci, http):
    signer = local_oci.signer()
    resp = http.post(
        local_oci.endpoint + "/_admin/faults",
        json={"rules": []},
        auth=lambda r: signer(r, enforce_content_headers=False),
    )
    assert _error(resp) == (401, "NotAuthenticated")
    assert "x-content-sha256" in resp.json()["message"]


def test_unsigned_body_operations_are_allowed(local_oci, oci_config):
    client = local_oci.client(ObjectStorageClient)
    namespace = client.get_namespace().data
    bucket = _bucket(client, namespace, oci_config["tenancy"])
    client.put_object(namespace, bucket, "dir/with space+plus%.bin", b"x" * 1000)
    got = client.get_object(namespace, bucket, "dir/with space+plus%.bin").data.content
    assert got == b"x" * 1000


def test_tampered_body_of_streamed_operation_is_rejected_when_signed(local_oci, oci_config, http):
    client = local_oci.client(ObjectStorageClient)
    namespace = client.get_namespace().data
    bucket = _bucket(client, namespace, oci_config["tenancy"])
    url = f"{local_oci.endpoint}/n/{namespace}/b/{bucket}/o/tampered"
    body = b"a" * 100_000
    prepared = requests.Request("PUT", url, data=body, auth=local_oci.signer()).prepare()
    assert "x-content-sha256" in prepared.headers["authorization"]
    prepared.body = b"b" * 100_000
    assert _error(http.send(prepared)) == (401, "NotAuthenticated")
    with pytest.raises(oci.exceptions.ServiceError) as err:
        client.head_object(namespace, bucket, "tampered")
    assert err.value.status == 404
    ok = requests.Request("PUT", url, data=body, auth=local_oci.signer()).prepare()
    assert http.send(ok).status_code == 200


def test_oversize_signed_body_is_rejected(local_oci, http):
    huge = json.dumps({"rules": [], "pad": "x" * (11 * 1024 * 1024)})
    resp = http.post(local_oci.endpoint + "/_admin/faults", data=huge, auth=local_oci.signer())
    assert _error(resp) == (413, "RequestEntityTooLarge")


def test_other_tenancy_gets_not_found(local_oci, oci_config):
    owner = local_oci.client(ObjectStorageClient)
    namespace = owner.get_namespace().data
    bucket = _bucket(owner, namespace, oci_config["tenancy"])
    owner.put_object(namespace, bucket, "secret.txt", b"mine")

    stranger_config = local_oci.add_user()
    assert stranger_config["tenancy"] != oci_config["tenancy"]
    stranger = local_oci.client(ObjectStorageClient, config=stranger_config)
    assert stranger.get_namespace().data != namespace
    for call in (
        lambda: stranger.get_object(namespace, bucket, "secret.txt"),
        lambda: stranger.get_bucket(namespace, bucket),
    ):
        with pytest.raises(oci.exceptions.ServiceError) as err:
            call()
        assert (err.value.status, err.value.code) == (404, "NotAuthorizedOrNotFound")

    colleague_config = local_oci.add_user(tenancy=oci_config["tenancy"])
    assert colleague_config["user"] != oci_config["user"]
    colleague = local_oci.client(ObjectStorageClient, config=colleague_config)
    assert colleague.get_object(namespace, bucket, "secret.txt").data.content == b"mine"


def test_query_strings_and_odd_names_are_signed_as_sent(local_oci, oci_config):
    client = local_oci.client(ObjectStorageClient)
    namespace = client.get_namespace().data
    bucket = _bucket(client, namespace, oci_config["tenancy"])
    names = ["plain", "dir with space/é ü.txt", "a+b=c&d?e#f", "100%/x"]
    for name in names:
        client.put_object(namespace, bucket, name, name.encode())
    listed = client.list_objects(namespace, bucket, prefix="dir with space/", fields="name,size")
    assert [o.name for o in listed.data.objects] == ["dir with space/é ü.txt"]
    for name in names:
        assert client.get_object(namespace, bucket, name).data.content == name.encode()


def test_signed_json_bodies_reach_the_data_science_api(local_oci, oci_config):
    from oci.data_science import DataScienceClient
    from oci.data_science.models import CreateProjectDetails

    ds = local_oci.client(DataScienceClient)
    details = CreateProjectDetails(
        compartment_id=oci_config["tenancy"], display_name="signed body é", description="x" * 5000
    )
    project = ds.create_project(details).data
    assert ds.get_project(project.id).data.description == "x" * 5000

    stranger = local_oci.client(DataScienceClient, config=local_oci.add_user())
    with pytest.raises(oci.exceptions.ServiceError) as err:
        stranger.get_project(project.id)
    assert (err.value.status, err.value.code) == (404, "NotAuthorizedOrNotFound")


def test_session_token_signer_is_accepted(local_oci, http):
    signer = local_oci.session_signer()
    client = local_oci.client(
        ObjectStorageClient, config={"region": local_oci.region}, signer=signer
    )
    owner_ns = local_oci.client(ObjectStorageClient).get_namespace().data
    assert client.get_namespace().data == owner_ns
    who = http.get(local_oci.endpoint + "/_admin/health", auth=signer).json()
    assert who["principalType"] == "session_token"
    assert who["tenancy"] == local_oci.config["tenancy"]


def test_forged_and_expired_session_tokens_are_rejected(local_oci, http):
    key = generate_private_key()
    expired = local_oci.keyring().tokens.mint_session_token(
        local_oci.config["tenancy"], local_oci.config["user"], public_pem(key), ttl=-60
    )
    header, payload, _ = local_oci.mint_session_token(public_pem(key)).split(".")
    forged = f"{header}.{payload}.{'A' * 342}"
    for token in (expired, forged, "not-a-jwt"):
        signer = oci.auth.signers.SecurityTokenSigner(token, key)
        resp = http.get(local_oci.endpoint + "/n", auth=signer)
        assert _error(resp) == (401, "NotAuthenticated")


def test_session_token_with_another_key_is_rejected(local_oci, http):
    token = local_oci.mint_session_token(public_pem(generate_private_key()))
    signer = oci.auth.signers.SecurityTokenSigner(token, generate_private_key())
    assert _error(http.get(local_oci.endpoint + "/n", auth=signer)) == (401, "NotAuthenticated")


def test_resource_principal_v22_signer_is_accepted(local_oci, monkeypatch, http):
    compartment = "ocid1.compartment.oc1..rpcompartment"
    for name, value in local_oci.resource_principal_env(compartment=compartment).items():
        monkeypatch.setenv(name, value)
    signer = oci.auth.signers.get_resource_principals_signer()
    assert signer.tenancy_id == local_oci.config["tenancy"]
    assert signer.compartment_id == compartment
    client = local_oci.client(ObjectStorageClient, config={"region": signer.region}, signer=signer)
    assert client.get_namespace().data == local_oci.client(ObjectStorageClient).get_namespace().data
    who = http.get(local_oci.endpoint + "/_admin/health", auth=signer).json()
    assert who["principalType"] == "resource_principal"
    assert who["tenancy"] == local_oci.config["tenancy"]


def test_resource_principal_of_another_tenancy_sees_its_own_namespace(local_oci, monkeypatch):
    other = local_oci.add_user()
    env = local_oci.resource_principal_env(tenancy=other["tenancy"])
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    signer = oci.auth.signers.get_resource_principals_signer()
    client = local_oci.client(ObjectStorageClient, config={"region": signer.region}, signer=signer)
    as_user = local_oci.client(ObjectStorageClient, config=other).get_namespace().data
    assert client.get_namespace().data == as_user
