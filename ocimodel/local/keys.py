"""Identities of the local OCI service: API keys, the local config file, session/RP tokens.

The service keeps a registry of API public keys (``keyId = tenancy/user/fingerprint``) in its
SQLite store and signs session tokens (``ST$<jwt>``) with its own RSA key, so both the api-key and
the token flows of the ``oci`` SDK work against it offline. Everything lives in the data dir and is
reused on restart.
"""

from __future__ import annotations

import configparser
import hashlib
import io
import json
import os
import secrets
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

if TYPE_CHECKING:
    from .state import ServiceState

PROFILE = "DEFAULT"
CONFIG_NAME = "config"
KEY_NAME = "oci_api_key.pem"
PUBLIC_KEY_NAME = "oci_api_key_public.pem"
TOKEN_KEY_NAME = "token_signing_key.pem"
USERS_DIR = "users"
TOKEN_ISSUER = "ocimodel.local"
DEFAULT_TOKEN_TTL = 3600

_SCHEMA = """
CREATE TABLE IF NOT EXISTS api_keys (
    key_id TEXT PRIMARY KEY,
    tenancy TEXT NOT NULL,
    user TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    public_pem TEXT NOT NULL,
    created REAL NOT NULL
);
"""


class TokenError(Exception):
    """A session token that is malformed, forged or expired."""


def new_tenancy_id() -> str:
    """A fresh tenancy OCID (tenancies have no region part)."""
    return f"ocid1.tenancy.oc1..{secrets.token_hex(30)}"


def new_user_id() -> str:
    """A fresh user OCID."""
    return f"ocid1.user.oc1..{secrets.token_hex(30)}"


def generate_private_key() -> rsa.RSAPrivateKey:
    """A new 2048-bit RSA key, the size OCI API keys use."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def private_pem(key: rsa.RSAPrivateKey) -> bytes:
    """PKCS#8 PEM of a private key (unencrypted; files are written 0600)."""
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def public_pem(key: rsa.RSAPrivateKey | rsa.RSAPublicKey) -> str:
    """SubjectPublicKeyInfo PEM of a key's public half."""
    pub = key.public_key() if isinstance(key, rsa.RSAPrivateKey) else key
    return pub.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


def load_public_key(pem: str | bytes) -> rsa.RSAPublicKey:
    """Parse an RSA public key PEM, raising ValueError for anything else."""
    key = serialization.load_pem_public_key(pem.encode() if isinstance(pem, str) else pem)
    if not isinstance(key, rsa.RSAPublicKey):
        raise ValueError("only RSA public keys are supported")
    return key


def fingerprint_of(key: rsa.RSAPrivateKey | rsa.RSAPublicKey | str | bytes) -> str:
    """OCI's key fingerprint: colon-separated MD5 of the DER SubjectPublicKeyInfo."""
    if isinstance(key, (str, bytes)):
        key = load_public_key(key)
    pub = key.public_key() if isinstance(key, rsa.RSAPrivateKey) else key
    der = pub.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    digest = hashlib.md5(der).hexdigest()
    return ":".join(digest[i : i + 2] for i in range(0, 32, 2))


def _write_private(path: Path, data: bytes) -> None:
    """Write a secret file atomically with mode 0600."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_config(path: Path, values: dict[str, str], profile: str = PROFILE) -> None:
    """Write an OCI config file with one profile, atomically."""
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str  # type: ignore[assignment]
    parser[profile] = values
    text = io.StringIO()
    parser.write(text)
    _write_private(path, text.getvalue().encode())


def read_config(path: Path, profile: str = PROFILE) -> dict[str, str]:
    """The key/values of one profile of an OCI config file ({} if absent)."""
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str  # type: ignore[assignment]
    parser.read(path)
    if profile == PROFILE:
        return dict(parser.defaults())
    return dict(parser[profile]) if parser.has_section(profile) else {}


@dataclass(frozen=True)
class ApiKey:
    """A registered API signing key of one user of one tenancy."""

    tenancy: str
    user: str
    fingerprint: str
    public_key: rsa.RSAPublicKey

    @property
    def key_id(self) -> str:
        """The ``keyId`` the SDK sends for this key."""
        return f"{self.tenancy}/{self.user}/{self.fingerprint}"


@dataclass(frozen=True)
class Identity:
    """A user with a config file and private key on disk (what any OCI tool needs)."""

    tenancy: str
    user: str
    fingerprint: str
    key_file: Path
    config_path: Path
    region: str
    profile: str = PROFILE

    def config(self) -> dict[str, str]:
        """The config dict, as ``oci.config.from_file`` would return it."""
        return {
            "user": self.user,
            "tenancy": self.tenancy,
            "fingerprint": self.fingerprint,
            "key_file": str(self.key_file),
            "region": self.region,
        }


class KeyRegistry:
    """API public keys by keyId, persisted in the service's SQLite store and cached in memory."""

    def __init__(self, store):
        self.store = store
        self.store.migrate(_SCHEMA)
        self._cache: dict[str, ApiKey] = {}
        self._lock = threading.Lock()

    def add(self, tenancy: str, user: str, public_key_pem: str) -> ApiKey:
        """Register (or re-register) a user's public key; return it."""
        pub = load_public_key(public_key_pem)
        key = ApiKey(tenancy, user, fingerprint_of(pub), pub)
        self.store.execute(
            "INSERT OR REPLACE INTO api_keys(key_id,tenancy,user,fingerprint,public_pem,created) "
            "VALUES (?,?,?,?,?,?)",
            (key.key_id, tenancy, user, key.fingerprint, public_pem(pub), time.time()),
        )
        with self._lock:
            self._cache[key.key_id] = key
        return key

    def lookup(self, key_id: str) -> ApiKey | None:
        """The key registered under ``keyId``, or None."""
        key = self._cache.get(key_id)
        if key is not None:
            return key
        rows = self.store.execute(
            "SELECT tenancy, user, fingerprint, public_pem FROM api_keys WHERE key_id=?",
            (key_id,),
        )
        if not rows:
            return None
        tenancy, user, fingerprint, pem = rows[0]
        key = ApiKey(tenancy, user, fingerprint, load_public_key(pem))
        with self._lock:
            self._cache[key_id] = key
        return key

    def tenancies(self) -> set[str]:
        """Every tenancy with at least one registered key."""
        return {r[0] for r in self.store.execute("SELECT DISTINCT tenancy FROM api_keys")}


def _jwk_of(pub_pem: str) -> str:
    """The JWK JSON of an RSA public key, as embedded in OCI session tokens."""
    jwk = json.loads(RSAAlgorithm.to_jwk(load_public_key(pub_pem)))
    jwk["kid"] = "ocimodel.local"
    return json.dumps(jwk)


class TokenIssuer:
    """Mints and verifies session tokens (``ST$<jwt>``) signed by the service's own key."""

    def __init__(self, key_path: Path):
        if key_path.exists():
            key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
            assert isinstance(key, rsa.RSAPrivateKey)
        else:
            key = generate_private_key()
            _write_private(key_path, private_pem(key))
        self._key = key
        self._public = key.public_key()
        self._verified: dict[str, tuple[dict, rsa.RSAPublicKey]] = {}

    def _mint(self, claims: dict, public_key_pem: str, ttl: int) -> str:
        now = int(time.time())
        payload = {
            "iss": TOKEN_ISSUER,
            "iat": now,
            "exp": now + int(ttl),
            "jti": secrets.token_hex(16),
            "jwk": _jwk_of(public_key_pem),
            **claims,
        }
        return jwt.encode(payload, self._key, algorithm="RS256")

    def mint_session_token(
        self, tenancy: str, user: str, public_key_pem: str, ttl: int = DEFAULT_TOKEN_TTL
    ) -> str:
        """A user session token bound to the holder's public key (like ``oci session``)."""
        claims = {
            "sub": user,
            "tenant": tenancy,
            "ptype": "user",
            "sess_exp": int(time.time()) + int(ttl),
        }
        return self._mint(claims, public_key_pem, ttl)

    def mint_resource_principal_token(
        self,
        tenancy: str,
        public_key_pem: str,
        compartment: str | None = None,
        resource_id: str | None = None,
        resource_type: str = "datasciencenotebooksession",
        ttl: int = DEFAULT_TOKEN_TTL,
    ) -> str:
        """A resource-principal session token (RPST) with the claims the SDK's RP v2.2 reads."""
        claims = {
            "sub": resource_id or f"ocid1.{resource_type}.oc1..{secrets.token_hex(30)}",
            "tenant": tenancy,
            "ptype": "resource",
            "res_tenant": tenancy,
            "res_compartment": compartment or tenancy,
            "res_type": resource_type,
        }
        return self._mint(claims, public_key_pem, ttl)

    def verify(self, token: str) -> tuple[dict, rsa.RSAPublicKey]:
        """The claims of a token we issued and the public key it binds; TokenError otherwise."""
        hit = self._verified.get(token)
        if hit is not None:
            if hit[0]["exp"] < time.time():
                raise TokenError("the session token has expired")
            return hit
        try:
            claims = jwt.decode(
                token,
                self._public,
                algorithms=["RS256"],
                issuer=TOKEN_ISSUER,
                options={"require": ["exp", "iat", "jwk", "sub"]},
            )
            pub = RSAAlgorithm.from_jwk(claims["jwk"])
        except jwt.ExpiredSignatureError as exc:
            raise TokenError("the session token has expired") from exc
        except (jwt.PyJWTError, ValueError, KeyError, TypeError) as exc:
            raise TokenError(f"the session token is not valid: {exc}") from exc
        if not isinstance(pub, rsa.RSAPublicKey):
            raise TokenError("the session token does not bind an RSA public key")
        if len(self._verified) > 10_000:
            self._verified.clear()
        self._verified[token] = (claims, pub)
        return claims, pub


class KeyRing:
    """All key material of one service: the registry, the token issuer, the local identity."""

    def __init__(self, state: ServiceState):
        self.data_dir = Path(state.data_dir)
        self.region = state.region
        self.registry = KeyRegistry(state.store)
        self.tokens = TokenIssuer(self.data_dir / TOKEN_KEY_NAME)
        self.local = self._ensure_local_identity()

    def _ensure_local_identity(self) -> Identity:
        """Reuse the data dir's config and key, or create them for a new local tenancy/user."""
        config_path = self.data_dir / CONFIG_NAME
        key_path = self.data_dir / KEY_NAME
        values = read_config(config_path) if config_path.exists() else {}
        key = None
        if key_path.exists() and values.get("tenancy") and values.get("user"):
            loaded = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
            if isinstance(loaded, rsa.RSAPrivateKey):
                key = loaded
        if key is None:
            key = generate_private_key()
            _write_private(key_path, private_pem(key))
            (self.data_dir / PUBLIC_KEY_NAME).write_text(public_pem(key))
            values = {"tenancy": new_tenancy_id(), "user": new_user_id()}
        identity = Identity(
            tenancy=values["tenancy"],
            user=values["user"],
            fingerprint=fingerprint_of(key),
            key_file=key_path.resolve(),
            config_path=config_path.resolve(),
            region=values.get("region") or self.region,
        )
        if values != identity.config():
            write_config(config_path, identity.config())
        self.registry.add(identity.tenancy, identity.user, public_pem(key))
        return identity

    def add_user(
        self, tenancy: str | None = None, public_key_pem: str | None = None
    ) -> tuple[ApiKey, rsa.RSAPrivateKey | None]:
        """Register a new user (in a new tenancy unless given) with its public key.

        Without a public key one is generated and its private half returned for the caller.
        """
        private = None
        if public_key_pem is None:
            private = generate_private_key()
            public_key_pem = public_pem(private)
        key = self.registry.add(tenancy or new_tenancy_id(), new_user_id(), public_key_pem)
        return key, private


def write_identity(
    directory: Path, key: ApiKey, private: rsa.RSAPrivateKey, region: str
) -> Identity:
    """Write a config file and private key for a user under ``directory``; return it."""
    directory.mkdir(parents=True, exist_ok=True)
    key_file = (directory / KEY_NAME).resolve()
    _write_private(key_file, private_pem(private))
    identity = Identity(
        tenancy=key.tenancy,
        user=key.user,
        fingerprint=key.fingerprint,
        key_file=key_file,
        config_path=(directory / CONFIG_NAME).resolve(),
        region=region,
    )
    write_config(identity.config_path, identity.config())
    return identity


def keyring_of(state: ServiceState) -> KeyRing:
    """The service's key ring, created on first use (idempotent)."""
    ring = state.extras.get("keys")
    if ring is None:
        ring = state.extras["keys"] = KeyRing(state)
    return ring


def mint_session_token(
    state: ServiceState,
    public_key_pem: str,
    tenancy: str | None = None,
    user: str | None = None,
    ttl: int = DEFAULT_TOKEN_TTL,
) -> str:
    """A session token for ``user`` of ``tenancy`` (default: the local identity)."""
    ring = keyring_of(state)
    return ring.tokens.mint_session_token(
        tenancy or ring.local.tenancy, user or ring.local.user, public_key_pem, ttl
    )


def mint_resource_principal_token(
    state: ServiceState,
    public_key_pem: str,
    tenancy: str | None = None,
    compartment: str | None = None,
    resource_id: str | None = None,
    ttl: int = DEFAULT_TOKEN_TTL,
) -> str:
    """A resource-principal token for a resource in ``tenancy`` (default: the local one)."""
    ring = keyring_of(state)
    return ring.tokens.mint_resource_principal_token(
        tenancy or ring.local.tenancy, public_key_pem, compartment, resource_id, ttl=ttl
    )
