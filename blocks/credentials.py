"""The OCI credentials block: how a flow reaches OCI, stored in Prefect and turned into the
core's typed :class:`~ocimodel.oci.auth.OCIAuth` (its signer, SDK clients and ocifs filesystem).

Bad settings fail when the block is built or loaded, as a pydantic ``ValidationError`` whose
errors are located at the field to change; problems only the files or the key can show (a
missing config file, a key that does not parse) are the core's :class:`OCIAuthError` at
:meth:`OCICredentials.get_auth`. Neither ever holds a secret: inputs are hidden from validation
errors, and the core names settings, never their values.
"""

import functools
import importlib.util
import threading
from collections.abc import Mapping
from typing import Any, Literal
from urllib.parse import urlsplit

from prefect.blocks.abstract import CredentialsBlock
from pydantic import ConfigDict, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

from ocimodel.oci.auth import SERVICES, OCIAuth, settings_key

__all__ = ["ORACLE_LOGO_URL", "AuthType", "OCICredentials"]

ORACLE_LOGO_URL = "https://avatars.githubusercontent.com/u/4430336?s=200&v=4"
"""Oracle's square logo (PNG), shown beside ocimodel's blocks in the Prefect UI."""

AuthType = Literal["api_key", "security_token", "resource_principal", "instance_principal"]
"""How requests are signed: the core's AUTH_TYPES (a test keeps the two in step)."""

MAX_CACHED_AUTHS = 16
"""Distinct credential settings whose OCIAuth (and so whose clients) a process keeps."""

_KEY_NEEDS = ("user", "tenancy", "fingerprint", "region")
"""What an API key given as key_content needs besides the key."""
_KEY_PARTS = ("user", "tenancy", "fingerprint", "pass_phrase")
"""Parts of an API key given in the block, which a config file profile holds itself."""
_FILE_PARTS = ("config_file", "profile", "security_token_file")

_auth_lock = threading.Lock()


class OCICredentials(CredentialsBlock):
    """Credentials and endpoints to reach OCI: an API key (from a config file profile, or given
    as key content), a session token, a resource principal or an instance principal.

    ``get_auth()`` gives the core's typed ``OCIAuth`` (pass it as ``auth=`` to any ocimodel
    function); ``get_client(service)`` gives its cached SDK client. Set ``endpoint`` to reach
    the local OCI service (``python -m ocimodel.local``) instead of the cloud.

    Example:
        Load stored OCI credentials and list the Data Science projects of a compartment:
        ```python
        from ocimodel.blocks import OCICredentials

        oci_credentials = OCICredentials.load("BLOCK_NAME")
        client = oci_credentials.get_client("data_science")
        projects = client.list_projects(compartment_id="ocid1.compartment.oc1..example").data
        ```
    """

    _block_type_name = "OCI Credentials"
    _logo_url = ORACLE_LOGO_URL
    _documentation_url = "https://docs.oracle.com/en-us/iaas/Content/API/Concepts/sdkconfig.htm"

    # Validation errors never echo what was given: the given values may be secrets.
    model_config = ConfigDict(hide_input_in_errors=True)

    auth_type: AuthType = Field(
        default="api_key",
        description=(
            "How requests are signed: api_key (a config file profile, or key_content), "
            "security_token (the session of a config file profile), resource_principal or "
            "instance_principal (of the OCI resource running the flow)."
        ),
    )
    config_file: str | None = Field(
        default=None,
        description=(
            "OCI config file holding the profile, for api_key (without key_content) and "
            "security_token; unset means $OCI_CONFIG_FILE, else ~/.oci/config."
        ),
    )
    profile: str | None = Field(
        default=None,
        description="Profile of the config file; unset means $OCI_CONFIG_PROFILE, else DEFAULT.",
    )
    user: str | None = Field(
        default=None, description="OCID of the user whose API key key_content is."
    )
    tenancy: str | None = Field(
        default=None, description="OCID of the tenancy of that user, with key_content."
    )
    fingerprint: str | None = Field(
        default=None, description="Fingerprint of the API key's public key, with key_content."
    )
    key_content: SecretStr | None = Field(
        default=None,
        description=(
            "The API key's private key (PEM text), to keep the key in this block instead of "
            "a config file; stored encrypted and never shown."
        ),
    )
    pass_phrase: SecretStr | None = Field(
        default=None,
        description="Pass phrase of key_content when that key is encrypted; never shown.",
    )
    security_token_file: str | None = Field(
        default=None,
        description=(
            "Session token file for security_token, instead of the profile's "
            "security_token_file (the profile still gives the session key)."
        ),
    )
    region: str | None = Field(
        default=None,
        description=(
            "OCI region, e.g. us-ashburn-1; needed with key_content, else it replaces the "
            "profile's region."
        ),
    )
    endpoint: str | None = Field(
        default=None,
        description=(
            "Endpoint URL of every service, e.g. the local OCI service's "
            "http://127.0.0.1:PORT; unset means $OCIMODEL_SERVICE_ENDPOINT, else the "
            "region's OCI endpoints."
        ),
    )
    endpoints: dict[str, str] = Field(
        default_factory=dict,
        description=(
            f"Endpoint URL per service, by oci package name ({', '.join(SERVICES)}); "
            "these win over endpoint."
        ),
    )

    # --- validation -------------------------------------------------------------------------

    @field_validator(
        "config_file",
        "profile",
        "user",
        "tenancy",
        "fingerprint",
        "security_token_file",
        "region",
        "endpoint",
        mode="before",
    )
    @classmethod
    def _text_is_stripped(cls, value: Any) -> Any:
        """Strips text; empty text (what a cleared form field sends) means unset."""
        if isinstance(value, str):
            return value.strip() or None
        return value

    @field_validator("key_content", "pass_phrase", mode="before")
    @classmethod
    def _blank_secret_is_unset(cls, value: Any) -> Any:
        """An empty secret means unset; a secret is otherwise kept exactly as given."""
        text = value.get_secret_value() if isinstance(value, SecretStr) else value
        return None if isinstance(text, str) and not text.strip() else value

    @field_validator("endpoint")
    @classmethod
    def _endpoint_is_a_url(cls, value: str | None) -> str | None:
        """An endpoint is an http(s) URL with a host."""
        if value is not None:
            _check_url(value)
        return value

    @field_validator("endpoints")
    @classmethod
    def _endpoints_name_services(cls, value: dict[str, str]) -> dict[str, str]:
        """Keys are oci service packages (normalised like the core does), values URLs."""
        out = {}
        for service, url in value.items():
            name = service.strip().lower().replace("-", "_")
            if not name.isidentifier() or importlib.util.find_spec(f"oci.{name}") is None:
                raise ValueError(
                    f"{service!r} is not an oci service package; use one of "
                    f"{', '.join(SERVICES)} (or another oci.<package> name)."
                )
            _check_url(url, f"The endpoint of {name}")
            out[name] = url.strip()
        return out

    @model_validator(mode="after")
    def _settings_fit_the_auth_type(self) -> "OCICredentials":
        """Every setting the auth type needs is there, and none it would ignore is."""
        given = {name for name in type(self).model_fields if getattr(self, name) is not None}
        problems = _problems(self.auth_type, given)
        if problems:
            raise ValidationError.from_exception_data(
                type(self).__name__,
                [
                    InitErrorDetails(
                        type=PydanticCustomError("oci_credentials", message),
                        loc=(name,),
                        input=None,
                    )
                    for name, message in problems.items()
                ],
            )
        return self

    # --- the core's auth and clients --------------------------------------------------------

    def get_auth(self) -> OCIAuth:
        """The core's typed auth for these settings, built once per process and settings (and
        config file version), so equal blocks share one OCIAuth and its cached clients."""
        settings = self._settings()
        with _auth_lock:
            misses = _build_auth.cache_info().misses
            auth = _build_auth(settings)
            built = _build_auth.cache_info().misses != misses
        if built:
            self.logger.info("Loaded OCI credentials: %r", auth)
        return auth

    def get_client(self, service: str | type = "data_science", **client_kwargs: Any) -> Any:
        """The SDK client of an oci service (``data_science``, ``object_storage``...) or client
        class, built once and shared; ``client_kwargs`` (``timeout``...) make another one."""
        return self.get_auth().client(service, **client_kwargs)

    def _settings(self) -> tuple:
        """A hashable snapshot of the fields, and of what the core reads besides them (its
        environment variables and the config file's version)."""
        values = tuple((name, _hashable(getattr(self, name))) for name in type(self).model_fields)
        # The core's key of its default auth: the variables it reads, plus the config file's
        # version for the kinds that read one (an API key in key_content reads none).
        source = "key_content" if self.key_content is not None else self.auth_type
        environment = settings_key(
            {"auth": source, "oci_config_location": self.config_file, "profile": self.profile}
        )
        return (values, environment)


def _problems(kind: str, given: set[str]) -> dict[str, str]:
    """Settings that ``kind`` needs but are not ``given``, and given ones it would ignore; each
    with what to change (by name: the values may be secrets)."""
    needed: tuple[str, ...] = ()
    if kind == "api_key" and "key_content" in given:
        needed = _KEY_NEEDS
        why = "does not go with key_content: give the API key by key_content or by a profile."
        ignored = dict.fromkeys(_FILE_PARTS, why)
    elif kind == "api_key":
        why = "goes with key_content; a config file profile gives its own. Set key_content."
        ignored = dict.fromkeys(_KEY_PARTS, why)
        ignored["security_token_file"] = "is for auth_type security_token."
    elif kind == "security_token":
        why = "does not apply to security_token: the config file profile gives the session key."
        ignored = dict.fromkeys((*_KEY_PARTS, "key_content"), why)
    else:
        why = f"does not apply to {kind}, which reads no key or config file."
        ignored = dict.fromkeys((*_FILE_PARTS, *_KEY_PARTS, "key_content"), why)
    problems = {name: f"{name} is needed with key_content." for name in needed if name not in given}
    problems.update({name: f"{name} {why}" for name, why in ignored.items() if name in given})
    return problems


def _hashable(value: Any) -> Any:
    return tuple(sorted(value.items())) if isinstance(value, Mapping) else value


@functools.lru_cache(maxsize=MAX_CACHED_AUTHS)
def _build_auth(settings: tuple) -> OCIAuth:
    """The OCIAuth of a settings snapshot (see :meth:`OCICredentials._settings`)."""
    values = dict(settings[0])
    kind = values["auth_type"]
    common = {"endpoint": values["endpoint"], "endpoints": dict(values["endpoints"])}
    region = values["region"]
    if kind == "api_key" and values["key_content"] is not None:
        return OCIAuth.from_key(
            tenancy=values["tenancy"],
            user=values["user"],
            fingerprint=values["fingerprint"],
            key_content=values["key_content"],
            pass_phrase=values["pass_phrase"],
            region=region,
            **common,
        )
    if kind == "api_key":
        return OCIAuth.from_config_file(
            values["config_file"], values["profile"], region=region, **common
        )
    if kind == "security_token":
        return OCIAuth.from_config_file(
            values["config_file"],
            values["profile"],
            kind="security_token",
            security_token_file=values["security_token_file"],
            region=region,
            **common,
        )
    if kind == "resource_principal":
        return OCIAuth.resource_principal(region=region, **common)
    return OCIAuth.instance_principal(region=region, **common)


def _check_url(value: str, what: str = "The endpoint") -> None:
    """Raises ValueError unless ``value`` is an http(s) URL with a host."""
    parts = urlsplit(value.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(
            f"{what} must be an http(s) URL with a host, e.g. https://objectstorage."
            "us-ashburn-1.oraclecloud.com or the local service's http://127.0.0.1:PORT."
        )
