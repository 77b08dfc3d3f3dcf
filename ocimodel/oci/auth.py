"""How to reach OCI: one typed, immutable :class:`OCIAuth` that builds and caches its signer,
its SDK clients and its ocifs filesystem; plus the ADS-style auth dicts of the reference API.

An :class:`OCIAuth` says which credentials sign requests (``kind``: an API key from a config
file profile or given as key content, a session token, a resource or an instance principal) and
where the services are (``endpoint`` for every service, ``endpoints`` per service). It builds
each costly piece once, thread-safely, and hands the same object out again:

    auth = OCIAuth.from_config_file(profile="DEFAULT")
    auth.client("data_science")            # an oci.data_science.DataScienceClient, cached
    auth.client(ObjectStorageClient)       # the same ObjectStorageClient on every call
    auth.storage_options()                 # fsspec/ocifs options (a fresh dict each call)
    auth.filesystem()                      # the cached ocifs filesystem (no listings cache)

The endpoint is translated once, here: the SDK takes ``service_endpoint=``; ocifs takes it inside
``config_kwargs={"service_endpoint": url}``.

Edges convert once with :func:`resolve_auth`, which takes an :data:`AuthLike`: an OCIAuth, an
ADS auth dict ``{"config": dict, "signer": signer, "client_kwargs": dict}`` (what
:func:`api_keys`, :func:`resource_principal` or :func:`default_signer` return) or None for the
process default: what :func:`set_auth` chose, else ``OCI_IAM_TYPE``, ``OCI_CONFIG_FILE``,
``OCI_CONFIG_PROFILE`` and ``OCIMODEL_SERVICE_ENDPOINT`` (when set, every client and filesystem
gets it as its endpoint). The default is cached until one of those settings (or the config file)
changes, or set_auth()/reset_auth() is called.

Only the SDK's own signers sign requests. No repr, str or error message shows key content, a
pass phrase, a token or a signer's internals.

The pieces live beside this module: config files, signers and redaction in
:mod:`~ocimodel.oci.credentials`, service names and the endpoint DNS check in
:mod:`~ocimodel.oci.endpoints`, cache helpers in :mod:`~ocimodel.oci.caches`. Their public names
are importable from here too.
"""

from __future__ import annotations

import dataclasses
import os
import threading
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any, Literal

import fsspec
import oci

from ocimodel.oci.caches import _Caches, _file_stamp, _freeze, _Identity, _lru_get
from ocimodel.oci.credentials import (
    _FILE_KINDS,
    _KINDS,
    AUTH_TYPES,
    DEFAULT_CONFIG_LOCATION,
    DEFAULT_PROFILE,
    ENV_CONFIG_FILE,
    ENV_CONFIG_PROFILE,
    AuthKind,
    FrozenMap,
    OCIAuthError,
    RedactedDict,
    _api_key_signer,
    _config_location,
    _instance_principal_signer,
    _kind_of_signer,
    _profile,
    _read_config,
    _resource_principal_signer,
    _reveal,
    _security_token_signer,
)
from ocimodel.oci.endpoints import (
    ENV_SERVICE_ENDPOINT,
    SERVICES,
    EndpointNotResolvableError,
    _client_class,
    _endpoint_or_env,
    _service_name,
    _service_of,
    ensure_endpoint_resolves,
)

__all__ = [
    "AUTH_TYPES",
    "DEFAULT_CONFIG_LOCATION",
    "DEFAULT_PROFILE",
    "ENV_CONFIG_FILE",
    "ENV_CONFIG_PROFILE",
    "ENV_IAM_TYPE",
    "ENV_REGION",
    "ENV_SERVICE_ENDPOINT",
    "MAX_CACHED_CLIENTS",
    "MAX_CACHED_FILESYSTEMS",
    "SERVICES",
    "AuthDict",
    "AuthKind",
    "AuthLike",
    "EndpointNotResolvableError",
    "FrozenMap",
    "OCIAuth",
    "OCIAuthError",
    "RedactedDict",
    "api_keys",
    "default_signer",
    "ensure_endpoint_resolves",
    "instance_principal",
    "make_client",
    "reset_auth",
    "resolve_auth",
    "resource_principal",
    "security_token",
    "set_auth",
    "storage_options",
]

ENV_IAM_TYPE = "OCI_IAM_TYPE"
ENV_REGION = "OCI_REGION"
"""Read by the SDK when a config has no region; part of the default auth's cache key."""

_AUTH_DICT_KEYS = ("config", "signer", "client_kwargs")
_RESERVED_CLIENT_KWARGS = ("config", "signer")

MAX_CACHED_CLIENTS = 32
"""Clients kept per OCIAuth (least recently used first out); new kwarg objects make new keys."""
MAX_CACHED_FILESYSTEMS = 8
_MAX_RESOLVED_DICTS = 32
_MAX_DEFAULTS = 8


class AuthDict(RedactedDict):
    """The auth dict: ``config``, ``signer`` and ``client_kwargs``; secrets stay out of repr."""


# --- OCIAuth ----------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, eq=False, repr=False)
class OCIAuth:
    """How to reach OCI: credentials (``kind`` + ``config``) and endpoints. Immutable and
    hashable; builds its signer, SDK clients and ocifs filesystem once and caches them.

    Build one with a classmethod (they read files and load keys at once, so bad input fails
    early with :class:`OCIAuthError`): :meth:`from_config_file`, :meth:`from_key`,
    :meth:`resource_principal`, :meth:`instance_principal`, :meth:`from_signer`,
    :meth:`from_dict`; or get the process default with ``resolve_auth(None)``.

    Fields:
        kind: ``api_key``, ``security_token``, ``resource_principal``, ``instance_principal``
            (or ``signer``: a signer object of another type, in ``given_signer``).
        config: the OCI config entries (tenancy, user, fingerprint, region, key_file or
            key_content, pass_phrase...); read-only, shown redacted.
        endpoint: the endpoint of every service (``service_endpoint``), e.g. the local service.
        endpoints: per-service endpoints by oci package name (``data_science``,
            ``object_storage``, ``model_deployment``); they win over ``endpoint``.
        client_kwargs: other keyword arguments of every client (``timeout``,
            ``retry_strategy``...).
        given_signer: a ready signer to use as is (from an ADS dict or :meth:`from_signer`).
        config_file, profile: where ``config`` came from (for messages and repr).
    """

    kind: AuthKind = "api_key"
    config: Mapping[str, Any] = dataclasses.field(default_factory=FrozenMap)
    endpoint: str | None = None
    endpoints: Mapping[str, str] = dataclasses.field(default_factory=FrozenMap)
    client_kwargs: Mapping[str, Any] = dataclasses.field(default_factory=FrozenMap)
    given_signer: Any = None
    config_file: str | None = None
    profile: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in _KINDS:
            raise OCIAuthError(
                f"Unknown auth type {self.kind!r}; use one of {', '.join(AUTH_TYPES)}."
            )
        if self.kind == "signer" and self.given_signer is None:
            raise OCIAuthError("kind='signer' needs the signer object: pass given_signer=...")
        if not isinstance(self.config, Mapping):
            raise OCIAuthError(
                f"config must be a mapping of OCI config entries, not {type(self.config).__name__}."
            )
        kwargs = dict(self.client_kwargs or {})
        reserved = [k for k in _RESERVED_CLIENT_KWARGS if k in kwargs]
        if reserved:
            raise OCIAuthError(
                f"client_kwargs may not hold {', '.join(reserved)}: pass the config as config=... "
                "and a ready signer with OCIAuth.from_signer(...)."
            )
        endpoint = self.endpoint
        if "service_endpoint" in kwargs:
            given = kwargs.pop("service_endpoint")
            if endpoint is not None and given and given != endpoint:
                raise OCIAuthError(
                    f"Two endpoints given: endpoint={endpoint!r} and client_kwargs"
                    f"['service_endpoint']={given!r}. Pass one."
                )
            endpoint = endpoint or given
        endpoints = {}
        for service, url in dict(self.endpoints or {}).items():
            if url:
                endpoints[_service_name(service)] = url
        set_ = object.__setattr__
        set_(self, "config", FrozenMap(self.config))
        set_(self, "endpoint", endpoint or None)
        set_(self, "endpoints", FrozenMap(endpoints))
        set_(self, "client_kwargs", FrozenMap(kwargs))
        set_(self, "_caches", _Caches())

    # --- constructors -------------------------------------------------------------------------

    @classmethod
    def from_config_file(
        cls,
        config_file: str | None = None,
        profile: str | None = None,
        *,
        kind: Literal["api_key", "security_token"] = "api_key",
        region: str | None = None,
        endpoint: str | None = None,
        endpoints: Mapping[str, str] | None = None,
        client_kwargs: Mapping[str, Any] | None = None,
        security_token_file: str | None = None,
    ) -> OCIAuth:
        """An API key (or, with ``kind="security_token"``, a session token) of a config-file
        profile. ``config_file``/``profile`` default to $OCI_CONFIG_FILE/$OCI_CONFIG_PROFILE,
        then ``~/.oci/config``/DEFAULT; ``endpoint`` to $OCIMODEL_SERVICE_ENDPOINT.
        ``security_token_file`` replaces the profile's token file (a session token)."""
        if kind not in _FILE_KINDS:
            raise OCIAuthError(
                f"A config file gives kind 'api_key' or 'security_token', not {kind!r}."
            )
        if security_token_file is not None and kind != "security_token":
            raise OCIAuthError(
                "security_token_file goes with kind='security_token'; drop it for an API key."
            )
        location = _config_location(config_file)
        prof = _profile(profile)
        config = _read_config(location, prof, validate=kind == "api_key")
        if security_token_file is not None:
            config["security_token_file"] = security_token_file
        if region:
            config["region"] = region
        auth = cls(
            kind=kind,
            config=config,
            endpoint=_endpoint_or_env(endpoint, client_kwargs),
            endpoints=endpoints or {},
            client_kwargs=client_kwargs or {},
            config_file=location,
            profile=prof,
        )
        return auth._loaded()  # bad input fails here, not mid-pipeline

    @classmethod
    def from_key(
        cls,
        *,
        tenancy: str,
        user: str,
        fingerprint: str,
        key_content: Any,
        region: str,
        pass_phrase: Any = None,
        endpoint: str | None = None,
        endpoints: Mapping[str, str] | None = None,
        client_kwargs: Mapping[str, Any] | None = None,
    ) -> OCIAuth:
        """An API key given directly: the PEM ``key_content`` (a str, bytes or a
        ``SecretStr``) and its ``pass_phrase`` never show in a repr or an error."""
        content = _reveal(key_content)
        if isinstance(content, bytes):
            content = content.decode("ascii", errors="replace")
        phrase = _reveal(pass_phrase)
        config = {
            "tenancy": tenancy,
            "user": user,
            "fingerprint": fingerprint,
            "region": region,
            "key_content": content,
        }
        if phrase:
            config["pass_phrase"] = phrase
        try:
            oci.config.validate_config(dict(config))
        except (oci.exceptions.InvalidConfig, ValueError) as exc:
            raise OCIAuthError(
                f"The API key settings are invalid ({exc}). Fix the listed arguments."
            ) from None
        auth = cls(
            kind="api_key",
            config=config,
            endpoint=_endpoint_or_env(endpoint, client_kwargs),
            endpoints=endpoints or {},
            client_kwargs=client_kwargs or {},
        )
        return auth._loaded()

    @classmethod
    def resource_principal(
        cls,
        *,
        region: str | None = None,
        endpoint: str | None = None,
        endpoints: Mapping[str, str] | None = None,
        client_kwargs: Mapping[str, Any] | None = None,
    ) -> OCIAuth:
        """The resource principal of the running OCI resource (``OCI_RESOURCE_PRINCIPAL_*``)."""
        return cls._principal("resource_principal", region, endpoint, endpoints, client_kwargs)

    @classmethod
    def instance_principal(
        cls,
        *,
        region: str | None = None,
        endpoint: str | None = None,
        endpoints: Mapping[str, str] | None = None,
        client_kwargs: Mapping[str, Any] | None = None,
    ) -> OCIAuth:
        """The instance principal of the running compute instance."""
        return cls._principal("instance_principal", region, endpoint, endpoints, client_kwargs)

    @classmethod
    def _principal(cls, kind, region, endpoint, endpoints, client_kwargs) -> OCIAuth:
        auth = cls(
            kind=kind,
            config={"region": region} if region else {},
            endpoint=_endpoint_or_env(endpoint, client_kwargs),
            endpoints=endpoints or {},
            client_kwargs=client_kwargs or {},
        )
        return auth._loaded()  # fails here when no principal is available

    @classmethod
    def from_signer(
        cls,
        signer: Any,
        config: Mapping[str, Any] | None = None,
        *,
        endpoint: str | None = None,
        endpoints: Mapping[str, str] | None = None,
        client_kwargs: Mapping[str, Any] | None = None,
    ) -> OCIAuth:
        """A ready SDK signer (and the config holding at least its ``region``), used as is."""
        config = dict(config or {})
        region = getattr(signer, "region", None)
        if region and not config.get("region"):
            config["region"] = region
        return cls(
            kind=_kind_of_signer(signer),
            config=config,
            endpoint=endpoint,
            endpoints=endpoints or {},
            client_kwargs=client_kwargs or {},
            given_signer=signer,
        )

    @classmethod
    def from_dict(cls, auth: Mapping[str, Any]) -> OCIAuth:
        """The OCIAuth of an ADS auth dict ``{"config", "signer", "client_kwargs"}``; its
        ``client_kwargs["service_endpoint"]`` becomes the endpoint of every service. Prefer
        :func:`resolve_auth`, which caches the conversion."""
        unknown = sorted(str(k) for k in auth if k not in _AUTH_DICT_KEYS)
        if unknown:
            raise OCIAuthError(
                f"An auth dict has the keys {', '.join(_AUTH_DICT_KEYS)}; {', '.join(unknown)} "
                "is not one. Build it with api_keys(), resource_principal() or default_signer()."
            )
        config = auth.get("config") or {}
        if not isinstance(config, Mapping):
            raise OCIAuthError(
                f"The auth dict's config must be a dict of OCI config entries, not "
                f"{type(config).__name__}."
            )
        client_kwargs = auth.get("client_kwargs") or {}
        if not isinstance(client_kwargs, Mapping):
            raise OCIAuthError(
                f"The auth dict's client_kwargs must be a dict, not {type(client_kwargs).__name__}."
            )
        signer = auth.get("signer")
        if signer is None:
            if not config:
                raise OCIAuthError(
                    "The auth dict has neither a config nor a signer. Build it with api_keys(), "
                    "resource_principal() or default_signer()."
                )
            return cls(kind="api_key", config=config, client_kwargs=client_kwargs)
        return cls.from_signer(signer, config, client_kwargs=client_kwargs)

    # --- derived values -----------------------------------------------------------------------

    @property
    def region(self) -> str | None:
        """The region: from the config, else the signer's (principals know theirs)."""
        region = self.config.get("region")
        if region or self.kind not in ("resource_principal", "instance_principal", "signer"):
            return region
        return getattr(self.signer, "region", None)

    @property
    def tenancy(self) -> str | None:
        return self.config.get("tenancy") or getattr(self.given_signer, "tenancy_id", None)

    @property
    def user(self) -> str | None:
        return self.config.get("user")

    def endpoint_for(self, service: str | None) -> str | None:
        """The endpoint of a service (its oci package name); None: the SDK's regional one."""
        if service:
            url = self.endpoints.get(_service_name(service))
            if url:
                return url
        return self.endpoint

    def with_endpoint(self, endpoint: str | None, service: str | None = None) -> OCIAuth:
        """A copy pointing every service (or only ``service``) at ``endpoint``."""
        if service is None:
            changed = dataclasses.replace(self, endpoint=endpoint)
        else:
            endpoints = dict(self.endpoints)
            endpoints[_service_name(service)] = endpoint
            changed = dataclasses.replace(self, endpoints=endpoints)
        with self._caches.lock:
            caches = self._fresh_caches()
            changed._caches.signer = caches.signer  # same credentials, same loaded key
            changed._caches.token_stamp = caches.token_stamp
        return changed

    def sdk_config(self) -> RedactedDict:
        """A fresh copy of the config for an SDK client or ocifs (both may add keys to it)."""
        config = RedactedDict(self.config)
        if not config.get("region"):
            region = self.region
            if region:
                config["region"] = region
        return config

    # --- cached pieces ------------------------------------------------------------------------

    @property
    def signer(self) -> Any:
        """The SDK signer, built once (loading the key or fetching the principal's token)."""
        if self.given_signer is not None:
            return self.given_signer
        with self._caches.lock:
            caches = self._fresh_caches()
            if caches.signer is None:
                caches.signer = self._build_signer()
            return caches.signer

    def _fresh_caches(self) -> _Caches:
        """The caches, call with the lock held (see :meth:`_Caches.fresh`)."""
        token_file = None
        if self.kind == "security_token" and self.given_signer is None:
            token_file = self.config.get("security_token_file")
        return self._caches.fresh(token_file)

    def _loaded(self) -> OCIAuth:
        """Itself, with its signer built (the key loaded, the principal's token fetched)."""
        self.signer  # noqa: B018 - a cached property with the side effect we want
        return self

    def _build_signer(self) -> Any:
        if self.kind == "api_key":
            if self.config_file:
                where = f"profile {self.profile!r} in {self.config_file!r}"
                fix = "Check key_file and pass_phrase in that profile."
            elif self.config.get("key_content"):
                where, fix = "the given key_content", "Check key_content and pass_phrase."
            else:
                where, fix = "the auth config", "Check its key_file and pass_phrase."
            return _api_key_signer(self.config, where, fix)
        if self.kind == "security_token":
            return _security_token_signer(
                self.config, self.config_file or "the auth config", self.profile or DEFAULT_PROFILE
            )
        if self.kind == "resource_principal":
            return _resource_principal_signer()
        return _instance_principal_signer()

    def client_kwargs_for(self, service: str | None) -> dict[str, Any]:
        """SDK client keyword arguments for ``service``: client_kwargs, signer, endpoint."""
        kwargs = dict(self.client_kwargs)
        kwargs["signer"] = self.signer
        endpoint = self.endpoint_for(service)
        if endpoint:
            kwargs["service_endpoint"] = endpoint
        return kwargs

    def client(self, client: type | str, **kwargs: Any) -> Any:
        """The SDK client of a class (or oci package name, e.g. ``"data_science"``), built once
        per (class, kwargs) and shared; ``kwargs`` override :attr:`client_kwargs` (and may give
        ``service_endpoint``). Clients are shared across threads, as UploadManager does."""
        client_cls = _client_class(client)
        key = (client_cls, _freeze(kwargs))
        with self._caches.lock:
            caches = self._fresh_caches()
            return _lru_get(
                caches.clients,
                key,
                MAX_CACHED_CLIENTS,
                lambda: self._new_client(client_cls, kwargs),
            )

    def _new_client(self, client_cls: type, kwargs: Mapping[str, Any]) -> Any:
        merged = {**self.client_kwargs_for(_service_of(client_cls)), **kwargs}
        return client_cls(self.sdk_config(), **merged)

    def storage_options(self) -> RedactedDict:
        """fsspec/ocifs options: ``config``, ``signer``, ``config_kwargs`` (client kwargs with
        the Object Storage endpoint) and ``use_listings_cache=False`` (listings are never
        served stale). A fresh dict each call: ocifs adds keys to what it is given."""
        return RedactedDict(
            config=self.sdk_config(),
            signer=self.signer,
            config_kwargs={
                k: v for k, v in self.client_kwargs_for("object_storage").items() if k != "signer"
            },
            use_listings_cache=False,
        )

    def filesystem(self, **config_kwargs: Any) -> fsspec.AbstractFileSystem:
        """The ocifs filesystem, built once per ``config_kwargs`` (extra Object Storage client
        kwargs such as ``timeout``). Its listings are not cached, so ``exists``, ``isdir`` and
        ``find`` see every write, by this or any other client. Creating it fails at once with
        :class:`EndpointNotResolvableError` when the endpoint's host does not resolve."""
        key = _freeze(config_kwargs)
        with self._caches.lock:
            caches = self._fresh_caches()
            return _lru_get(
                caches.filesystems,
                key,
                MAX_CACHED_FILESYSTEMS,
                lambda: self._new_filesystem(config_kwargs),
            )

    def _new_filesystem(self, config_kwargs: Mapping[str, Any]) -> fsspec.AbstractFileSystem:
        options = self.storage_options()
        options["config_kwargs"].update(config_kwargs)
        fs = fsspec.filesystem("oci", skip_instance_cache=True, **options)
        client = getattr(fs, "oci_client", None)
        endpoint = getattr(getattr(client, "base_client", None), "endpoint", "")
        if endpoint:
            ensure_endpoint_resolves(endpoint)
        return fs

    def clear_cache(self) -> None:
        """Forgets the built signer, clients and filesystems (e.g. after rotating a key)."""
        with self._caches.lock:
            self._caches.reset()

    def to_dict(self, client_kwargs: Mapping[str, Any] | None = None) -> AuthDict:
        """The ADS auth dict (``config``, ``signer``, ``client_kwargs``) of this auth, with the
        cached signer; ``client_kwargs`` are added. Per-service endpoints have no place in it.
        :func:`resolve_auth` maps the dict (without extra client_kwargs) back to this object."""
        kwargs = dict(self.client_kwargs)
        if self.endpoint:
            kwargs["service_endpoint"] = self.endpoint
        kwargs.update(client_kwargs or {})
        auth = AuthDict(config=self.sdk_config(), signer=self.signer, client_kwargs=kwargs)
        if not client_kwargs:
            _remember_dict(auth, self)
        return auth

    # --- value semantics ----------------------------------------------------------------------

    def _identity(self) -> tuple:
        return (
            self.kind,
            self.config,
            self.endpoint,
            self.endpoints,
            _freeze(dict(self.client_kwargs)),
            _Identity(self.given_signer),
            self.config_file,
            self.profile,
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, OCIAuth):
            return NotImplemented
        return self._identity() == other._identity()

    def __hash__(self) -> int:
        return hash(self._identity())

    def __repr__(self) -> str:
        parts = [f"kind={self.kind!r}"]
        if self.config_file:
            parts.append(f"config_file={self.config_file!r}")
        if self.profile:
            parts.append(f"profile={self.profile!r}")
        for name in ("region", "tenancy", "user", "fingerprint"):
            value = self.config.get(name)
            if value:
                parts.append(f"{name}={value!r}")
        if self.config.get("key_content"):
            parts.append("key_content=<redacted>")
        if self.config.get("pass_phrase"):
            parts.append("pass_phrase=<redacted>")
        if self.endpoint:
            parts.append(f"endpoint={self.endpoint!r}")
        if self.endpoints:
            parts.append(f"endpoints={dict(self.endpoints)!r}")
        if self.client_kwargs:
            parts.append(f"client_kwargs=<{', '.join(sorted(self.client_kwargs))}>")
        if self.given_signer is not None:
            parts.append(f"signer=<{type(self.given_signer).__name__}>")
        return f"OCIAuth({', '.join(parts)})"

    __str__ = __repr__

    def __reduce__(self) -> tuple:
        """Pickles the description only; the copy builds its own signer, clients and caches."""
        fields = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        return (_rebuild, (fields,))


def _rebuild(fields: dict[str, Any]) -> OCIAuth:
    return OCIAuth(**fields)


AuthLike = OCIAuth | Mapping[str, Any] | None
"""What every ``auth=`` parameter takes: an OCIAuth, an ADS auth dict, or None (the default)."""


# --- resolution at the edges ------------------------------------------------------------------

_default_auth: dict[str, Any] = {}
_lock = threading.RLock()
_resolved_dicts: OrderedDict[Any, OCIAuth] = OrderedDict()
_defaults: OrderedDict[Any, OCIAuth] = OrderedDict()
_pid = os.getpid()


def _module_caches_fresh() -> None:
    """Drops the module caches in a forked child (their clients hold the parent's sockets)."""
    global _pid
    if _pid != os.getpid():
        _resolved_dicts.clear()
        _defaults.clear()
        _pid = os.getpid()


def _dict_key(auth: Mapping[str, Any]) -> Any:
    return (
        _freeze(dict(auth.get("config") or {})),
        _Identity(auth.get("signer")),
        _freeze(dict(auth.get("client_kwargs") or {})),
    )


def _remember_dict(auth: Mapping[str, Any], resolved: OCIAuth) -> None:
    with _lock:
        _module_caches_fresh()
        _lru_get(_resolved_dicts, _dict_key(auth), _MAX_RESOLVED_DICTS, lambda: resolved)


def resolve_auth(auth: AuthLike = None) -> OCIAuth:
    """The OCIAuth of an ``auth=`` argument: an OCIAuth as is; an ADS auth dict converted (and
    remembered, so the same dict gives the same OCIAuth and its cached clients); None: the
    process default (set_auth(), else the environment), cached until its settings change."""
    if isinstance(auth, OCIAuth):
        return auth
    if auth is None or (isinstance(auth, Mapping) and not auth):  # {} meant the default too
        return _default()
    if not isinstance(auth, Mapping):
        raise OCIAuthError(
            f"auth must be an OCIAuth, an auth dict (config, signer, client_kwargs) or None, "
            f"not {type(auth).__name__}."
        )
    try:
        key = _dict_key(auth)
    except (TypeError, ValueError):  # not dicts inside: from_dict says what is wrong
        return OCIAuth.from_dict(auth)
    with _lock:
        _module_caches_fresh()
        return _lru_get(_resolved_dicts, key, _MAX_RESOLVED_DICTS, lambda: OCIAuth.from_dict(auth))


def _default_settings() -> dict[str, Any]:
    return dict(_default_auth) or {"auth": os.environ.get(ENV_IAM_TYPE) or "api_key"}


def settings_key(settings: Mapping[str, Any]) -> Any:
    """A hashable key of auth settings (an ADS-style dict) and of what building them reads
    besides: the OCI environment variables and the config file's version. Caches keyed on it
    rebuild an auth when any of those change."""
    env = tuple(
        os.environ.get(name)
        for name in (
            ENV_IAM_TYPE,
            ENV_CONFIG_FILE,
            ENV_CONFIG_PROFILE,
            ENV_SERVICE_ENDPOINT,
            ENV_REGION,
        )
    )
    kind = settings["auth"]
    if kind in _FILE_KINDS:
        extra: Any = _file_stamp(_config_location(settings.get("oci_config_location")))
    elif kind == "resource_principal":
        extra = tuple(
            sorted((k, v) for k, v in os.environ.items() if k.startswith("OCI_RESOURCE_PRINCIPAL"))
        )
    else:
        extra = None
    return (_freeze(settings), env, extra)


def _build_default(settings: Mapping[str, Any]) -> OCIAuth:
    kind = settings["auth"]
    client_kwargs = dict(settings.get("client_kwargs") or {})
    endpoint = client_kwargs.pop("service_endpoint", None)
    common = {"endpoint": endpoint, "client_kwargs": client_kwargs}
    if kind in _FILE_KINDS:
        return OCIAuth.from_config_file(
            settings.get("oci_config_location"), settings.get("profile"), kind=kind, **common
        )
    if kind == "resource_principal":
        return OCIAuth.resource_principal(**common)
    if kind == "instance_principal":
        return OCIAuth.instance_principal(**common)
    raise OCIAuthError(
        f"Unknown auth type {kind!r} (from ${ENV_IAM_TYPE}); use one of {', '.join(AUTH_TYPES)}."
    )


def _default() -> OCIAuth:
    settings = _default_settings()
    key = settings_key(settings)
    with _lock:
        _module_caches_fresh()
        return _lru_get(_defaults, key, _MAX_DEFAULTS, lambda: _build_default(settings))


# --- the ADS-style API ------------------------------------------------------------------------


def api_keys(
    oci_config_location: str | None = DEFAULT_CONFIG_LOCATION,
    profile: str | None = None,
    client_kwargs: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Auth dict signed with the API key of a config-file profile.

    ``oci_config_location`` equal to the default, or None, defers to $OCI_CONFIG_FILE.
    """
    return OCIAuth.from_config_file(
        oci_config_location, profile, client_kwargs=client_kwargs
    ).to_dict()


def security_token(
    oci_config_location: str | None = DEFAULT_CONFIG_LOCATION,
    profile: str | None = None,
    client_kwargs: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Auth dict signed with the session token named by ``security_token_file`` in a profile."""
    return OCIAuth.from_config_file(
        oci_config_location, profile, kind="security_token", client_kwargs=client_kwargs
    ).to_dict()


def resource_principal(client_kwargs: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Auth dict signed by the resource principal of the running OCI resource."""
    return OCIAuth.resource_principal(client_kwargs=client_kwargs).to_dict()


def instance_principal(client_kwargs: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Auth dict signed by the instance principal of the running compute instance."""
    return OCIAuth.instance_principal(client_kwargs=client_kwargs).to_dict()


def set_auth(
    auth: str = "api_key",
    oci_config_location: str | None = DEFAULT_CONFIG_LOCATION,
    profile: str | None = None,
    client_kwargs: Mapping[str, Any] | None = None,
) -> None:
    """Sets the process-wide default authentication used when ``auth=None`` is passed."""
    if auth not in AUTH_TYPES:
        raise OCIAuthError(f"Unknown auth type {auth!r}; use one of {', '.join(AUTH_TYPES)}.")
    with _lock:
        _default_auth.clear()
        _default_auth.update(
            auth=auth,
            oci_config_location=oci_config_location,
            profile=profile,
            client_kwargs=dict(client_kwargs or {}),
        )
        _defaults.clear()


def reset_auth() -> None:
    """Forgets what set_auth() chose (and every cached default), back to the environment."""
    with _lock:
        _default_auth.clear()
        _defaults.clear()


def default_signer(client_kwargs: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Auth dict from set_auth(), else from $OCI_IAM_TYPE (default api_key) and the config file."""
    return resolve_auth(None).to_dict(client_kwargs)


def make_client(client_cls: type | str, auth: AuthLike = None, **kw: Any) -> Any:
    """The (cached) oci SDK client of a class or service name for ``auth``; ``kw`` override its
    client kwargs. See :meth:`OCIAuth.client`."""
    return resolve_auth(auth).client(client_cls, **kw)


def storage_options(auth: AuthLike = None) -> dict[str, Any]:
    """fsspec/ocifs options for ``auth``: config, signer and ``config_kwargs`` (client kwargs
    with the endpoint), listings cache off. See :meth:`OCIAuth.storage_options`."""
    return resolve_auth(auth).storage_options()
