"""Credentials: reading OCI config files and profiles, loading the SDK's own signers (API key,
key content, session token, resource or instance principal), their typed error, and the
mappings that keep secrets out of every repr, str and message."""

from __future__ import annotations

import configparser
import datetime
import os
import time
from collections.abc import Iterator, Mapping
from typing import Any, Literal

import jwt
import oci

from ocimodel.errors import OcimodelError
from ocimodel.oci.caches import _freeze

DEFAULT_CONFIG_LOCATION = os.path.join("~", ".oci", "config")
DEFAULT_PROFILE = "DEFAULT"
ENV_CONFIG_FILE = "OCI_CONFIG_FILE"
ENV_CONFIG_PROFILE = "OCI_CONFIG_PROFILE"

AUTH_TYPES = ("api_key", "resource_principal", "instance_principal", "security_token")
AuthKind = Literal[
    "api_key", "security_token", "resource_principal", "instance_principal", "signer"
]
"""How requests are signed; ``signer`` is a signer object of another type, given as is."""
_KINDS = (*AUTH_TYPES, "signer")
_FILE_KINDS = ("api_key", "security_token")

_SECRET_KEYS = frozenset({"key_content", "pass_phrase", "security_token", "private_key"})


class OCIAuthError(ValueError, OcimodelError):
    """Credentials could not be loaded from the given config file, profile or auth type."""


class RedactedDict(dict):
    """A dict whose repr/str never shows secret values (key content, pass phrases, signers)."""

    def __repr__(self) -> str:
        shown = {k: ("<redacted>" if k in _SECRET_KEYS else _short(v)) for k, v in self.items()}
        return repr(shown)

    __str__ = __repr__


def _short(value: Any) -> Any:
    """Shows nested dicts redacted and signers by their type only."""
    if isinstance(value, Mapping):
        return RedactedDict(value)
    if isinstance(value, oci.signer.AbstractBaseSigner):
        return f"<{type(value).__name__}>"
    return value


class FrozenMap(Mapping):
    """A read-only, hashable mapping whose repr redacts secrets like :class:`RedactedDict`."""

    __slots__ = ("_data",)

    def __init__(self, data: Mapping[str, Any] | None = None) -> None:
        self._data = dict(data or {})

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __hash__(self) -> int:
        return hash(_freeze(self._data))

    def __repr__(self) -> str:
        return repr(RedactedDict(self._data))

    __str__ = __repr__

    def __reduce__(self) -> tuple:
        return (FrozenMap, (self._data,))


def _reveal(secret: Any) -> Any:
    """The value of a secret given as a str/bytes or a ``SecretStr``-like object."""
    getter = getattr(secret, "get_secret_value", None)
    return getter() if callable(getter) else secret


# --- reading config files ---------------------------------------------------------------------


def _config_location(oci_config_location: str | None) -> str:
    """The config file: the argument, else $OCI_CONFIG_FILE, else ~/.oci/config.

    The default location itself defers to $OCI_CONFIG_FILE, as ADS does.
    """
    if oci_config_location == DEFAULT_CONFIG_LOCATION:
        oci_config_location = None
    return os.path.expanduser(
        oci_config_location or os.environ.get(ENV_CONFIG_FILE) or DEFAULT_CONFIG_LOCATION
    )


def _profile(profile: str | None) -> str:
    """The profile: the argument, else $OCI_CONFIG_PROFILE, else DEFAULT."""
    return profile or os.environ.get(ENV_CONFIG_PROFILE) or DEFAULT_PROFILE


def _read_config(location: str, profile: str, validate: bool = True) -> dict[str, Any]:
    """Reads (and for API keys validates) one profile of an OCI config file."""
    if not os.path.isfile(location):
        raise OCIAuthError(
            f"OCI config file {location!r} does not exist. Create it (see the OCI SDK "
            f"configuration docs), pass oci_config_location=..., or set ${ENV_CONFIG_FILE}."
        )
    try:
        config = oci.config.from_file(file_location=location, profile_name=profile)
        if validate:
            oci.config.validate_config(config)
    except oci.exceptions.ProfileNotFound:
        raise OCIAuthError(
            f"Profile {profile!r} is not in OCI config file {location!r}. Pass an existing "
            f"profile=... or set ${ENV_CONFIG_PROFILE}."
        ) from None
    except (oci.exceptions.InvalidConfig, ValueError) as exc:
        raise OCIAuthError(
            f"Profile {profile!r} of OCI config file {location!r} is invalid ({exc}). "
            "Fix the listed keys in the file."
        ) from None
    except configparser.Error as exc:
        raise OCIAuthError(
            f"OCI config file {location!r} (profile {profile!r}) cannot be parsed: "
            f"{type(exc).__name__}{_at_lines(exc)}. Fix that line so it reads 'key = value' "
            "under a '[PROFILE]' header."
        ) from None
    except oci.exceptions.InvalidKeyFilePath:
        raise OCIAuthError(
            f"Profile {profile!r} of OCI config file {location!r} names key_file "
            f"{_key_file_of(location, profile)!r}, which is not a file. Point key_file at "
            "the API signing key (.pem), or create the key there."
        ) from None
    except (oci.exceptions.ClientError, OSError) as exc:
        raise OCIAuthError(
            f"Profile {profile!r} of OCI config file {location!r} could not be read "
            f"({type(exc).__name__}). Check the file's permissions and its key_file entry."
        ) from None
    return config


def _at_lines(exc: configparser.Error) -> str:
    """`` at line(s) N`` for a parse error, from its line numbers only (lines may hold secrets)."""
    numbers = [n for n, _line in getattr(exc, "errors", None) or []]
    lineno = getattr(exc, "lineno", None)
    if not numbers and isinstance(lineno, int):
        numbers = [lineno]
    if not numbers:
        return ""
    label = "line" if len(numbers) == 1 else "lines"
    return f" at {label} {', '.join(str(n) for n in numbers)}"


def _key_file_of(location: str, profile: str) -> str:
    """The expanded key_file value of a profile (a path, never key material)."""
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(location, encoding="utf-8")
    section = parser[profile] if profile in parser else parser.defaults()
    return os.path.expanduser(section.get("key_file", ""))


# --- signers (the SDK's own) ------------------------------------------------------------------


def _api_key_signer(config: Mapping[str, Any], where: str, fix: str) -> oci.signer.Signer:
    try:
        return oci.signer.Signer(
            tenancy=config["tenancy"],
            user=config["user"],
            fingerprint=config["fingerprint"],
            private_key_file_location=config.get("key_file"),
            pass_phrase=config.get("pass_phrase"),
            private_key_content=config.get("key_content"),
        )
    except Exception as exc:
        raise OCIAuthError(
            f"The API key of {where} could not be loaded ({type(exc).__name__}): "
            f"{_key_problem(config)}. {fix}"
        ) from None


def _key_problem(config: Mapping[str, Any]) -> str:
    """What is wrong with the private key of ``config`` (``key_content`` or ``key_file``), in
    words naming the file or setting only: never the key material or the pass phrase."""
    phrase = config.get("pass_phrase")
    content = config.get("key_content")
    if content:
        what, data = "key_content", content
    else:
        path = config.get("key_file")
        if not path:
            return "the profile has neither key_file nor key_content; add key_file=<path to .pem>"
        path = os.path.expanduser(str(path))
        what = f"key_file {path!r}"
        if not os.path.isfile(path):
            return f"{what} is not a file; point key_file at the private key (.pem)"
        try:
            with open(path, "rb") as fh:
                data = fh.read()
        except OSError as exc:
            return f"{what} cannot be read ({type(exc).__name__}); check its permissions"
    return f"{what} {_pem_problem(data, phrase)}"


def _pem_problem(data: str | bytes, pass_phrase: Any) -> str:
    """Why PEM text does not load as a private key (looked at by its markers only)."""
    text = data.decode("ascii", errors="replace") if isinstance(data, bytes) else str(data)
    text = text.strip()
    if not text:
        return "is empty; it must hold the PEM private key"
    if "PUBLIC KEY-----" in text or text.startswith(("ssh-", "ecdsa-")):
        return "holds a public key; it must be the private key that key belongs to"
    if "-----BEGIN" not in text or "PRIVATE KEY-----" not in text:
        return (
            "is not a PEM private key (it must start with '-----BEGIN PRIVATE KEY-----' or "
            "'-----BEGIN RSA PRIVATE KEY-----')"
        )
    if "ENCRYPTED" in text:
        if not pass_phrase:
            return "is encrypted, but no pass_phrase is set; add the key's pass_phrase"
        return "is encrypted, and the pass_phrase does not decrypt it; set the right pass_phrase"
    return "is damaged or truncated (a PEM private key that does not parse); export the key again"


def _security_token_signer(
    config: Mapping[str, Any], location: str, profile: str
) -> oci.auth.signers.SecurityTokenSigner:
    token_file = config.get("security_token_file")
    if not token_file or not os.path.isfile(os.path.expanduser(token_file)):
        raise OCIAuthError(
            f"Profile {profile!r} in {location!r} has no readable security_token_file. Run "
            "`oci session authenticate` or use auth='api_key'."
        )
    token_file = os.path.expanduser(token_file)
    with open(token_file, encoding="utf-8") as fh:
        token = fh.read().strip()
    _check_session_token(token, token_file, location, profile)
    if not config.get("key_file"):
        raise OCIAuthError(
            f"Profile {profile!r} in {location!r} has no key_file, the session key that "
            "`oci session authenticate` writes. Add key_file=<path to the session .pem>, or run "
            "`oci session authenticate` again."
        )
    try:
        key = oci.signer.load_private_key_from_file(config["key_file"], config.get("pass_phrase"))
    except Exception as exc:
        raise OCIAuthError(
            f"The session key of profile {profile!r} in {location!r} could not be loaded "
            f"({type(exc).__name__}): {_key_problem({**config, 'key_content': None})}. "
            "Check key_file and pass_phrase in that profile."
        ) from None
    return oci.auth.signers.SecurityTokenSigner(token, key)


def _check_session_token(token: str, token_file: str, location: str, profile: str) -> None:
    """Refuses a session token that is not a JWT or whose ``exp`` has passed. The signature is
    not verified here (the service does that); only the expiry claim is read."""
    where = f"security_token_file {token_file!r} of profile {profile!r} in {location!r}"
    renew = (
        f"Run `oci session refresh --profile {profile}` to renew it, or `oci session "
        f"authenticate --profile-name {profile}` if the session can no longer be refreshed."
    )
    try:
        claims = jwt.decode(
            token,
            options={
                "verify_signature": False,
                "verify_exp": False,
                "verify_nbf": False,
                "verify_iat": False,
                "verify_aud": False,
                "verify_iss": False,
            },
        )
    except jwt.PyJWTError:
        raise OCIAuthError(
            f"The {where} does not hold a session token (a JWT). Run `oci session "
            f"authenticate --profile-name {profile}` to create one."
        ) from None
    exp = claims.get("exp")
    if isinstance(exp, (int, float)) and exp <= time.time():
        when = datetime.datetime.fromtimestamp(exp, tz=datetime.timezone.utc)
        raise OCIAuthError(
            f"The session token in {where} expired at {when:%Y-%m-%d %H:%M:%S} UTC. {renew}"
        )


_RP_PREFIX = "OCI_RESOURCE_PRINCIPAL_"
_RP_REQUIRED = {
    "1.1": ("RPT_ENDPOINT", "RPST_ENDPOINT"),
    "2.1": ("RPT_ENDPOINT", "RPST_ENDPOINT", "RESOURCE_ID", "PRIVATE_PEM"),
    "2.1.1": ("RPT_ENDPOINT", "RPST_ENDPOINT", "RESOURCE_ID", "TENANCY_ID", "PRIVATE_PEM"),
    "2.1.2": ("RPT_ENDPOINT", "RPST_ENDPOINT", "RESOURCE_ID", "TENANCY_ID", "PRIVATE_PEM"),
    "2.2": ("RPST", "PRIVATE_PEM", "REGION"),
    "3.0": ("VERSION_FOR_LEAF_RESOURCE", "RPST_ENDPOINT_FOR_PARENT_RESOURCE"),
}
"""Variables the SDK needs for each resource principal version (after the prefix)."""


def _resource_principal_env_problem() -> str | None:
    """What the OCI_RESOURCE_PRINCIPAL_* environment lacks (variable names only, never values)."""
    version = os.environ.get(f"{_RP_PREFIX}VERSION")
    if not version:
        return f"{_RP_PREFIX}VERSION is not set"
    required = _RP_REQUIRED.get(version.strip())
    if required is None:
        return (
            f"{_RP_PREFIX}VERSION is {version.strip()!r}, which the OCI SDK does not support "
            f"(supported: {', '.join(_RP_REQUIRED)})"
        )
    missing = [f"{_RP_PREFIX}{n}" for n in required if not os.environ.get(f"{_RP_PREFIX}{n}")]
    if missing:
        return (
            f"{_RP_PREFIX}VERSION is {version.strip()!r} but {', '.join(missing)} "
            f"{'is' if len(missing) == 1 else 'are'} not set"
        )
    return None


def _resource_principal_signer() -> Any:
    problem = _resource_principal_env_problem()
    if problem:
        raise OCIAuthError(
            f"No resource principal is available here: {problem}. Run inside an OCI resource "
            f"(notebook session, job run, pipeline run) where the service sets {_RP_PREFIX}*, "
            "set the missing variables, or use auth='api_key'."
        )
    try:
        return oci.auth.signers.get_resource_principals_signer()
    except Exception as exc:
        version = os.environ.get(f"{_RP_PREFIX}VERSION", "").strip()
        used = ", ".join(f"{_RP_PREFIX}{n}" for n in _RP_REQUIRED.get(version, ()))
        raise OCIAuthError(
            f"No resource principal is available here ({type(exc).__name__}): the resource "
            f"principal v{version} settings could not be used. Check {used} (and "
            f"{_RP_PREFIX}PRIVATE_PEM_PASSPHRASE if the key is encrypted), or use "
            "auth='api_key'."
        ) from None


def _instance_principal_signer() -> Any:
    try:
        return oci.auth.signers.InstancePrincipalsSecurityTokenSigner()
    except Exception as exc:
        raise OCIAuthError(
            f"No instance principal is available here ({type(exc).__name__}). Run on an OCI "
            "instance in a dynamic group, or use auth='api_key'."
        ) from None


def _kind_of_signer(signer: Any) -> AuthKind:
    """The auth kind a given signer object stands for."""
    signers = oci.auth.signers
    if signer is None or isinstance(signer, oci.signer.Signer):
        return "api_key"
    if isinstance(signer, signers.InstancePrincipalsSecurityTokenSigner):
        return "instance_principal"
    if type(signer) is signers.SecurityTokenSigner:
        return "security_token"
    if isinstance(signer, signers.SecurityTokenSigner):
        return "resource_principal"  # every resource-principal signer is a token signer
    return "signer"
