"""Credentials that cannot be used are a typed OCIAuthError naming the config file and profile
(or the setting) at fault and the fix, raised when the auth is built, with no traceback from
inside the SDK, and never quoting a pass phrase, key material or a token."""

from __future__ import annotations

import time

import jwt
import pytest
from cryptography.hazmat.primitives import serialization

from ocimodel.errors import OcimodelError
from ocimodel.local.keys import fingerprint_of, generate_private_key, private_pem, public_pem
from ocimodel.oci.auth import OCIAuth, OCIAuthError, api_keys, security_token

TENANCY = "ocid1.tenancy.oc1..aaaatenancy"
USER = "ocid1.user.oc1..aaaauser"
REGION = "us-ashburn-1"
PASS_PHRASE = "tr0ub4dor-and-3"
RP_VARIABLES = (
    "OCI_RESOURCE_PRINCIPAL_VERSION",
    "OCI_RESOURCE_PRINCIPAL_RPST",
    "OCI_RESOURCE_PRINCIPAL_PRIVATE_PEM",
    "OCI_RESOURCE_PRINCIPAL_PRIVATE_PEM_PASSPHRASE",
    "OCI_RESOURCE_PRINCIPAL_REGION",
    "OCI_RESOURCE_PRINCIPAL_RPT_ENDPOINT",
    "OCI_RESOURCE_PRINCIPAL_RPST_ENDPOINT",
    "OCI_RESOURCE_PRINCIPAL_RESOURCE_ID",
    "OCI_RESOURCE_PRINCIPAL_TENANCY_ID",
)


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


def _body(pem: str | bytes) -> list[str]:
    text = pem.decode() if isinstance(pem, bytes) else pem
    return [line for line in text.splitlines() if line and "-----" not in line]


def _assert_secret_free(text: str, *pems: str | bytes, phrases: tuple[str, ...] = (PASS_PHRASE,)):
    for phrase in phrases:
        assert phrase not in text
    for pem in pems:
        for line in _body(pem):
            assert line not in text


def _assert_clean(error: BaseException) -> None:
    """Typed, and raised without chaining the SDK's exception (no deep traceback)."""
    assert isinstance(error, OCIAuthError) and isinstance(error, OcimodelError)
    assert error.__cause__ is None
    assert error.__context__ is None or error.__suppress_context__


def _config(tmp_path, profiles: dict[str, str]):
    path = tmp_path / "config"
    path.write_text("".join(f"[{name}]\n{body}" for name, body in profiles.items()))
    return path


def _api_key_body(key, key_file, pass_phrase: str | None = None) -> str:
    body = (
        f"tenancy={TENANCY}\nuser={USER}\nfingerprint={fingerprint_of(key)}\n"
        f"region={REGION}\nkey_file={key_file}\n"
    )
    return body + (f"pass_phrase={pass_phrase}\n" if pass_phrase else "")


def _token(key, exp: float) -> str:
    return jwt.encode({"sub": USER, "tenant": TENANCY, "exp": int(exp)}, key, algorithm="RS256")


# --- API keys from a config file --------------------------------------------------------------


def test_bad_key_file_path_names_profile_file_and_path(tmp_path, key):
    missing = tmp_path / "keys" / "gone.pem"
    config = _config(tmp_path, {"DEV": _api_key_body(key, missing, PASS_PHRASE)})
    with pytest.raises(OCIAuthError) as info:
        OCIAuth.from_config_file(str(config), "DEV")
    message = str(info.value)
    assert "'DEV'" in message and str(config) in message and str(missing) in message
    assert "Point key_file at" in message
    _assert_clean(info.value)
    _assert_secret_free(message)


def test_wrong_pass_phrase_of_an_encrypted_key(tmp_path, key, encrypted_pem):
    pem = tmp_path / "enc.pem"
    pem.write_text(encrypted_pem)
    config = _config(
        tmp_path,
        {
            "WRONG": _api_key_body(key, pem, "not-the-pass-phrase"),
            "NONE": _api_key_body(key, pem),
            "RIGHT": _api_key_body(key, pem, PASS_PHRASE),
        },
    )
    with pytest.raises(OCIAuthError) as info:
        OCIAuth.from_config_file(str(config), "WRONG")
    message = str(info.value)
    assert "'WRONG'" in message and str(config) in message and str(pem) in message
    assert "pass_phrase does not decrypt it" in message and "set the right pass_phrase" in message
    _assert_clean(info.value)
    _assert_secret_free(message, encrypted_pem, phrases=(PASS_PHRASE, "not-the-pass-phrase"))

    with pytest.raises(
        OCIAuthError, match="'NONE'.*is encrypted, but no pass_phrase is set"
    ) as info:
        api_keys(str(config), "NONE")
    _assert_clean(info.value)

    auth = OCIAuth.from_config_file(str(config), "RIGHT")  # the right one loads
    shown = " ".join(
        [
            repr(auth),
            str(auth),
            repr(auth.config),
            str(auth.to_dict()),
            repr(auth.storage_options()),
        ]
    )
    assert "pass_phrase=<redacted>" in repr(auth)
    _assert_secret_free(shown, encrypted_pem)


def test_missing_profile_names_profile_file_and_fix(tmp_path, key):
    pem = tmp_path / "key.pem"
    pem.write_bytes(private_pem(key))
    config = _config(tmp_path, {"DEFAULT": _api_key_body(key, pem)})
    for build in (
        lambda: OCIAuth.from_config_file(str(config), "PROD"),
        lambda: OCIAuth.from_config_file(str(config), "PROD", kind="security_token"),
        lambda: api_keys(str(config), "PROD"),
    ):
        with pytest.raises(OCIAuthError) as info:
            build()
        message = str(info.value)
        assert "'PROD'" in message and str(config) in message
        assert "Pass an existing profile=" in message and "OCI_CONFIG_PROFILE" in message
        _assert_clean(info.value)


def test_key_file_that_is_not_a_pem(tmp_path, key):
    public = tmp_path / "public.pem"
    public.write_text(public_pem(key))
    junk = tmp_path / "junk.pem"
    junk.write_text("just some text\n")
    config = _config(
        tmp_path, {"PUBLIC": _api_key_body(key, public), "JUNK": _api_key_body(key, junk)}
    )
    with pytest.raises(OCIAuthError, match=r"'PUBLIC'.*public\.pem.*holds a public key") as info:
        OCIAuth.from_config_file(str(config), "PUBLIC")
    _assert_clean(info.value)
    with pytest.raises(OCIAuthError, match=r"'JUNK'.*junk\.pem.*is not a PEM private key") as info:
        OCIAuth.from_config_file(str(config), "JUNK")
    assert "just some text" not in str(info.value)
    _assert_clean(info.value)


# --- key content given directly ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("MIIEvQIBADANBgkqhkiG9w0BAQEFAASC (base64 without the PEM lines)", "is not a PEM"),
        ("ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQC user@host", "holds a public key"),
        (b"\x00\x01binary-garbage", "is not a PEM private key"),
        ("", "key_content"),
        (
            "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC\n"
            "-----END PRIVATE KEY-----\n",
            "is damaged or truncated",
        ),
    ],
)
def test_key_content_that_is_not_a_pem(key, content, problem):
    with pytest.raises(OCIAuthError, match=problem) as info:
        OCIAuth.from_key(
            tenancy=TENANCY,
            user=USER,
            fingerprint=fingerprint_of(key),
            key_content=content,
            pass_phrase=PASS_PHRASE,
            region=REGION,
        )
    message = str(info.value)
    assert "key_content" in message
    _assert_clean(info.value)
    text = content.decode(errors="replace") if isinstance(content, bytes) else content
    _assert_secret_free(message, text)
    assert "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC" not in message


def test_encrypted_key_content_with_a_wrong_or_missing_pass_phrase(key, encrypted_pem):
    common = dict(tenancy=TENANCY, user=USER, fingerprint=fingerprint_of(key), region=REGION)
    with pytest.raises(OCIAuthError, match="key_content is encrypted, and the pass_phrase") as info:
        OCIAuth.from_key(key_content=encrypted_pem, pass_phrase="wrong-one", **common)
    _assert_secret_free(str(info.value), encrypted_pem, phrases=(PASS_PHRASE, "wrong-one"))
    _assert_clean(info.value)
    with pytest.raises(OCIAuthError, match="key_content is encrypted, but no pass_phrase"):
        OCIAuth.from_key(key_content=encrypted_pem, **common)
    auth = OCIAuth.from_key(key_content=encrypted_pem, pass_phrase=PASS_PHRASE, **common)
    _assert_secret_free(repr(auth) + str(auth.to_dict()) + repr(auth.config), encrypted_pem)


# --- session tokens ---------------------------------------------------------------------------


def _session_config(tmp_path, key, token: str, profile: str = "SESSION"):
    pem = tmp_path / "session.pem"
    pem.write_bytes(private_pem(key))
    token_file = tmp_path / "token"
    token_file.write_text(token + "\n")
    config = _config(
        tmp_path,
        {
            profile: f"tenancy={TENANCY}\nregion={REGION}\nkey_file={pem}\n"
            f"security_token_file={token_file}\n"
        },
    )
    return config, token_file


def test_expired_session_token_is_refused_at_load(tmp_path, key):
    token = _token(key, time.time() - 3600)
    config, token_file = _session_config(tmp_path, key, token)
    for build in (
        lambda: OCIAuth.from_config_file(str(config), "SESSION", kind="security_token"),
        lambda: security_token(str(config), "SESSION"),
    ):
        with pytest.raises(OCIAuthError) as info:
            build()
        message = str(info.value)
        assert "expired at" in message and str(token_file) in message
        assert "'SESSION'" in message and str(config) in message
        assert "oci session refresh --profile SESSION" in message
        assert "oci session authenticate" in message
        assert token not in message and token.split(".")[1] not in message
        _assert_clean(info.value)

    # after `oci session refresh` rewrote the file, the same profile loads
    token_file.write_text(_token(key, time.time() + 3600))
    auth = OCIAuth.from_config_file(str(config), "SESSION", kind="security_token")
    assert auth.kind == "security_token"
    assert token_file.read_text().split(".")[1] not in repr(auth) + str(auth.to_dict())


def test_session_token_file_that_is_not_a_jwt(tmp_path, key):
    config, token_file = _session_config(tmp_path, key, "not-a-token-secret-ish")
    with pytest.raises(OCIAuthError) as info:
        OCIAuth.from_config_file(str(config), "SESSION", kind="security_token")
    message = str(info.value)
    assert "does not hold a session token" in message and str(token_file) in message
    assert "oci session authenticate" in message and "not-a-token-secret-ish" not in message
    _assert_clean(info.value)


def test_session_key_problems_name_the_key_file(tmp_path, key, encrypted_pem):
    config, _token_file = _session_config(tmp_path, key, _token(key, time.time() + 3600))
    text = config.read_text()
    (tmp_path / "enc.pem").write_text(encrypted_pem)
    config.write_text(
        text.replace(str(tmp_path / "session.pem"), str(tmp_path / "enc.pem"))
        + "pass_phrase=wrong-session-phrase\n"
    )
    with pytest.raises(OCIAuthError) as info:
        OCIAuth.from_config_file(str(config), "SESSION", kind="security_token")
    message = str(info.value)
    assert "'SESSION'" in message and "enc.pem" in message and "does not decrypt" in message
    _assert_secret_free(message, encrypted_pem, phrases=(PASS_PHRASE, "wrong-session-phrase"))
    _assert_clean(info.value)

    lines = [line for line in text.splitlines() if not line.startswith("key_file")]
    config.write_text("\n".join(lines) + "\n")
    with pytest.raises(OCIAuthError, match="'SESSION'.*has no key_file") as info:
        OCIAuth.from_config_file(str(config), "SESSION", kind="security_token")
    _assert_clean(info.value)


# --- resource principals ----------------------------------------------------------------------


@pytest.fixture
def rp_env(monkeypatch):
    for name in RP_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_incomplete_resource_principal_env_names_the_missing_variables(rp_env, key):
    pem = private_pem(key).decode()
    with pytest.raises(OCIAuthError, match="OCI_RESOURCE_PRINCIPAL_VERSION is not set") as info:
        OCIAuth.resource_principal()
    assert "No resource principal is available here" in str(info.value)
    _assert_clean(info.value)

    rp_env.setenv("OCI_RESOURCE_PRINCIPAL_VERSION", "2.2")
    rp_env.setenv("OCI_RESOURCE_PRINCIPAL_PRIVATE_PEM", pem)
    rp_env.setenv("OCI_RESOURCE_PRINCIPAL_PRIVATE_PEM_PASSPHRASE", PASS_PHRASE)
    with pytest.raises(OCIAuthError) as info:
        OCIAuth.resource_principal()
    message = str(info.value)
    assert "OCI_RESOURCE_PRINCIPAL_RPST" in message and "OCI_RESOURCE_PRINCIPAL_REGION" in message
    assert "are not set" in message and "'2.2'" in message
    assert "OCI_RESOURCE_PRINCIPAL_PRIVATE_PEM," not in message  # it is set
    _assert_secret_free(message, pem)
    _assert_clean(info.value)

    rp_env.setenv("OCI_RESOURCE_PRINCIPAL_VERSION", "1.1")
    rp_env.setenv("OCI_RESOURCE_PRINCIPAL_RPT_ENDPOINT", "http://127.0.0.1:9")
    with pytest.raises(OCIAuthError, match="OCI_RESOURCE_PRINCIPAL_RPST_ENDPOINT is not set"):
        OCIAuth.resource_principal()

    rp_env.setenv("OCI_RESOURCE_PRINCIPAL_VERSION", "7.7")
    with pytest.raises(OCIAuthError, match="'7.7', which the OCI SDK does not support"):
        OCIAuth.resource_principal()


def test_unusable_resource_principal_values_are_typed_and_not_shown(rp_env):
    rp_env.setenv("OCI_RESOURCE_PRINCIPAL_VERSION", "2.2")
    rp_env.setenv("OCI_RESOURCE_PRINCIPAL_RPST", "rpst-secret-value")
    rp_env.setenv("OCI_RESOURCE_PRINCIPAL_PRIVATE_PEM", "pem-secret-value")
    rp_env.setenv("OCI_RESOURCE_PRINCIPAL_REGION", REGION)
    with pytest.raises(OCIAuthError) as info:
        OCIAuth.resource_principal()
    message = str(info.value)
    assert "No resource principal is available here" in message
    assert (
        "OCI_RESOURCE_PRINCIPAL_RPST" in message and "OCI_RESOURCE_PRINCIPAL_PRIVATE_PEM" in message
    )
    assert "rpst-secret-value" not in message and "pem-secret-value" not in message
    _assert_clean(info.value)
