"""fsspec access to local paths and ``oci://bucket@namespace/key`` URIs (through ocifs).

Everything streams in chunks; nothing reads a whole object into memory.
"""

from __future__ import annotations

import os
import shutil
import socket
from collections.abc import Iterator, Mapping
from typing import IO, Any
from urllib.parse import urlsplit

import fsspec

from ocimodel.errors import OcimodelError
from ocimodel.oci.auth import storage_options

OCI_SCHEME = "oci://"
CHUNK_SIZE = 8 * 1024 * 1024


def is_oci_uri(s: object) -> bool:
    """True for an ``oci://`` object storage URI."""
    return isinstance(s, str) and s.startswith(OCI_SCHEME)


class EndpointNotResolvableError(OcimodelError):
    """The Object Storage endpoint's host name does not resolve (no network, or a typo)."""


_RESOLVED_HOSTS: set[str] = set()
"""Hosts that resolved once; failures are not remembered, so a passing DNS outage heals."""
_RESOLVED_HOSTS_LIMIT = 256


def _resolves(host: str) -> bool:
    if host in _RESOLVED_HOSTS:
        return True
    try:
        socket.getaddrinfo(host, None)
    except (socket.gaierror, UnicodeError):
        return False
    if len(_RESOLVED_HOSTS) >= _RESOLVED_HOSTS_LIMIT:
        _RESOLVED_HOSTS.clear()
    _RESOLVED_HOSTS.add(host)
    return True


def ensure_endpoint_resolves(endpoint: str) -> None:
    """Fails at once when the endpoint's host does not resolve.

    The SDK retries name-resolution failures like any connection error, which costs about
    a minute and a half before the caller hears anything; a missing DNS name never heals
    within that time.
    """
    host = urlsplit(endpoint).hostname or ""
    if host and not _resolves(host):
        raise EndpointNotResolvableError(
            f"The Object Storage endpoint {endpoint} does not resolve (host {host!r}). Check "
            "the network, or, for the local service, set OCIMODEL_SERVICE_ENDPOINT to the "
            "endpoint `python -m ocimodel.local` printed (or pass auth with "
            "client_kwargs={'service_endpoint': ...})"
        )


def filesystem(uri: str, auth: Mapping[str, Any] | None = None) -> fsspec.AbstractFileSystem:
    """The fsspec filesystem serving ``uri``: ocifs for ``oci://``, else the local one."""
    if is_oci_uri(uri):
        fs = fsspec.filesystem("oci", skip_instance_cache=True, **storage_options(auth))
        client = getattr(fs, "oci_client", None)
        endpoint = getattr(getattr(client, "base_client", None), "endpoint", "")
        if endpoint:
            ensure_endpoint_resolves(endpoint)
        return fs
    return fsspec.filesystem("file")


def _local_path(uri: str) -> str:
    """A local filesystem path for a plain path or ``file://`` URI."""
    if uri.startswith("file://"):
        uri = uri[len("file://") :]
    return os.path.expanduser(uri)


def open_uri(uri: str, mode: str = "rb", auth: Mapping[str, Any] | None = None) -> IO[Any]:
    """Opens a local path or oci:// object as a file object (use it as a context manager)."""
    if is_oci_uri(uri):
        return filesystem(uri, auth).open(uri, mode)
    return open(_local_path(uri), mode)  # noqa: SIM115


def uri_exists(uri: str, auth: Mapping[str, Any] | None = None) -> bool:
    """True when the local path or oci:// object (or prefix) exists."""
    if is_oci_uri(uri):
        return bool(filesystem(uri, auth).exists(uri))
    return os.path.exists(_local_path(uri))


def uri_isdir(uri: str, auth: Mapping[str, Any] | None = None) -> bool:
    """True when the local path is a folder or the oci:// URI is a prefix holding objects."""
    if is_oci_uri(uri):
        return bool(filesystem(uri, auth).isdir(uri))
    return os.path.isdir(_local_path(uri))


def copy_uri(src: str, dst: str, auth: Mapping[str, Any] | None = None) -> None:
    """Streams one file/object from ``src`` to ``dst``; either side may be local or oci://."""
    if not is_oci_uri(dst):
        parent = os.path.dirname(os.path.abspath(_local_path(dst)))
        os.makedirs(parent, exist_ok=True)
    with open_uri(src, "rb", auth) as fin, open_uri(dst, "wb", auth) as fout:
        shutil.copyfileobj(fin, fout, CHUNK_SIZE)


def iter_files(uri: str, auth: Mapping[str, Any] | None = None) -> Iterator[tuple[str, str]]:
    """Yields ``(relative_name, full_uri)`` of every file under a local folder or oci:// prefix.

    A local folder holding a symbolic link raises UnsafeArchiveError before anything is yielded.
    """
    if is_oci_uri(uri):
        fs = filesystem(uri, auth)
        root = uri.rstrip("/")
        for full in sorted(fs.find(root)):
            full_uri = full if is_oci_uri(full) else OCI_SCHEME + full
            rel = full_uri[len(root) :].lstrip("/")
            if rel:
                yield rel, full_uri
        return
    from ocimodel.archive import refuse_symlink

    base = _local_path(uri)
    for dirpath, dirnames, filenames in os.walk(base):
        dirnames.sort()
        for name in [*dirnames, *filenames]:
            refuse_symlink(os.path.join(dirpath, name))
    for dirpath, dirnames, filenames in os.walk(base):
        dirnames.sort()
        for name in sorted(filenames):
            full = os.path.join(dirpath, name)
            yield os.path.relpath(full, base).replace(os.sep, "/"), full
