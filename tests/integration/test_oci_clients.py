"""OCIAuth's cached clients and filesystem against the local OCI service: typed and ADS-style
auth both work end to end, the cached filesystem never serves a stale listing, and the
process default follows OCIMODEL_SERVICE_ENDPOINT and set_auth()."""

from __future__ import annotations

import os
import threading
import uuid

import oci
import pytest
from oci.data_science import DataScienceClient
from oci.object_storage import ObjectStorageClient

from ocimodel.oci import auth as oci_auth
from ocimodel.oci import storage
from ocimodel.oci.auth import OCIAuth, resolve_auth
from ocimodel.oci.storage import (
    copy_uri,
    filesystem,
    iter_files,
    open_uri,
    uri_exists,
    uri_isdir,
)


@pytest.fixture
def local_env(local_oci, monkeypatch):
    """The process default (auth=None) points at the local service through the environment."""
    for name, value in local_oci.env().items():
        monkeypatch.setenv(name, value)
    for name in (oci_auth.ENV_IAM_TYPE, oci_auth.ENV_REGION):
        monkeypatch.delenv(name, raising=False)
    oci_auth.reset_auth()
    yield local_oci
    oci_auth.reset_auth()


@pytest.fixture
def typed(local_oci) -> OCIAuth:
    """An OCIAuth for the local user's profile, built without the environment's help."""
    return OCIAuth.from_config_file(
        str(local_oci.config_path), local_oci.profile, endpoint=local_oci.endpoint
    )


def _root(bucket: str, namespace: str) -> str:
    return f"oci://{bucket}@{namespace}"


def test_typed_and_ads_auth_both_reach_the_service(local_oci, typed, namespace, bucket):
    ads = oci_auth.api_keys(
        str(local_oci.config_path),
        local_oci.profile,
        client_kwargs={"service_endpoint": local_oci.endpoint},
    )
    hand_made = local_oci.auth()  # config + signer + client_kwargs, built by hand
    for auth in (typed, ads, hand_made):
        os_client = oci_auth.make_client(ObjectStorageClient, auth)
        assert os_client is resolve_auth(auth).client("object_storage")
        assert os_client.get_namespace().data == namespace
        names = [
            b.name for b in os_client.list_buckets(namespace, local_oci.config["tenancy"]).data
        ]
        assert bucket in names
        ds = oci_auth.make_client(DataScienceClient, auth)
        assert ds.list_projects(compartment_id=local_oci.config["tenancy"]).status == 200

        uri = f"{_root(bucket, namespace)}/via-{uuid.uuid4().hex[:6]}/blob.txt"
        assert not uri_exists(uri, auth)
        with open_uri(uri, "wb", auth) as fh:
            fh.write(b"hello")
        assert uri_exists(uri, auth)  # right after the write, through the same cached fs
        with open_uri(uri, "rb", auth) as fh:
            assert fh.read() == b"hello"
        assert storage.filesystem(uri, auth) is resolve_auth(auth).filesystem()


def test_cached_filesystem_sees_writes_and_deletes_by_other_clients(
    local_oci, typed, client, namespace, bucket
):
    root = _root(bucket, namespace)
    fs = filesystem(root, typed)
    assert filesystem(root, typed) is fs  # one filesystem, reused below
    assert list(iter_files(f"{root}/data", typed)) == []
    assert not uri_isdir(f"{root}/data", typed)

    with open_uri(f"{root}/data/a.txt", "wb", typed) as fh:  # through the cached fs
        fh.write(b"a")
    assert [rel for rel, _ in iter_files(f"{root}/data", typed)] == ["a.txt"]

    # written by another client: ocifs' listing cache would hide it from find/ls
    client.put_object(namespace, bucket, "data/sub/b.txt", b"b")
    assert [rel for rel, _ in iter_files(f"{root}/data", typed)] == ["a.txt", "sub/b.txt"]
    assert uri_exists(f"{root}/data/sub/b.txt", typed)
    assert uri_isdir(f"{root}/data/sub", typed)
    assert sorted(fs.ls(f"{root}/data")) == [
        f"{bucket}@{namespace}/data/a.txt",
        f"{bucket}@{namespace}/data/sub",
    ]

    client.delete_object(namespace, bucket, "data/sub/b.txt")
    client.delete_object(namespace, bucket, "data/a.txt")
    assert not uri_exists(f"{root}/data/sub/b.txt", typed)
    assert not uri_isdir(f"{root}/data/sub", typed)
    assert list(iter_files(f"{root}/data", typed)) == []
    assert fs.ls(f"{root}/data") == [] or not fs.exists(f"{root}/data")
    assert filesystem(root, typed) is fs


def test_overwrite_through_another_client_is_read_back(local_oci, typed, client, namespace, bucket):
    uri = f"{_root(bucket, namespace)}/model.bin"
    with open_uri(uri, "wb", typed) as fh:
        fh.write(b"first")
    with open_uri(uri, "rb", typed) as fh:
        assert fh.read() == b"first"
    client.put_object(namespace, bucket, "model.bin", b"second, longer")
    assert typed.filesystem().info(uri)["size"] == len(b"second, longer")
    with open_uri(uri, "rb", typed) as fh:
        assert fh.read() == b"second, longer"


def test_default_auth_builds_the_filesystem_once(local_env, namespace, bucket, tmp_path):
    root = _root(bucket, namespace)
    fs = filesystem(root)
    assert filesystem(root) is fs
    assert resolve_auth(None).filesystem() is fs
    assert filesystem(root, None) is fs
    oci_client = fs.oci_client
    assert not uri_exists(f"{root}/x.txt")
    local = tmp_path / "x.txt"
    local.write_bytes(b"x" * 1000)
    copy_uri(str(local), f"{root}/x.txt")
    assert uri_exists(f"{root}/x.txt") and not uri_isdir(f"{root}/x.txt")
    assert [rel for rel, _ in iter_files(root)] == ["x.txt"]
    assert filesystem(root) is fs and fs.oci_client is oci_client
    # the default's clients are the ones make_client hands out
    assert oci_auth.make_client(ObjectStorageClient) is resolve_auth(None).client(
        ObjectStorageClient
    )
    assert oci_auth.make_client(ObjectStorageClient).get_namespace().data == namespace


def test_default_follows_the_endpoint_variable_and_set_auth(local_env, monkeypatch, namespace):
    first = resolve_auth(None)
    assert first.endpoint == local_env.endpoint
    assert first.client(ObjectStorageClient).get_namespace().data == namespace

    elsewhere = "http://127.0.0.1:9"  # nothing listens there
    monkeypatch.setenv(oci_auth.ENV_SERVICE_ENDPOINT, elsewhere)
    moved = resolve_auth(None)
    assert moved is not first and moved.endpoint == elsewhere
    assert oci_auth.make_client(ObjectStorageClient).base_client.endpoint == elsewhere
    assert filesystem("oci://b@n").oci_client.base_client.endpoint == elsewhere
    assert oci_auth.storage_options()["config_kwargs"] == {"service_endpoint": elsewhere}

    monkeypatch.setenv(oci_auth.ENV_SERVICE_ENDPOINT, local_env.endpoint)
    assert resolve_auth(None) is first  # the same settings: the same cached auth

    oci_auth.set_auth(
        "api_key", str(local_env.config_path), local_env.profile, client_kwargs={"timeout": 7}
    )
    chosen = resolve_auth(None)
    assert chosen is not first and chosen.endpoint == local_env.endpoint
    assert chosen.client(ObjectStorageClient).base_client.timeout == 7
    assert chosen.client(ObjectStorageClient).get_namespace().data == namespace
    oci_auth.reset_auth()
    assert resolve_auth(None) is not chosen and resolve_auth(None) is not first


def test_key_content_auth_reaches_the_service(local_oci, namespace):
    cfg = local_oci.config
    with open(cfg["key_file"], encoding="ascii") as fh:
        pem = fh.read()
    auth = OCIAuth.from_key(
        tenancy=cfg["tenancy"],
        user=cfg["user"],
        fingerprint=cfg["fingerprint"],
        key_content=pem,
        region=cfg["region"],
        endpoint=local_oci.endpoint,
    )
    assert auth.client("object_storage").get_namespace().data == namespace
    body = [line for line in pem.splitlines() if line and "-----" not in line]
    for text in (repr(auth), str(auth.to_dict()), repr(auth.storage_options())):
        assert not any(line in text for line in body)


def test_session_token_and_principals_through_ociauth(local_oci, tmp_path, monkeypatch, namespace):
    from ocimodel.local.keys import generate_private_key, private_pem, public_pem

    key = generate_private_key()
    (tmp_path / "session.pem").write_bytes(private_pem(key))
    (tmp_path / "token").write_text(local_oci.mint_session_token(public_pem(key)))
    (tmp_path / "config").write_text(
        "[SESSION]\n"
        f"tenancy={local_oci.config['tenancy']}\n"
        f"region={local_oci.config['region']}\n"
        f"key_file={tmp_path / 'session.pem'}\n"
        f"security_token_file={tmp_path / 'token'}\n"
    )
    session = OCIAuth.from_config_file(
        str(tmp_path / "config"), "SESSION", kind="security_token", endpoint=local_oci.endpoint
    )
    assert isinstance(session.signer, oci.auth.signers.SecurityTokenSigner)
    assert session.client(ObjectStorageClient).get_namespace().data == namespace
    token = (tmp_path / "token").read_text()
    assert token.split(".")[1] not in repr(session) + repr(session.to_dict())

    # `oci session refresh` rewrites the token file: the next call signs with the new token
    before = session.client(ObjectStorageClient)
    assert session.client(ObjectStorageClient) is before
    (tmp_path / "token.new").write_text(local_oci.mint_session_token(public_pem(key)))
    os.replace(tmp_path / "token.new", tmp_path / "token")
    after = session.client(ObjectStorageClient)
    assert after is not before and after.base_client.signer is session.signer
    assert session.signer is not before.base_client.signer
    assert after.get_namespace().data == namespace

    for name, value in local_oci.resource_principal_env().items():
        monkeypatch.setenv(name, value)
    rp = OCIAuth.resource_principal(endpoint=local_oci.endpoint)
    assert rp.region == local_oci.region and rp.to_dict()["config"] == {"region": local_oci.region}
    assert rp.client(ObjectStorageClient).get_namespace().data == namespace
    assert rp.client(ObjectStorageClient) is rp.client(ObjectStorageClient)


def test_threads_share_one_client_and_one_filesystem(local_oci, typed, namespace, bucket):
    barrier = threading.Barrier(6)
    clients, filesystems, errors = [], [], []

    def work(i: int) -> None:
        try:
            barrier.wait()
            c = typed.client(ObjectStorageClient)
            fs = filesystem(_root(bucket, namespace), typed)
            c.put_object(namespace, bucket, f"t/{i}.txt", str(i).encode())
            clients.append(c)
            filesystems.append(fs)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len({id(c) for c in clients}) == 1 and len({id(f) for f in filesystems}) == 1
    listed = [rel for rel, _ in iter_files(f"{_root(bucket, namespace)}/t", typed)]
    assert listed == [f"{i}.txt" for i in range(6)]
