"""Where an artifact comes from: a folder, .zip or .tar(.gz), local or ``oci://``, staged and
checked before anything lands in the artifact folder; and the structure rules of the reference.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from typing import TYPE_CHECKING

from ocimodel.artifact.archive import ArchiveFormatError, archive_kind, member_parts, safe_extract
from ocimodel.artifact.manifest import read_manifest, verify_manifest
from ocimodel.errors import (
    AritfactFolderStructureError,
    ArtifactFileExistsError,
    ArtifactNestedFolderError,
    ArtifactRequiredFilesError,
    ArtifactSourceNotFoundError,
    OcimodelError,
)
from ocimodel.files import is_oci_uri, local_path, same_bytes
from ocimodel.layout import (
    MANIFEST_NAME,
    METADATA_FILE,
    MODEL_FILE_SUFFIXES,
    REQUIRED_FILES,
    SERIALIZER_FILES,
)
from ocimodel.metadata.enums import MetadataCustomKeys
from ocimodel.oci.storage import copy_uri, iter_files, uri_exists, uri_isdir
from ocimodel.runtime import read_runtime_yaml

if TYPE_CHECKING:
    from ocimodel.oci.auth import AuthLike


def place_artifact(
    uri: str,
    artifact_dir: str,
    model_file_name: str | None = None,
    force_overwrite: bool = False,
    auth: AuthLike = None,
    *,
    verify: bool = False,
) -> str:
    """Puts the artifact at ``uri`` into ``artifact_dir`` and returns that folder's path.

    The source is staged next to the target and checked (structure, runtime.yaml and, with
    ``verify``, the sha256 manifest when it has one) first. A file the target already holds
    byte for byte is left untouched (so placing the same artifact again converges); other
    existing files are replaced only with ``force_overwrite``. ``uri`` naming ``artifact_dir``
    itself only checks it.
    """
    target = os.path.abspath(os.path.expanduser(os.fspath(artifact_dir)))
    if not is_oci_uri(uri):
        uri = local_path(uri)
    if not is_oci_uri(uri) and os.path.abspath(uri) == target:
        if not os.path.isdir(target):
            raise ArtifactSourceNotFoundError(
                f"uri and artifact_dir are both {target!r}, which does not exist; pass an "
                "existing artifact folder or archive as uri."
            )
        check_structure(target, model_file_name)
        return target
    if not uri_exists(uri, auth):
        raise ArtifactSourceNotFoundError(
            f"Artifact source {uri!r} does not exist; check the path (and auth for oci://)."
        )
    parent = os.path.dirname(target)
    os.makedirs(parent, exist_ok=True)
    staging_root = tempfile.mkdtemp(dir=parent, prefix=".ocimodel-stage-")
    try:
        staging = os.path.join(staging_root, "artifact")
        _materialize(uri, staging, staging_root, auth)
        check_structure(staging, model_file_name)
        read_runtime_yaml(staging)
        if verify:
            verify_manifest(staging)
        incoming = [rel for rel, _ in iter_files(staging)]
        changed = [rel for rel in incoming if not _holds_same(target, staging, rel)]
        conflicts = [rel for rel in changed if os.path.lexists(os.path.join(target, rel))]
        if conflicts and not force_overwrite:
            raise ArtifactFileExistsError([os.path.join(target, c) for c in conflicts])
        os.makedirs(target, exist_ok=True)
        for rel in changed:
            dest = os.path.join(target, *rel.split("/"))
            os.makedirs(os.path.dirname(dest), exist_ok=True)
            os.replace(os.path.join(staging, *rel.split("/")), dest)
        stale = os.path.join(target, MANIFEST_NAME)
        if MANIFEST_NAME not in incoming and os.path.exists(stale):
            os.unlink(stale)
    finally:
        shutil.rmtree(staging_root, ignore_errors=True)
    return target


def _holds_same(target: str, staging: str, rel: str) -> bool:
    """Whether ``target`` already has the staged file ``rel``, byte for byte: it is left
    untouched (its modification time is part of a save's identity), and needs no overwrite."""
    dest = os.path.join(target, *rel.split("/"))
    return os.path.isfile(dest) and same_bytes(os.path.join(staging, *rel.split("/")), dest)


def _materialize(uri: str, staging: str, scratch: str, auth: AuthLike) -> None:
    """Puts the source's files into the new folder ``staging`` (archives extracted safely)."""
    if archive_kind(uri):
        local = uri
        if is_oci_uri(uri):
            local = os.path.join(scratch, "source-" + uri.rstrip("/").rsplit("/", 1)[-1])
            copy_uri(uri, local, auth)
        safe_extract(local_path(local), staging)
        return
    if not uri_isdir(uri, auth):
        raise ArchiveFormatError(
            f"{uri!r} is neither a folder nor a .zip/.tar/.tar.gz archive; pass one of those."
        )
    os.makedirs(staging)
    for rel, full in iter_files(uri, auth):
        parts = member_parts(rel, uri)
        copy_uri(full, os.path.join(staging, *parts), auth)


def _visible(names: list[str]) -> list[str]:
    return [n for n in names if not n.startswith(".") and n != "__MACOSX"]


def check_structure(folder: str, model_file_name: str | None = None) -> None:
    """Raises the nested-folder / folder-structure / required-files errors of the reference."""
    required = [*REQUIRED_FILES, *([model_file_name] if model_file_name else [])]
    missing = [r for r in required if not os.path.isfile(os.path.join(folder, r))]
    if not missing:
        return
    entries = _visible(os.listdir(folder)) if os.path.isdir(folder) else []
    dirs = [e for e in entries if os.path.isdir(os.path.join(folder, e))]
    files = [e for e in entries if not os.path.isdir(os.path.join(folder, e))]
    if len(dirs) == 1 and not files:
        raise ArtifactNestedFolderError(dirs[0])
    for dirpath, _subdirs, names in os.walk(folder):
        if dirpath != folder and any(m in names for m in missing):
            raise AritfactFolderStructureError(required)
    raise ArtifactRequiredFilesError(missing)


def guess_model_file(folder: str) -> str | None:
    """The model file: the one prepare recorded (ModelFileName in ocimodel-metadata.json),
    else the one top-level model-like file, else the manifest's single entry when that file
    exists."""
    metadata = os.path.join(folder, METADATA_FILE)
    if os.path.isfile(metadata):
        with open(metadata, "rb") as fh:
            recorded = recorded_model_file(fh.read())
        if recorded and os.path.isfile(os.path.join(folder, recorded)):
            return recorded
    candidates = [
        n
        for n in sorted(os.listdir(folder))
        if n.lower().endswith(MODEL_FILE_SUFFIXES)
        and n not in SERIALIZER_FILES
        and os.path.isfile(os.path.join(folder, n))
    ]
    if len(candidates) == 1:
        return candidates[0]
    try:
        doc = read_manifest(folder)
    except OcimodelError:
        doc = None
    if doc and len(doc["files"]) == 1:
        name = next(iter(doc["files"]))
        if os.path.isfile(os.path.join(folder, *name.split("/"))):
            return name
    return None


def recorded_model_file(metadata_bytes: bytes | None) -> str | None:
    """The ModelFileName custom item of an ``ocimodel-metadata.json`` content, if any."""
    if not metadata_bytes:
        return None
    try:
        items = json.loads(metadata_bytes.decode("utf-8"))["metadata_custom"]["metadata"]
    except (ValueError, KeyError, TypeError):
        return None
    for item in items if isinstance(items, list) else []:
        if isinstance(item, dict) and item.get("key") == MetadataCustomKeys.MODEL_FILE_NAME:
            value = item.get("value")
            if isinstance(value, str) and value and os.path.basename(value) == value:
                return value
    return None
