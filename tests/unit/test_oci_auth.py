"""OCIAuth: one immutable value for "how to reach OCI" that builds and caches its signer, SDK
clients and ocifs options; resolve_auth converting ADS dicts and the process default once.

No request leaves the process here (building an SDK client sends nothing); the tests that
talk to the local service are in tests/integration/test_oci_clients.py.
"""

from __future__ import annotations

import copy
import dataclasses
import os
import pickle
import threading
import warnings

import oci
import pytest
from cryptography.hazmat.primitives import serialization
from oci.data_science import DataScienceClient
from oci.object_storage import ObjectStorageClient

from ocimodel.local.keys import fingerprint_of, generate_private_key, private_pem
from ocimodel.oci import auth as oci_auth
from ocimodel.oci.auth import OCIAuth, OCIAuthError, resolve_auth

TENANCY = "ocid1.tenancy.oc1..aaaatenancy"
USER = "ocid1.user.oc1..aaaauser"
REGION = "us-ashburn-1"
PASS_PHRASE = "correct-horse-battery-staple"
ENDPOINT = "http://127.0.0.1:9"


@pytest.fixture(scope="module")
def key():
    return generate_private_key()


@pytest.fixture(scope="module")
def encrypted_pem(key) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(PASS_PHRASE.encode()),
    ).decode()


@pytest.fixture
def config_file(tmp_path, key):
    """An OCI config file with profiles DEFAULT and OTHER, both signing with ``key``."""
    pem = tmp_path / "key.pem"
    pem.write_bytes(private_pem(key))
    pem.chmod(0o600)
    body = (
        f"tenancy={TENANCY}\nuser={USER}\nfingerprint={fingerprint_of(key)}\n"
        f"region={REGION}\nkey_file={pem}\n"
    )
    path = tmp_path / "config"
    path.write_text(f"[DEFAULT]\n{body}[OTHER]\n{body.replace(REGION, 'eu-frankfurt-1')}")
    return path


@pytest.fixture
def clean_env(monkeypatch, config_file):
    """The process default points at ``config_file`` through the environment only."""
    monkeypatch.setenv(oci_auth.ENV_CONFIG_FILE, str(config_file))
    monkeypatch.setenv(oci_auth.ENV_CONFIG_PROFILE, "DEFAULT")
    for name in (oci_auth.ENV_IAM_TYPE, oci_auth.ENV_SERVICE_ENDPOINT, oci_auth.ENV_REGION):
        monkeypatch.delenv(name, raising=False)
    oci_auth.reset_auth()
    yield config_file
    oci_auth.reset_auth()


def _secret_free(text: str, pem: str) -> None:
    body = [line for line in pem.splitlines() if line and "-----" not in line]
    assert PASS_PHRASE not in text
    assert "PRIVATE KEY" not in text
    for line in body:
        assert line not in text


# --- value semantics and caches ---------------------------------------------------------------


def test_same_auth_gives_the_same_client_and_signer(config_file):
    auth = OCIAuth.from_config_file(str(config_file), "DEFAULT", endpoint=ENDPOINT)
    first = auth.client(ObjectStorageClient)
    assert auth.client(ObjectStorageClient) is first
    assert auth.client("object_storage") is first  # a short name is the same class
    assert first.base_client.signer is auth.signer
    assert isinstance(auth.signer, oci.signer.Signer)
    assert auth.client(DataScienceClient) is auth.client("data_science")
    assert auth.client(DataScienceClient) is not first
    # extra kwargs make their own client, cached under them
    timed = auth.client(ObjectStorageClient, timeout=(1, 2))
    assert timed is not first and auth.client(ObjectStorageClient, timeout=(1, 2)) is timed
    assert timed.base_client.timeout == (1, 2)


def test_equal_descriptions_are_equal_and_hashable_but_keep_their_own_caches(config_file):
    a = OCIAuth.from_config_file(str(config_file), "DEFAULT", endpoint=ENDPOINT)
    b = OCIAuth.from_config_file(str(config_file), "DEFAULT", endpoint=ENDPOINT)
    other_profile = OCIAuth.from_config_file(str(config_file), "OTHER", endpoint=ENDPOINT)
    assert a == b and hash(a) == hash(b) and len({a, b}) == 1
    assert a != other_profile and a != a.with_endpoint("http://127.0.0.1:10")
    assert other_profile.region == "eu-frankfurt-1"
    with pytest.raises(dataclasses.FrozenInstanceError):
        a.endpoint = "http://elsewhere"  # type: ignore[misc]


def test_endpoints_are_translated_once_for_the_sdk_and_for_ocifs(config_file):
    auth = OCIAuth.from_config_file(
        str(config_file),
        endpoint="http://127.0.0.1:9001",
        endpoints={
            "object_storage": "http://127.0.0.1:9002",
            "model-deployment": "http://127.0.0.1:9006",
        },
    )
    md = auth.client("model_deployment")
    assert isinstance(md, oci.model_deployment.ModelDeploymentClient)
    assert md.base_client.endpoint.startswith("http://127.0.0.1:9006")
    ds = auth.client("data_science")
    assert ds.base_client.endpoint == "http://127.0.0.1:9001/20190101"
    assert auth.client(ObjectStorageClient).base_client.endpoint == "http://127.0.0.1:9002"
    opts = auth.storage_options()
    assert opts["config_kwargs"] == {"service_endpoint": "http://127.0.0.1:9002"}
    assert "service_endpoint" not in opts  # a bare kwarg would be ignored by ocifs
    assert opts["use_listings_cache"] is False
    assert opts["signer"] is auth.signer
    # a fresh dict each time: ocifs writes into what it is given
    opts["config"]["additional_user_agent"] = "x"
    opts["config_kwargs"]["retry_strategy"] = object()
    again = auth.storage_options()
    assert again["config"].get("additional_user_agent") != "x"
    assert again["config_kwargs"] == {"service_endpoint": "http://127.0.0.1:9002"}
    # without any endpoint the SDK derives the regional one
    regional = OCIAuth.from_config_file(str(config_file), endpoint=None)
    if not os.environ.get(oci_auth.ENV_SERVICE_ENDPOINT):
        assert (
            "objectstorage.us-ashburn-1"
            in regional.client(ObjectStorageClient).base_client.endpoint
        )


def test_other_endpoints_give_other_clients(config_file):
    auth = OCIAuth.from_config_file(str(config_file), endpoint="http://127.0.0.1:9001")
    moved = auth.with_endpoint("http://127.0.0.1:9003")
    only_ds = auth.with_endpoint("http://127.0.0.1:9004", service="data_science")
    clients = [a.client(DataScienceClient) for a in (auth, moved, only_ds)]
    assert len({id(c) for c in clients}) == 3
    assert [c.base_client.endpoint for c in clients] == [
        "http://127.0.0.1:9001/20190101",
        "http://127.0.0.1:9003/20190101",
        "http://127.0.0.1:9004/20190101",
    ]
    assert only_ds.client(ObjectStorageClient).base_client.endpoint == "http://127.0.0.1:9001"
    assert moved.signer is auth.signer  # same credentials: the loaded key is reused
    # an explicit service_endpoint kwarg wins, and is its own cache entry
    explicit = auth.client(ObjectStorageClient, service_endpoint="http://127.0.0.1:9005")
    assert explicit.base_client.endpoint == "http://127.0.0.1:9005"
    assert explicit is not auth.client(ObjectStorageClient)


def test_concurrent_first_use_builds_one_client(config_file):
    auth = OCIAuth.from_config_file(str(config_file), endpoint=ENDPOINT)
    barrier = threading.Barrier(8)
    got = []

    def grab():
        barrier.wait()
        got.append(auth.client(ObjectStorageClient))

    threads = [threading.Thread(target=grab) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(got) == 8 and len({id(c) for c in got}) == 1


def test_a_copy_or_pickle_rebuilds_its_own_caches(config_file):
    auth = OCIAuth.from_config_file(str(config_file), endpoint=ENDPOINT)
    client = auth.client(ObjectStorageClient)
    for twin in (pickle.loads(pickle.dumps(auth)), copy.deepcopy(auth), copy.copy(auth)):
        assert twin == auth
        assert twin.client(ObjectStorageClient) is not client
        assert twin.client(ObjectStorageClient).base_client.endpoint == ENDPOINT


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_does_not_reuse_the_parents_clients(config_file):
    auth = OCIAuth.from_config_file(str(config_file), endpoint=ENDPOINT)
    parent_client = auth.client(ObjectStorageClient)  # held: its id is not reused
    read, write = os.pipe()
    with warnings.catch_warnings():  # 3.12+ warns about forking a threaded process
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        try:
            os.close(read)
            fresh = auth.client(ObjectStorageClient) is not parent_client
            same_after = auth.client(ObjectStorageClient) is auth.client(ObjectStorageClient)
            os.write(write, b"ok" if fresh and same_after else b"stale")
        finally:
            os._exit(0)
    os.close(write)
    answer = os.read(read, 16)
    os.close(read)
    os.waitpid(pid, 0)
    assert answer == b"ok"
    assert auth.client(ObjectStorageClient) is parent_client


# --- secrets ----------------------------------------------------------------------------------


def test_key_content_and_pass_phrase_never_show(key, encrypted_pem):
    auth = OCIAuth.from_key(
        tenancy=TENANCY,
        user=USER,
        fingerprint=fingerprint_of(key),
        key_content=encrypted_pem,
        pass_phrase=PASS_PHRASE,
        region=REGION,
        endpoint=ENDPOINT,
    )
    assert isinstance(auth.signer, oci.signer.Signer)  # the SDK loaded the encrypted key
    texts = [
        repr(auth),
        str(auth),
        f"{auth}",
        repr(auth.config),
        str(auth.config),
        repr(auth.to_dict()),
        repr(auth.storage_options()),
        repr(auth.sdk_config()),
        repr(resolve_auth(auth.to_dict())),
    ]
    for text in texts:
        _secret_free(text, encrypted_pem)
    assert "key_content=<redacted>" in repr(auth) and "pass_phrase=<redacted>" in repr(auth)
    assert TENANCY in repr(auth) and ENDPOINT in repr(auth)
    # the secret is still what the SDK gets
    assert auth.sdk_config()["key_content"] == encrypted_pem
    client = auth.client(ObjectStorageClient)
    assert client.base_client.signer is auth.signer


def test_secretstr_like_key_content_is_accepted(key):
    class Secret:
        def __init__(self, value):
            self._value = value

        def get_secret_value(self):
            return self._value

        def __repr__(self):
            return "Secret('**********')"

    pem = private_pem(key).decode()
    auth = OCIAuth.from_key(
        tenancy=TENANCY,
        user=USER,
        fingerprint=fingerprint_of(key),
        key_content=Secret(pem),
        region=REGION,
    )
    assert isinstance(auth.signer, oci.signer.Signer)
    _secret_free(repr(auth), pem)


def test_bad_key_content_fails_early_without_quoting_it(key, encrypted_pem):
    lines = encrypted_pem.splitlines()
    broken = "\n".join(lines[:3] + lines[-3:])  # a truncated key
    with pytest.raises(OCIAuthError, match="key_content") as info:
        OCIAuth.from_key(
            tenancy=TENANCY,
            user=USER,
            fingerprint=fingerprint_of(key),
            key_content=broken,
            pass_phrase=PASS_PHRASE,
            region=REGION,
        )
    _secret_free(str(info.value), encrypted_pem)
    assert info.value.__suppress_context__
    with pytest.raises(OCIAuthError, match="Check key_content and pass_phrase") as info:
        OCIAuth.from_key(
            tenancy=TENANCY,
            user=USER,
            fingerprint=fingerprint_of(key),
            key_content=encrypted_pem,
            pass_phrase="wrong-pass",
            region=REGION,
        )
    assert "wrong-pass" not in str(info.value)
    _secret_free(str(info.value), encrypted_pem)


def test_invalid_key_settings_name_the_arguments(key):
    with pytest.raises(OCIAuthError, match="tenancy") as info:
        OCIAuth.from_key(
            tenancy="not-an-ocid",
            user=USER,
            fingerprint=fingerprint_of(key),
            key_content=private_pem(key).decode(),
            region=REGION,
        )
    assert "PRIVATE KEY" not in str(info.value)


# --- resolve_auth -----------------------------------------------------------------------------


def test_resolve_auth_converts_ads_dicts_once(config_file):
    config = oci.config.from_file(str(config_file), "DEFAULT")
    ads = {
        "config": config,
        "signer": oci.signer.Signer.from_config(config),
        "client_kwargs": {"service_endpoint": ENDPOINT, "timeout": (5, 6)},
    }
    auth = resolve_auth(ads)
    assert isinstance(auth, OCIAuth) and auth.kind == "api_key"
    assert auth.endpoint == ENDPOINT and dict(auth.client_kwargs) == {"timeout": (5, 6)}
    assert auth.signer is ads["signer"]
    assert resolve_auth(ads) is auth  # the same dict converts to the same OCIAuth
    assert resolve_auth(dict(ads)) is auth  # so does an equal one with the same signer
    client = oci_auth.make_client(ObjectStorageClient, ads)
    assert client is auth.client(ObjectStorageClient) is oci_auth.make_client("object_storage", ads)
    assert client.base_client.endpoint == ENDPOINT and client.base_client.timeout == (5, 6)
    assert oci_auth.storage_options(ads)["config_kwargs"] == {
        "service_endpoint": ENDPOINT,
        "timeout": (5, 6),
    }
    assert resolve_auth(auth) is auth
    # another signer object is another auth (even for the same key)
    other = dict(ads, signer=oci.signer.Signer.from_config(config))
    assert resolve_auth(other) is not auth
    # the ADS functions' dicts, and an OCIAuth's own, map back to the OCIAuth behind them
    typed = OCIAuth.from_config_file(str(config_file), endpoint=ENDPOINT)
    assert resolve_auth(typed.to_dict()) is typed
    from_api_keys = oci_auth.api_keys(
        str(config_file), client_kwargs={"service_endpoint": ENDPOINT}
    )
    assert set(from_api_keys) == {"config", "signer", "client_kwargs"}
    assert resolve_auth(from_api_keys).signer is from_api_keys["signer"]
    assert resolve_auth(from_api_keys) == typed
    # a dict with a config only: the API key of that config signs
    config_only = resolve_auth({"config": dict(config)})
    assert config_only.kind == "api_key" and isinstance(config_only.signer, oci.signer.Signer)


def test_resolve_auth_infers_the_kind_of_a_given_signer(config_file, key):
    token_signer = oci.auth.signers.SecurityTokenSigner("a.b.c", key)
    auth = resolve_auth({"config": {"region": REGION}, "signer": token_signer})
    assert auth.kind == "security_token" and auth.signer is token_signer
    assert auth.client(ObjectStorageClient).base_client.signer is token_signer
    assert "a.b.c" not in repr(auth) and "signer=<SecurityTokenSigner>" in repr(auth)


@pytest.mark.parametrize(
    "bad, message",
    [
        ("api_key", "not str"),
        ({"config": {}, "signer": None}, "neither a config nor a signer"),
        ({"config": {"region": REGION}, "singer": object()}, "singer is not one"),
        ({"config": "~/.oci/config"}, "not str"),
        ({"config": {"region": REGION}, "client_kwargs": {"signer": object()}}, "signer"),
    ],
)
def test_resolve_auth_rejects_what_it_cannot_use(bad, message):
    with pytest.raises(OCIAuthError, match=message):
        resolve_auth(bad)


def test_unknown_service_names_and_kinds_are_typed(config_file):
    auth = OCIAuth.from_config_file(str(config_file), endpoint=ENDPOINT)
    with pytest.raises(OCIAuthError, match="no oci.no_such_service.NoSuchServiceClient"):
        auth.client("no_such_service")
    with pytest.raises(OCIAuthError, match="Unknown auth type 'magic'"):
        OCIAuth(kind="magic")  # type: ignore[arg-type]
    with pytest.raises(OCIAuthError, match="Two endpoints"):
        OCIAuth(endpoint="http://a", client_kwargs={"service_endpoint": "http://b"})


# --- the process default ----------------------------------------------------------------------


def test_default_is_cached_until_its_settings_change(clean_env, monkeypatch, tmp_path):
    first = resolve_auth(None)
    assert resolve_auth(None) is first  # no re-reading of the config file
    assert oci_auth.default_signer()["signer"] is first.signer
    assert oci_auth.make_client(ObjectStorageClient) is first.client(ObjectStorageClient)
    assert resolve_auth({}) is first  # an empty dict meant the default before, too
    assert oci_auth.storage_options()["signer"] is first.signer
    assert first.endpoint is None

    monkeypatch.setenv(oci_auth.ENV_SERVICE_ENDPOINT, ENDPOINT)
    local = resolve_auth(None)
    assert local is not first and local.endpoint == ENDPOINT
    assert oci_auth.make_client(ObjectStorageClient).base_client.endpoint == ENDPOINT
    assert oci_auth.default_signer()["client_kwargs"] == {"service_endpoint": ENDPOINT}
    assert resolve_auth(None) is local

    monkeypatch.setenv(oci_auth.ENV_CONFIG_PROFILE, "OTHER")
    assert resolve_auth(None).region == "eu-frankfurt-1"
    monkeypatch.setenv(oci_auth.ENV_CONFIG_PROFILE, "DEFAULT")
    assert resolve_auth(None) is local  # back to the same settings: the cached one

    oci_auth.set_auth("api_key", str(clean_env), "OTHER", client_kwargs={"timeout": (3, 4)})
    chosen = resolve_auth(None)
    assert chosen.region == "eu-frankfurt-1" and chosen.endpoint == ENDPOINT
    assert chosen.client(ObjectStorageClient).base_client.timeout == (3, 4)
    assert resolve_auth(None) is chosen
    oci_auth.set_auth("api_key", str(clean_env), "OTHER", client_kwargs={"timeout": (3, 4)})
    assert resolve_auth(None) is not chosen  # set_auth always gives a fresh one

    oci_auth.reset_auth()
    fresh = resolve_auth(None)
    assert fresh is not local and fresh == local and fresh.region == REGION


def test_an_edited_config_file_gives_a_fresh_default(clean_env):
    first = resolve_auth(None)
    text = clean_env.read_text().replace(REGION, "ap-tokyo-1", 1)
    clean_env.write_text(text + "\n")
    assert resolve_auth(None) is not first
    assert resolve_auth(None).region == "ap-tokyo-1"


def test_default_errors_are_typed_and_not_cached(clean_env, monkeypatch, tmp_path):
    monkeypatch.setenv(oci_auth.ENV_IAM_TYPE, "magic")
    with pytest.raises(OCIAuthError, match=r"Unknown auth type 'magic' \(from \$OCI_IAM_TYPE\)"):
        resolve_auth(None)
    monkeypatch.delenv(oci_auth.ENV_IAM_TYPE)
    missing = tmp_path / "nowhere" / "config"
    monkeypatch.setenv(oci_auth.ENV_CONFIG_FILE, str(missing))
    for _ in range(2):
        with pytest.raises(OCIAuthError, match="does not exist"):
            resolve_auth(None)
    missing.parent.mkdir()
    missing.write_text(clean_env.read_text())
    assert resolve_auth(None).config_file == str(missing)  # the failure was not remembered


def test_existing_typed_errors_keep_their_messages(tmp_path, config_file):
    with pytest.raises(OCIAuthError, match="Profile 'NOPE' is not in OCI config file"):
        OCIAuth.from_config_file(str(config_file), "NOPE")
    with pytest.raises(OCIAuthError, match="does not exist.*OCI_CONFIG_FILE"):
        oci_auth.api_keys(str(tmp_path / "absent"))
    broken = tmp_path / "broken"
    broken.write_text(config_file.read_text().replace("key.pem", "gone.pem"))
    with pytest.raises(OCIAuthError, match="names key_file .*gone.pem.*which is not a file"):
        oci_auth.api_keys(str(broken))
    with pytest.raises(OCIAuthError, match="'DEFAULT'.*security_token_file"):
        OCIAuth.from_config_file(str(config_file), kind="security_token")
    with pytest.raises(OCIAuthError, match="No resource principal is available here"):
        OCIAuth.resource_principal()
