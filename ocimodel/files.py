"""File helpers every stage shares: atomic and converging writes, hashing, temporary files,
symlink refusal and the one answer to "is this location remote?".

A leaf module: it imports nothing of ocimodel but its typed errors, so any stage may use it.
Writers go through a temporary file and a rename, so a reader (or a crash) never sees half a
file; a converging write leaves a file that already holds the bytes untouched, so re-running a
step converges.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
import uuid
from collections.abc import Callable
from typing import Any

from ocimodel.errors import (
    ArtifactFileExistsError,
    ArtifactPathIsFolderError,
    PrepareError,
    UnsafeArchiveError,
)

CHUNK_SIZE = 8 * 1024 * 1024
"""Read and copy chunk size for large files (8 MiB)."""

OCI_SCHEME = "oci://"
FILE_SCHEME = "file://"


# --- locations --------------------------------------------------------------------------------


def is_oci_uri(location: object) -> bool:
    """True for an ``oci://bucket@namespace/key`` Object Storage URI."""
    return isinstance(location, str) and location.startswith(OCI_SCHEME)


def is_remote(location: object) -> bool:
    """True for a URI that fsspec must open (``oci://``, ``s3://``...); False for a local path
    or a ``file://`` URI."""
    if not isinstance(location, str):
        return False
    scheme, sep, _ = location.partition("://")
    return bool(sep) and bool(scheme) and "/" not in scheme and scheme != "file"


_OCI_URI = re.compile(r"^oci://(?P<bucket>[^/@\s]+)@(?P<namespace>[^/\s]+)(?:/(?P<path>.*))?$")


def split_oci_uri(location: object) -> tuple[str, str, str] | None:
    """``(bucket, namespace, path)`` of ``oci://bucket@namespace/path`` (path ``""`` for the
    bucket itself), or None when ``location`` is not such a URI."""
    match = _OCI_URI.match(location) if isinstance(location, str) else None
    if match is None:
        return None
    return match["bucket"], match["namespace"], match["path"] or ""


def local_path(location: str | os.PathLike) -> str:
    """A local filesystem path for a plain path or a ``file://`` URI, ``~`` expanded."""
    path = os.fspath(location)
    if path.startswith(FILE_SCHEME):
        path = path[len(FILE_SCHEME) :]
    return os.path.expanduser(path)


def ensure_artifact_dir(artifact_dir: str | os.PathLike | None) -> str:
    """Creates the artifact folder if needed and returns its absolute path."""
    if artifact_dir is None or not os.fspath(artifact_dir):
        raise PrepareError(
            "artifact_dir is not set; pass artifact_dir='path/to/folder' (it is created)."
        )
    path = os.path.abspath(os.path.expanduser(os.fspath(artifact_dir)))
    if os.path.exists(path) and not os.path.isdir(path):
        raise PrepareError(f"artifact_dir {path!r} is a file; pass a folder path.")
    os.makedirs(path, exist_ok=True)
    return path


# --- checks -----------------------------------------------------------------------------------


def check_not_folder(path: str) -> None:
    """Raises ArtifactPathIsFolderError when ``path`` is a folder (a link to one is replaced)."""
    if os.path.isdir(path) and not os.path.islink(path):
        raise ArtifactPathIsFolderError(path)


def refuse_symlink(path: str) -> None:
    """Raises UnsafeArchiveError when ``path`` is a symbolic link.

    Artifact folders are copied and zipped without following links: a link could pull in a
    file from outside the folder (``/etc/passwd``), and a linked folder would be dropped.
    """
    if not os.path.islink(path):
        return
    raise UnsafeArchiveError(
        f"{path!r} is a symbolic link to {os.readlink(path)!r}; artifact folders may not hold "
        "links. Replace it with a real file (or folder) holding the content, or remove it."
    )


def holds(path: str, data: bytes) -> bool:
    """True when ``path`` is a file holding exactly ``data``."""
    if not os.path.isfile(path) or os.path.getsize(path) != len(data):
        return False
    with open(path, "rb") as fh:
        return fh.read() == data


def same_bytes(path_a: str, path_b: str, chunk_size: int = CHUNK_SIZE) -> bool:
    """True when both files hold exactly the same bytes (compared in chunks)."""
    if os.path.getsize(path_a) != os.path.getsize(path_b):
        return False
    with open(path_a, "rb") as fa, open(path_b, "rb") as fb:
        while True:
            a, b = fa.read(chunk_size), fb.read(chunk_size)
            if a != b:
                return False
            if not a:
                return True


def sha256_file(path: str | os.PathLike, chunk_size: int = CHUNK_SIZE) -> str:
    """sha256 hex digest of a file, read in chunks."""
    sha = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(chunk_size):
            sha.update(chunk)
    return sha.hexdigest()


# --- temporary files --------------------------------------------------------------------------


_TEMP_FILE_FLAGS = (
    os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
)


def _create_unique(folder: str, prefix: str, suffix: str, create: Callable[[str], Any]) -> Any:
    for _ in range(tempfile.TMP_MAX):
        path = os.path.join(folder, f"{prefix}{uuid.uuid4().hex}{suffix}")
        try:
            return create(path)
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temporary name in {folder!r}; remove its {prefix}* entries")


def create_temp_file(folder: str, prefix: str = ".tmp-", suffix: str = "") -> tuple[int, str]:
    """Create a new, uniquely named file in ``folder``; return its open descriptor and path.

    Unlike ``tempfile.mkstemp`` (always 0600) the file gets the mode ``open()`` would give it,
    0o666 less the umask, so that files renamed into place look like any other written file.
    """
    return _create_unique(
        folder, prefix, suffix, lambda path: (os.open(path, _TEMP_FILE_FLAGS, 0o666), path)
    )


def create_temp_dir(folder: str, prefix: str = ".tmp-") -> str:
    """Create a new, uniquely named folder in ``folder`` with the umask-derived mode; its path.

    Unlike ``tempfile.mkdtemp`` (always 0700), for folders that are renamed into place.
    """

    def make(path: str) -> str:
        os.mkdir(path, 0o777)
        return path

    return _create_unique(folder, prefix, "", make)


# --- writes -----------------------------------------------------------------------------------


def write_bytes_atomic(path: str, data: bytes) -> None:
    """Writes bytes through a temporary file and a rename, so readers never see half a file."""
    check_not_folder(path)
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = create_temp_file(folder, suffix="-" + os.path.basename(path))
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        try:
            os.replace(tmp, path)
        except IsADirectoryError:
            raise ArtifactPathIsFolderError(path) from None
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_text_atomic(path: str, text: str) -> None:
    """Writes UTF-8 text atomically (see :func:`write_bytes_atomic`)."""
    write_bytes_atomic(path, text.encode("utf-8"))


def write_converging(path: str, data: bytes, force_overwrite: bool = False) -> bool:
    """Writes ``data`` atomically unless ``path`` already holds exactly it; True if written.

    A different existing file is replaced only with ``force_overwrite``; otherwise
    ArtifactFileExistsError is raised and the file is left as it was.
    """
    check_not_folder(path)
    if holds(path, data):
        return False
    if os.path.isfile(path) and not force_overwrite:
        raise ArtifactFileExistsError(path)
    write_bytes_atomic(path, data)
    return True
