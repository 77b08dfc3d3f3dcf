"""fsspec access to local paths, ``oci://bucket@namespace/key`` URIs (through ocifs) and any
other URI fsspec knows (``s3://``, ``gs://``...).

Everything streams in chunks; nothing reads a whole object into memory. The ocifs filesystem of
an auth is built once and cached by its :class:`~ocimodel.oci.auth.OCIAuth` (with no listings
cache, so ``exists``/``isdir``/``find`` always see the current bucket); ``auth=None`` means the
process default of :func:`~ocimodel.oci.auth.resolve_auth`.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from typing import IO, Any

import fsspec
import oci

from ocimodel.errors import OcimodelError
from ocimodel.files import (
    CHUNK_SIZE,
    OCI_SCHEME,
    is_oci_uri,
    is_remote,
    local_path,
    refuse_symlink,
    split_oci_uri,
)
from ocimodel.oci.auth import AuthLike, resolve_auth
from ocimodel.oci.endpoints import (
    _RESOLVED_HOSTS,  # noqa: F401 - the shared set, cleared by tests
    EndpointNotResolvableError,
    ensure_endpoint_resolves,
)

__all__ = [
    "CHUNK_SIZE",
    "OCI_SCHEME",
    "EndpointNotResolvableError",
    "copy_uri",
    "ensure_endpoint_resolves",
    "filesystem",
    "is_oci_uri",
    "iter_files",
    "open_uri",
    "uri_exists",
    "uri_isdir",
]


class BucketNotFoundError(ValueError, OcimodelError):
    """The bucket of an Object Storage URI does not exist (or is not visible to this auth)."""


def parse_bucket_uri(bucket_uri: str) -> tuple[str, str, str]:
    """``(bucket, namespace, prefix)`` of ``oci://bucket@namespace/prefix/``; the prefix is
    empty or ends with ``/``."""
    parts = split_oci_uri(bucket_uri)
    if parts is None:
        raise BucketNotFoundError(
            f"bucket_uri {bucket_uri!r} is not an Object Storage URI; pass "
            "'oci://<bucket>@<namespace>/<prefix>/'."
        )
    bucket, namespace, prefix = parts
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    return bucket, namespace, prefix


def require_bucket(uri: str, auth: AuthLike = None) -> None:
    """Raises BucketNotFoundError unless the bucket of ``uri`` exists."""
    bucket, namespace, _ = parse_bucket_uri(uri)
    client = resolve_auth(auth).client("object_storage")
    try:
        client.head_bucket(namespace, bucket)
    except oci.exceptions.ServiceError as exc:
        if exc.status != 404:
            raise
        raise BucketNotFoundError(
            f"Bucket {bucket!r} does not exist in namespace {namespace!r} (from {uri}); create "
            "it, or pass the bucket_uri of an existing bucket your credentials can write to."
        ) from None


def filesystem(uri: str, auth: AuthLike = None) -> fsspec.AbstractFileSystem:
    """The fsspec filesystem serving ``uri``: the cached ocifs one of ``auth`` for ``oci://``
    (its endpoint checked once, when it is built), fsspec's own for another remote scheme,
    else the local one."""
    if is_oci_uri(uri):
        return resolve_auth(auth).filesystem()
    if is_remote(uri):
        return fsspec.filesystem(uri.split("://", 1)[0])
    return fsspec.filesystem("file")


def open_uri(uri: str, mode: str = "rb", auth: AuthLike = None) -> IO[Any]:
    """Opens a local path or remote object as a file object (use it as a context manager)."""
    if is_remote(uri):
        return filesystem(uri, auth).open(uri, mode)
    return open(local_path(uri), mode)


def uri_exists(uri: str, auth: AuthLike = None) -> bool:
    """True when the local path or remote object (or prefix) exists."""
    if is_remote(uri):
        return bool(filesystem(uri, auth).exists(uri))
    return os.path.exists(local_path(uri))


def uri_isdir(uri: str, auth: AuthLike = None) -> bool:
    """True when the local path is a folder or the remote URI is a prefix holding objects."""
    if is_remote(uri):
        return bool(filesystem(uri, auth).isdir(uri))
    return os.path.isdir(local_path(uri))


def copy_uri(src: str, dst: str, auth: AuthLike = None) -> None:
    """Streams one file/object from ``src`` to ``dst``; either side may be local or remote."""
    if not is_remote(dst):
        parent = os.path.dirname(os.path.abspath(local_path(dst)))
        os.makedirs(parent, exist_ok=True)
    with open_uri(src, "rb", auth) as fin, open_uri(dst, "wb", auth) as fout:
        shutil.copyfileobj(fin, fout, CHUNK_SIZE)


def iter_files(uri: str, auth: AuthLike = None) -> Iterator[tuple[str, str]]:
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
    base = local_path(uri)
    for dirpath, dirnames, filenames in os.walk(base):
        dirnames.sort()
        for name in [*dirnames, *filenames]:
            refuse_symlink(os.path.join(dirpath, name))
    for dirpath, dirnames, filenames in os.walk(base):
        dirnames.sort()
        for name in sorted(filenames):
            full = os.path.join(dirpath, name)
            yield os.path.relpath(full, base).replace(os.sep, "/"), full
