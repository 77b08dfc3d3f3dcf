"""Writing metadata JSON to a local path or an ``oci://`` URI without leaving partial files."""

from __future__ import annotations

import os

from ocimodel.files import is_remote, write_bytes_atomic
from ocimodel.metadata.errors import InvalidMetadataType


def resolve_json_path(file_path: str, default_name: str) -> str:
    """``file_path`` itself, or ``default_name`` inside it when it names a folder."""
    if not isinstance(file_path, (str, os.PathLike)) or not str(file_path):
        raise InvalidMetadataType(
            f"file_path must be a non-empty local path or oci:// URI, got {file_path!r}."
        )
    path = os.fspath(file_path)
    is_folder = path.endswith("/") or (not is_remote(path) and os.path.isdir(path))
    if is_folder:
        return path.rstrip("/") + "/" + default_name
    return path


def write_text(text: str, file_path: str, default_name: str, storage_options: dict | None = None):
    """Write ``text`` (UTF-8) to a local file atomically, or to a remote object through fsspec.

    Returns the path or URI written.
    """
    target = resolve_json_path(file_path, default_name)
    data = text.encode("utf-8")
    if is_remote(target):
        _write_remote(data, target, storage_options)
        return target
    target = os.path.abspath(os.path.expanduser(target))
    os.makedirs(os.path.dirname(target), exist_ok=True)
    write_bytes_atomic(target, data)
    return target


def _write_remote(data: bytes, uri: str, storage_options: dict | None) -> None:
    """Write bytes to a remote URI; fsspec (ocifs) commits the object only on a clean close."""
    if storage_options is not None:
        import fsspec

        with fsspec.open(uri, "wb", **storage_options) as fh:
            fh.write(data)
        return
    from ocimodel.oci.storage import open_uri

    with open_uri(uri, mode="wb") as fh:
        fh.write(data)
