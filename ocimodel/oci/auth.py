"""Authentication dicts for OCI clients and ocifs, in the shape ADS uses.

An auth dict is ``{"config": dict, "signer": signer, "client_kwargs": dict}``. Environment
defaults: ``OCI_CONFIG_FILE``, ``OCI_CONFIG_PROFILE``, ``OCI_IAM_TYPE`` and
``OCIMODEL_SERVICE_ENDPOINT`` (when set, every client and filesystem gets it as
``service_endpoint``).
"""

from __future__ import annotations

import configparser
import os
from collections.abc import Mapping
from typing import Any

import oci

from ocimodel.errors import OcimodelError

DEFAULT_CONFIG_LOCATION = os.path.join("~", ".oci", "config")
DEFAULT_PROFILE = "DEFAULT"
ENV_CONFIG_FILE = "OCI_CONFIG_FILE"
ENV_CONFIG_PROFILE = "OCI_CONFIG_PROFILE"
ENV_IAM_TYPE = "OCI_IAM_TYPE"
ENV_SERVICE_ENDPOINT = "OCIMODEL_SERVICE_ENDPOINT"

AUTH_TYPES = ("api_key", "resource_principal", "instance_principal", "security_token")
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


class AuthDict(RedactedDict):
    """The auth dict: ``config``, ``signer`` and ``client_kwargs``; secrets stay out of repr."""


_default_auth: dict[str, Any] = {}


def _env_client_kwargs(client_kwargs: Mapping[str, Any] | None) -> dict[str, Any]:
    """Client kwargs with ``service_endpoint`` from the environment unless given."""
    kwargs = dict(client_kwargs or {})
    endpoint = os.environ.get(ENV_SERVICE_ENDPOINT)
    if endpoint and "service_endpoint" not in kwargs:
        kwargs["service_endpoint"] = endpoint
    return kwargs


def _config_location(oci_config_location: str | None) -> str:
    """The config file: the argument, else $OCI_CONFIG_FILE, else ~/.oci/config."""
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


def api_keys(
    oci_config_location: str | None = DEFAULT_CONFIG_LOCATION,
    profile: str | None = None,
    client_kwargs: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Auth dict signed with the API key of a config-file profile.

    ``oci_config_location`` equal to the default, or None, defers to $OCI_CONFIG_FILE.
    """
    if oci_config_location == DEFAULT_CONFIG_LOCATION:
        oci_config_location = None
    location = _config_location(oci_config_location)
    prof = _profile(profile)
    config = _read_config(location, prof)
    try:
        signer = oci.signer.Signer.from_config(config)
    except Exception as exc:
        raise OCIAuthError(
            f"The API key of profile {prof!r} in {location!r} could not be loaded "
            f"({type(exc).__name__}). Check key_file and pass_phrase in that profile."
        ) from None
    return AuthDict(
        config=RedactedDict(config), signer=signer, client_kwargs=_env_client_kwargs(client_kwargs)
    )


def security_token(
    oci_config_location: str | None = DEFAULT_CONFIG_LOCATION,
    profile: str | None = None,
    client_kwargs: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Auth dict signed with the session token named by ``security_token_file`` in a profile."""
    if oci_config_location == DEFAULT_CONFIG_LOCATION:
        oci_config_location = None
    location = _config_location(oci_config_location)
    prof = _profile(profile)
    config = _read_config(location, prof, validate=False)
    token_file = config.get("security_token_file")
    if not token_file or not os.path.isfile(os.path.expanduser(token_file)):
        raise OCIAuthError(
            f"Profile {prof!r} in {location!r} has no readable security_token_file. Run "
            "`oci session authenticate` or use auth='api_key'."
        )
    with open(os.path.expanduser(token_file), encoding="utf-8") as fh:
        token = fh.read().strip()
    try:
        key = oci.signer.load_private_key_from_file(config["key_file"], config.get("pass_phrase"))
    except Exception as exc:
        raise OCIAuthError(
            f"The session key of profile {prof!r} in {location!r} could not be loaded "
            f"({type(exc).__name__}). Check key_file and pass_phrase in that profile."
        ) from None
    signer = oci.auth.signers.SecurityTokenSigner(token, key)
    return AuthDict(
        config=RedactedDict(config), signer=signer, client_kwargs=_env_client_kwargs(client_kwargs)
    )


def resource_principal(client_kwargs: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Auth dict signed by the resource principal of the running OCI resource."""
    try:
        signer = oci.auth.signers.get_resource_principals_signer()
    except Exception as exc:
        raise OCIAuthError(
            f"No resource principal is available here ({type(exc).__name__}). Run inside an "
            "OCI resource with OCI_RESOURCE_PRINCIPAL_* set, or use auth='api_key'."
        ) from None
    config: dict[str, Any] = {}
    region = getattr(signer, "region", None)
    if region:
        config["region"] = region
    return AuthDict(
        config=RedactedDict(config), signer=signer, client_kwargs=_env_client_kwargs(client_kwargs)
    )


def instance_principal(client_kwargs: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Auth dict signed by the instance principal of the running compute instance."""
    try:
        signer = oci.auth.signers.InstancePrincipalsSecurityTokenSigner()
    except Exception as exc:
        raise OCIAuthError(
            f"No instance principal is available here ({type(exc).__name__}). Run on an OCI "
            "instance in a dynamic group, or use auth='api_key'."
        ) from None
    config = {"region": signer.region} if getattr(signer, "region", None) else {}
    return AuthDict(
        config=RedactedDict(config), signer=signer, client_kwargs=_env_client_kwargs(client_kwargs)
    )


def set_auth(
    auth: str = "api_key",
    oci_config_location: str | None = DEFAULT_CONFIG_LOCATION,
    profile: str | None = None,
    client_kwargs: Mapping[str, Any] | None = None,
) -> None:
    """Sets the process-wide default authentication used when ``auth=None`` is passed."""
    if auth not in AUTH_TYPES:
        raise OCIAuthError(f"Unknown auth type {auth!r}; use one of {', '.join(AUTH_TYPES)}.")
    _default_auth.clear()
    _default_auth.update(
        auth=auth,
        oci_config_location=oci_config_location,
        profile=profile,
        client_kwargs=dict(client_kwargs or {}),
    )


def reset_auth() -> None:
    """Forgets what set_auth() chose, going back to the environment defaults."""
    _default_auth.clear()


def default_signer(client_kwargs: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Auth dict from set_auth(), else from $OCI_IAM_TYPE (default api_key) and the config file."""
    settings = dict(_default_auth) or {"auth": os.environ.get(ENV_IAM_TYPE) or "api_key"}
    kind = settings["auth"]
    kwargs = {**settings.get("client_kwargs", {}), **(client_kwargs or {})}
    if kind == "api_key":
        return api_keys(settings.get("oci_config_location"), settings.get("profile"), kwargs)
    if kind == "security_token":
        return security_token(settings.get("oci_config_location"), settings.get("profile"), kwargs)
    if kind == "resource_principal":
        return resource_principal(kwargs)
    if kind == "instance_principal":
        return instance_principal(kwargs)
    raise OCIAuthError(
        f"Unknown auth type {kind!r} (from ${ENV_IAM_TYPE}); use one of {', '.join(AUTH_TYPES)}."
    )


def make_client(client_cls: type, auth: Mapping[str, Any] | None = None, **kw: Any) -> Any:
    """Builds any oci SDK client from an auth dict; ``kw`` override its client_kwargs."""
    auth = auth or default_signer()
    kwargs = {**dict(auth.get("client_kwargs") or {}), **kw}
    config = RedactedDict(auth.get("config") or {})
    return client_cls(config=config, signer=auth.get("signer"), **kwargs)


def storage_options(auth: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """fsspec/ocifs options from an auth dict: config, signer and client kwargs."""
    auth = auth or default_signer()
    return RedactedDict(
        config=RedactedDict(auth.get("config") or {}),
        signer=auth.get("signer"),
        config_kwargs=dict(auth.get("client_kwargs") or {}),
    )
