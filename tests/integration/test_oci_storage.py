"""Auth, fsspec/ocifs storage, conda slug resolution and from_uri against the local OCI service."""

from __future__ import annotations

import hashlib
import io
import json
import os
import uuid
import zipfile

import oci
import pytest
from prepare_support import SLUG
from prepare_support import is_empty as _is_empty

from ocimodel import GenericModel, conda
from ocimodel.artifact import ModelArtifact
from ocimodel.errors import (
    ArtifactNestedFolderError,
    ArtifactSourceNotFoundError,
    CondaEnvError,
    UnsafeArchiveError,
)
from ocimodel.oci import auth as oci_auth
from ocimodel.oci.storage import copy_uri, is_oci_uri, iter_files, open_uri, uri_exists
from ocimodel.runtime import read_runtime_yaml


@pytest.fixture
def bucket(local_env, namespace, bucket):
    """A fresh bucket; returns its ``oci://bucket@namespace`` root."""
    return f"oci://{bucket}@{namespace}"


def test_env_defaults_build_a_working_signed_client(local_env):
    auth = oci_auth.default_signer()
    assert auth["client_kwargs"] == {"service_endpoint": local_env.endpoint}
    assert auth["config"]["tenancy"] == local_env.config["tenancy"]
    client = oci_auth.make_client(oci.object_storage.ObjectStorageClient, auth)
    assert client.get_namespace().data
    opts = oci_auth.storage_options(auth)
    assert opts["config_kwargs"] == {"service_endpoint": local_env.endpoint}
    assert opts["signer"] is auth["signer"]


def test_reprs_never_show_key_material(local_env):
    key_lines = open(local_env.config["key_file"]).read().splitlines()
    secret_line = key_lines[1]
    auth = oci_auth.api_keys(str(local_env.config_path), local_env.profile)
    with_content = oci_auth.AuthDict(
        config=oci_auth.RedactedDict(
            {**auth["config"], "key_content": "\n".join(key_lines), "pass_phrase": "hunter2"}
        ),
        signer=auth["signer"],
        client_kwargs={},
    )
    for text in (repr(auth), str(with_content), repr(oci_auth.storage_options(with_content))):
        assert secret_line not in text
        assert "hunter2" not in text
        assert "PRIVATE KEY" not in text
    assert "<redacted>" in repr(with_content)


def test_bad_config_file_and_profile_are_typed(local_env, tmp_path):
    with pytest.raises(oci_auth.OCIAuthError, match="'NOPE'.*profile="):
        oci_auth.api_keys(str(local_env.config_path), "NOPE")
    missing = str(tmp_path / "no-config")
    with pytest.raises(oci_auth.OCIAuthError, match="does not exist.*OCI_CONFIG_FILE"):
        oci_auth.api_keys(missing)
    with pytest.raises(oci_auth.OCIAuthError, match="Unknown auth type 'magic'"):
        oci_auth.set_auth("magic")
    oci_auth.set_auth("api_key", oci_config_location=missing)
    with pytest.raises(oci_auth.OCIAuthError, match="does not exist"):
        oci_auth.default_signer()
    oci_auth.reset_auth()
    assert oci_auth.default_signer()["config"]["user"] == local_env.config["user"]


def test_session_token_and_resource_principal_auth(local_env, tmp_path, monkeypatch):
    from ocimodel.local.keys import generate_private_key, private_pem, public_pem

    key = generate_private_key()
    (tmp_path / "session.pem").write_bytes(private_pem(key))
    (tmp_path / "token").write_text(local_env.mint_session_token(public_pem(key)))
    (tmp_path / "config").write_text(
        "[SESSION]\n"
        f"tenancy={local_env.config['tenancy']}\n"
        f"region={local_env.config['region']}\n"
        f"key_file={tmp_path / 'session.pem'}\n"
        f"security_token_file={tmp_path / 'token'}\n"
        "[BROKEN]\n"
        f"tenancy={local_env.config['tenancy']}\n"
        f"key_file={tmp_path / 'session.pem'}\n"
    )
    oci_auth.set_auth("security_token", str(tmp_path / "config"), "SESSION")
    auth = oci_auth.default_signer()
    assert isinstance(auth["signer"], oci.auth.signers.SecurityTokenSigner)
    assert oci_auth.make_client(oci.object_storage.ObjectStorageClient).get_namespace().data
    token = (tmp_path / "token").read_text()
    assert token not in repr(auth) and token.split(".")[1] not in repr(auth)
    with pytest.raises(oci_auth.OCIAuthError, match="'BROKEN'.*security_token_file"):
        oci_auth.security_token(str(tmp_path / "config"), "BROKEN")
    oci_auth.reset_auth()
    for name, value in local_env.resource_principal_env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("OCI_IAM_TYPE", "resource_principal")
    rp = oci_auth.default_signer()
    assert rp["config"] == {"region": local_env.region}
    client = oci_auth.make_client(oci.object_storage.ObjectStorageClient, rp)
    assert client.get_namespace().data


def test_streamed_round_trip_through_ocifs(bucket, tmp_path):
    assert is_oci_uri(bucket) and not is_oci_uri(str(tmp_path))
    data = os.urandom(6 * 1024 * 1024 + 123)  # above ocifs' 5 MiB block: a multipart write
    local = tmp_path / "blob.bin"
    local.write_bytes(data)
    remote = f"{bucket}/data/blob.bin"
    assert not uri_exists(remote)
    copy_uri(str(local), remote)
    assert uri_exists(remote)
    with open_uri(remote, "rb") as fh:
        assert hashlib.sha256(fh.read()).digest() == hashlib.sha256(data).digest()
    back = tmp_path / "nested" / "back.bin"
    copy_uri(remote, str(back))
    assert back.read_bytes() == data
    assert [rel for rel, _ in iter_files(f"{bucket}/data")] == ["blob.bin"]


def test_slug_resolves_through_the_service_pack_bucket(local_env, tmp_path):
    info = conda.resolve_conda_env(SLUG)
    assert info.type == "data_science" and info.python_version == "3.11"
    assert info.path.startswith("oci://service-conda-packs@id19sfcrra6z/service_pack/")
    assert info.path.endswith("/" + SLUG)
    assert uri_exists(info.path)  # the seeded pack placeholder is where the index says
    art = ModelArtifact(str(tmp_path / "art"))
    art.prepare_runtime_yaml(SLUG)
    env = read_runtime_yaml(art.artifact_dir).model_deployment.inference_conda_env
    assert (env.inference_env_path, env.inference_python_version) == (info.path, "3.11")
    with pytest.raises(CondaEnvError, match="could not be read.*namespace/bucketname"):
        conda.resolve_conda_env(SLUG, namespace="nosuchnamespace")
    with pytest.raises(CondaEnvError, match="'nope_v0' is not in the service pack index"):
        art.prepare_runtime_yaml("nope_v0", force_overwrite=True)


def test_conda_bucket_env_overrides_the_index_location(local_env, monkeypatch):
    monkeypatch.setenv(conda.ENV_BUCKET, "no-such-packs")
    with pytest.raises(CondaEnvError, match="oci://no-such-packs@id19sfcrra6z/service_pack"):
        conda.resolve_conda_env(SLUG)
    monkeypatch.setenv(conda.ENV_BUCKET, "service-conda-packs")
    monkeypatch.setenv(conda.ENV_NAMESPACE, "id19sfcrra6z")
    assert conda.resolve_conda_env(SLUG).python_version == "3.11"


def test_conda_bucket_env_moves_the_service_pack_index(local_env, monkeypatch, tmp_path):
    from ocimodel.oci import auth as oci_auth

    client = oci_auth.make_client(oci.object_storage.ObjectStorageClient)
    namespace = client.get_namespace().data
    bucket = f"packs-{uuid.uuid4().hex[:8]}"
    client.create_bucket(
        namespace,
        oci.object_storage.models.CreateBucketDetails(
            name=bucket, compartment_id=local_env.config["tenancy"]
        ),
    )
    path = f"oci://{bucket}@{namespace}/service_pack/cpu/Mine/1.0/mine_p312_v1"
    index = [{"slug": "mine_p312_v1", "pack_path": path, "python": "3.12"}]
    client.put_object(namespace, bucket, "service_pack/index.json", json.dumps(index).encode())
    monkeypatch.setenv("CONDA_BUCKET_NS", namespace)
    monkeypatch.setenv("CONDA_BUCKET_NAME", bucket)

    model = GenericModel(lambda x: x, artifact_dir=str(tmp_path / "art"))
    model.prepare(inference_conda_env="mine_p312_v1")  # python version comes from the index
    env = model.runtime_info.model_deployment.inference_conda_env
    assert (env.inference_env_path, env.inference_env_type) == (path, "data_science")
    assert env.inference_python_version == "3.12"
    # a slug only the default index knows is now unknown: the override is really used
    other = GenericModel(lambda x: x, artifact_dir=str(tmp_path / "other"))
    with pytest.raises(CondaEnvError, match=f"'dbexp_p38_cpu_v1'.*{bucket}"):
        other.prepare(inference_conda_env="dbexp_p38_cpu_v1")
    assert _is_empty(tmp_path / "other")


def _artifact_zip(tmp_path, nested: str = "", extra: tuple = ()) -> bytes:
    src = tmp_path / f"src-{uuid.uuid4().hex[:6]}"
    art = ModelArtifact(str(src), model_file_name="model.pkl")
    art.prepare_runtime_yaml(SLUG)
    (src / "score.py").write_text("def load_model():\n    return 'loaded'\n")
    (src / "model.pkl").write_bytes(b"weights")
    art.write_manifest()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name in sorted(os.listdir(src)):
            zf.write(src / name, f"{nested}{name}")
        for name, data in extra:
            zf.writestr(name, data)
    return buf.getvalue()


def _put(uri: str, data: bytes) -> str:
    with open_uri(uri, "wb") as fh:
        fh.write(data)
    return uri


def test_from_uri_of_oci_zip_and_prefix(local_env, bucket, tmp_path):
    uri = _put(f"{bucket}/artifacts/model.zip", _artifact_zip(tmp_path))
    art = ModelArtifact.from_uri(uri, str(tmp_path / "from-zip"), reload=True)
    assert art.model == "loaded" and art.model_file_name == "model.pkl"
    assert art.verify_manifest(required=True) == ["model.pkl"]
    assert art.runtime_info.model_deployment.inference_conda_env.inference_env_slug == SLUG
    for name in ("score.py", "runtime.yaml", "model.pkl", "ocimodel-manifest.json"):
        copy_uri(os.path.join(art.artifact_dir, name), f"{bucket}/folder/{name}")
    again = ModelArtifact.from_uri(f"{bucket}/folder", str(tmp_path / "from-prefix"))
    assert again.verify_manifest(required=True) == ["model.pkl"]


def test_from_uri_of_bad_oci_sources(local_env, bucket, tmp_path):
    target = tmp_path / "dest"
    with pytest.raises(ArtifactSourceNotFoundError, match="missing.zip"):
        ModelArtifact.from_uri(f"{bucket}/missing.zip", str(target))
    evil = _put(f"{bucket}/evil.zip", _artifact_zip(tmp_path, extra=(("../../x.txt", b"x"),)))
    with pytest.raises(UnsafeArchiveError, match="escapes the target"):
        ModelArtifact.from_uri(evil, str(target))
    nested = _put(f"{bucket}/nested.zip", _artifact_zip(tmp_path, nested="inner/"))
    with pytest.raises(ArtifactNestedFolderError, match="'inner'"):
        ModelArtifact.from_uri(nested, str(target))
    assert not target.exists() or os.listdir(target) == []
    assert [p for p in os.listdir(tmp_path) if p.startswith(".ocimodel-stage-")] == []
