"""The blocks against the session's Prefect test server and the local OCI service: saved here,
loaded by slug in a fresh process that never imported ocimodel, secrets intact there (they
sign real requests) and masked in every repr, dump, str and log line; registered by the
Prefect CLI; clients cached per settings; bad settings refused with typed errors naming the
field; deployment settings in step with the core's ModelProperties."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import subprocess
import sys
import typing
import uuid
from pathlib import Path

import oci
import pytest
from cryptography.hazmat.primitives import serialization
from oci.data_science.models import CreateProjectDetails
from prefect.settings import PREFECT_API_URL
from pydantic import ValidationError

from ocimodel.blocks import ModelDeploymentSettings, OCICredentials
from ocimodel.blocks.credentials import AuthType
from ocimodel.local.keys import generate_private_key, private_pem, public_pem
from ocimodel.oci.auth import AUTH_TYPES, OCIAuth, OCIAuthError
from ocimodel.properties import ModelProperties

SUBPROCESS_TIMEOUT = 120

LOAD_SCRIPT = r"""
import hashlib, json, logging, sys

from prefect.blocks.core import Block

logging.basicConfig(level=logging.DEBUG, stream=sys.stderr)  # every log line, to be checked
credentials_slug, settings_slug, compartment = sys.argv[1:4]
imported_first = sorted(m for m in sys.modules if m.split(".")[0] == "ocimodel")
credentials = Block.load(credentials_slug)
settings = Block.load(settings_slug)

projects = credentials.get_client("data_science").list_projects(compartment_id=compartment).data
namespace = settings.credentials.get_client("object_storage").get_namespace().data

# Everything a user may print or log about the loaded blocks.
for block in (credentials, settings):
    print(repr(block))
    print(str(block))
    print(block.model_dump())
    print(block.model_dump_json())
print(repr(credentials.get_auth()), credentials.get_auth())
print(settings.to_properties())
logging.getLogger("prefect.blocks-test").info("loaded %r and %s", credentials, settings)

def digest(secret):
    return hashlib.sha256(secret.get_secret_value().encode()).hexdigest()

print("RESULT:" + json.dumps({
    "imported_first": imported_first,
    "classes": [type(b).__module__ + "." + type(b).__name__ for b in (credentials, settings)],
    "nested": type(settings.credentials).__name__,
    "projects": [p.id for p in projects],
    "namespace": namespace,
    "key_digest": digest(credentials.key_content),
    "pass_phrase_digest": digest(credentials.pass_phrase),
    "properties": settings.to_properties().to_dict(),
}))
"""


DEPLOYMENT = {
    "inference_conda_env": "oci://bucket@ns/conda/env.tar.gz",
    "compartment_id": "ocid1.compartment.oc1..c",
    "project_id": "ocid1.datascienceproject.oc1..p",
    "bucket_uri": "oci://bucket@ns/prefix",
    "remove_existing_artifact": True,
    "deployment_instance_shape": "VM.Standard.E4.Flex",
    "deployment_ocpus": 1.5,
    "deployment_memory_in_gbs": 24,
    "deployment_instance_count": 3,
    "deployment_bandwidth_mbps": 25,
    "deployment_log_group_id": "ocid1.loggroup.oc1..g",
    "deployment_access_log_id": "ocid1.log.oc1..a",
    "deployment_predict_log_id": "ocid1.log.oc1..p",
}
"""Deployment settings of every kind of field (text, bool, int, float)."""


# --- helpers ----------------------------------------------------------------------------------


def _digest(text: str) -> str:
    import hashlib

    return hashlib.sha256(text.encode()).hexdigest()


def _child_env() -> dict[str, str]:
    """This process's environment without OCI settings (the blocks must carry them), pointed
    at the session's Prefect test server."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OCI_", "OCIMODEL_"))}
    env["PREFECT_API_URL"] = PREFECT_API_URL.value()
    env["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
    return env


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        args,
        capture_output=True,
        text=True,
        timeout=SUBPROCESS_TIMEOUT,
        env=_child_env(),
        cwd=cwd,
        check=False,
    )


def _secret_fragments(secret: str) -> list[str]:
    """The pieces of a secret that must never show: each line of a PEM body, or the text."""
    lines = [line for line in secret.splitlines() if line and not line.startswith("-----")]
    return lines or [secret]


def _assert_hidden(text: str, secrets: typing.Iterable[str]) -> None:
    for secret in secrets:
        for fragment in _secret_fragments(secret):
            assert fragment not in text, "a secret appears in the output"


@dataclasses.dataclass(frozen=True)
class ApiKey:
    """The local user's API key as a block takes it: encrypted PEM text and its pass phrase."""

    key_content: str
    pass_phrase: str
    user: str
    tenancy: str
    fingerprint: str
    region: str

    def block(self, endpoint: str) -> OCICredentials:
        return OCICredentials(endpoint=endpoint, **dataclasses.asdict(self))


@pytest.fixture(scope="module")
def api_key(local_oci) -> ApiKey:
    """The local user's key re-encrypted with a pass phrase (both secrets then matter)."""
    config = local_oci.config
    key = serialization.load_pem_private_key(Path(config["key_file"]).read_bytes(), None)
    pass_phrase = f"pp-{uuid.uuid4().hex}"
    encrypted = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(pass_phrase.encode()),
    ).decode()
    return ApiKey(
        key_content=encrypted,
        pass_phrase=pass_phrase,
        user=config["user"],
        tenancy=config["tenancy"],
        fingerprint=config["fingerprint"],
        region=config["region"],
    )


@pytest.fixture
def file_credentials(local_oci) -> OCICredentials:
    """Credentials from the local user's config file profile, at the local service."""
    return OCICredentials(
        config_file=str(local_oci.config_path), profile="DEFAULT", endpoint=local_oci.endpoint
    )


@pytest.fixture
def project(local_oci) -> tuple[str, str]:
    """(compartment, project id): a new project in a fresh compartment."""
    compartment = f"ocid1.compartment.oc1..{uuid.uuid4().hex}"
    client = local_oci.client(oci.data_science.DataScienceClient)
    created = client.create_project(CreateProjectDetails(compartment_id=compartment)).data
    return compartment, created.id


# --- saved here, loaded elsewhere -------------------------------------------------------------


def test_saved_blocks_load_by_slug_in_a_fresh_process_with_secrets_intact_and_hidden(
    local_oci, api_key, project, tmp_path
):
    compartment, project_id = project
    name = f"blocks-{uuid.uuid4().hex[:10]}"
    credentials = api_key.block(local_oci.endpoint)
    credentials.save(name)
    settings = ModelDeploymentSettings(
        credentials=credentials,
        **{**DEPLOYMENT, "compartment_id": compartment, "project_id": project_id},
    )
    settings.save(name)

    done = _run(
        [
            sys.executable,
            "-c",
            LOAD_SCRIPT,
            f"{OCICredentials.get_block_type_slug()}/{name}",
            f"{ModelDeploymentSettings.get_block_type_slug()}/{name}",
            compartment,
        ],
        cwd=tmp_path,
    )
    output = done.stdout + done.stderr
    _assert_hidden(output, [api_key.key_content, api_key.pass_phrase])
    assert done.returncode == 0, "the child failed; its output (secrets checked absent):\n" + output
    [line] = [line for line in done.stdout.splitlines() if line.startswith("RESULT:")]
    result = json.loads(line.removeprefix("RESULT:"))

    assert result["imported_first"] == []  # the entry point, not the script, found the classes
    assert result["classes"] == [
        "ocimodel.blocks.credentials.OCICredentials",
        "ocimodel.blocks.deployment_settings.ModelDeploymentSettings",
    ]
    assert result["nested"] == "OCICredentials"
    assert result["projects"] == [project_id]  # signed with the key and pass phrase it loaded
    assert (
        result["namespace"]
        == local_oci.client(oci.object_storage.ObjectStorageClient).get_namespace().data
    )
    assert result["key_digest"] == _digest(api_key.key_content)
    assert result["pass_phrase_digest"] == _digest(api_key.pass_phrase)
    assert result["properties"] == settings.to_properties().to_dict()
    assert "Loaded OCI credentials: OCIAuth(kind='api_key'" in output  # its log was captured
    assert "SecretStr('**********')" in output


def test_prefect_cli_registers_the_module(tmp_path):
    done = _run(
        [sys.executable, "-m", "prefect", "block", "register", "-m", "ocimodel.blocks"],
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Successfully registered 2 blocks" in done.stdout, done.stdout


# --- in this process --------------------------------------------------------------------------


def test_api_key_from_a_config_file_profile_reaches_the_local_service(file_credentials, project):
    compartment, project_id = project
    auth = file_credentials.get_auth()
    assert isinstance(auth, OCIAuth) and auth.kind == "api_key"
    projects = file_credentials.get_client("data_science").list_projects(compartment_id=compartment)
    assert [p.id for p in projects.data] == [project_id]
    assert file_credentials.get_client("object_storage").get_namespace().data


def test_get_client_is_cached_per_settings(local_oci, file_credentials):
    client = file_credentials.get_client("data_science")
    assert file_credentials.get_client("data_science") is client
    assert file_credentials.get_client() is client
    assert client is file_credentials.get_auth().client("data_science")  # the core's cache

    twin = OCICredentials.model_validate(file_credentials.model_dump())
    assert twin.get_auth() is file_credentials.get_auth()
    assert twin.get_client("data_science") is client

    assert file_credentials.get_client("object_storage") is not client
    elsewhere = OCICredentials(
        config_file=str(local_oci.config_path),
        endpoint=local_oci.endpoint,
        endpoints={"data_science": local_oci.endpoint},
    )
    assert elsewhere.get_client("data_science") is not client


def test_session_token_of_a_profile_or_of_its_own_file(local_oci, tmp_path, project):
    compartment, project_id = project
    key = generate_private_key()
    key_file = tmp_path / "session.pem"
    key_file.write_bytes(private_pem(key))
    profile_token = tmp_path / "profile-token"
    profile_token.write_text(local_oci.mint_session_token(public_pem(key)))
    own_token = tmp_path / "own-token"
    own_token.write_text(local_oci.mint_session_token(public_pem(key)))
    config_file = tmp_path / "config"
    config_file.write_text(
        f"[SESSION]\ntenancy = {local_oci.config['tenancy']}\nregion = {local_oci.region}\n"
        f"key_file = {key_file}\nsecurity_token_file = {profile_token}\n"
    )
    common = {
        "auth_type": "security_token",
        "config_file": str(config_file),
        "profile": "SESSION",
        "endpoint": local_oci.endpoint,
    }
    for credentials, token_file in (
        (OCICredentials(**common), profile_token),
        (OCICredentials(**common, security_token_file=str(own_token)), own_token),
    ):
        auth = credentials.get_auth()
        assert auth.kind == "security_token"
        assert auth.config["security_token_file"] == str(token_file)
        listed = credentials.get_client("data_science").list_projects(compartment_id=compartment)
        assert [p.id for p in listed.data] == [project_id]


def test_resource_principal_from_the_environment(local_oci, monkeypatch, project):
    compartment, project_id = project
    for name, value in local_oci.resource_principal_env().items():
        monkeypatch.setenv(name, value)
    credentials = OCICredentials(auth_type="resource_principal")
    assert credentials.get_auth().kind == "resource_principal"
    listed = credentials.get_client("data_science").list_projects(compartment_id=compartment)
    assert [p.id for p in listed.data] == [project_id]


def test_secrets_are_masked_in_this_process_too(local_oci, api_key, caplog):
    credentials = api_key.block(local_oci.endpoint)
    settings = ModelDeploymentSettings(credentials=credentials)
    with caplog.at_level(logging.DEBUG):
        auth = credentials.get_auth()
        credentials.logger.info("using %r", credentials)
    shown = [
        repr(credentials),
        str(credentials),
        str(credentials.model_dump()),
        credentials.model_dump_json(),
        str(settings.model_dump()),
        repr(settings),
        repr(auth),
        str(auth.config),
        caplog.text,
    ]
    _assert_hidden("\n".join(shown), [api_key.key_content, api_key.pass_phrase])
    assert credentials.key_content.get_secret_value() == api_key.key_content
    # The fields Prefect encrypts at rest and the UI masks, nested ones included.
    assert OCICredentials.model_json_schema()["secret_fields"] == ["key_content", "pass_phrase"]
    assert ModelDeploymentSettings.model_json_schema()["secret_fields"] == [
        "credentials.key_content",
        "credentials.pass_phrase",
    ]


# --- bad settings -----------------------------------------------------------------------------

SECRET = (
    "-----BEGIN PRIVATE KEY-----\nc2VjcmV0LWtleS1ib2R5LW5ldmVyLXNob3du\n-----END PRIVATE KEY-----"
)
PHRASE = "pass-phrase-never-shown"
KEY = {"user": "ocid1.user.oc1..u", "tenancy": "ocid1.tenancy.oc1..t", "region": "us-phoenix-1"}


@pytest.mark.parametrize(
    ("settings", "fields"),
    [
        ({"auth_type": "password"}, {"auth_type"}),
        (
            {"key_content": SECRET, "pass_phrase": PHRASE},
            {"user", "tenancy", "fingerprint", "region"},
        ),
        ({"key_content": SECRET, "config_file": "/x", **KEY, "fingerprint": "aa"}, {"config_file"}),
        ({"pass_phrase": PHRASE}, {"pass_phrase"}),
        ({"auth_type": "security_token", "key_content": SECRET}, {"key_content"}),
        ({"auth_type": "instance_principal", "profile": "DEFAULT"}, {"profile"}),
        ({"endpoint": "localhost:8080"}, {"endpoint"}),
        ({"endpoints": {"datascience": "http://127.0.0.1:1"}}, {"endpoints"}),
        ({"key_content": 12345}, {"key_content"}),
    ],
    ids=lambda v: ",".join(sorted(v)) if isinstance(v, set) else None,
)
def test_bad_credentials_name_the_field_and_never_the_secret(settings, fields):
    with pytest.raises(ValidationError) as caught:
        OCICredentials(**settings)
    assert {error["loc"][0] for error in caught.value.errors()} == fields
    assert all(field in str(caught.value) for field in fields)
    _assert_hidden(str(caught.value) + repr(caught.value), [SECRET, PHRASE])


def test_credentials_the_core_cannot_load_are_its_typed_error(local_oci, tmp_path):
    missing = OCICredentials(config_file=str(tmp_path / "no-config"))
    with pytest.raises(OCIAuthError, match="no-config"):
        missing.get_client()
    broken = OCICredentials(
        key_content=SECRET, pass_phrase=PHRASE, fingerprint="aa:" * 15 + "aa", **KEY
    )
    with pytest.raises(OCIAuthError, match="key_content") as caught:
        broken.get_auth()
    _assert_hidden(str(caught.value), [SECRET, PHRASE])


def test_bad_deployment_settings_name_the_field():
    for settings, field in (
        ({"deployment_instance_count": "many"}, "deployment_instance_count"),
        ({"deployment_instance_count": 0}, "deployment_instance_count"),
        ({"deployment_ocpus": float("nan")}, "deployment_ocpus"),
        ({"compartment_id": 42}, "compartment_id"),
        ({"credentials": {"key_content": SECRET}}, "credentials"),
    ):
        with pytest.raises(ValidationError) as caught:
            ModelDeploymentSettings(**settings)
        assert {error["loc"][0] for error in caught.value.errors()} == {field}
        _assert_hidden(str(caught.value), [SECRET])


# --- in step with the core --------------------------------------------------------------------


def test_auth_types_are_the_cores():
    assert set(typing.get_args(AuthType)) == set(AUTH_TYPES)


def test_deployment_settings_defaults_are_the_model_properties_defaults():
    core = {f.name: f.default for f in dataclasses.fields(ModelProperties)}
    block = {
        name: field.default
        for name, field in ModelDeploymentSettings.model_fields.items()
        if name != "credentials"
    }
    assert block == core
    assert ModelDeploymentSettings().to_properties() == ModelProperties()


def test_deployment_settings_round_trip_model_properties(local_oci):
    properties = ModelProperties(**DEPLOYMENT)
    credentials = OCICredentials(endpoint=local_oci.endpoint)
    settings = ModelDeploymentSettings.from_properties(properties, credentials=credentials)
    assert settings.credentials is credentials
    assert settings.to_properties() == properties
    assert (
        ModelDeploymentSettings(**settings.to_properties().to_dict()).to_properties() == properties
    )
