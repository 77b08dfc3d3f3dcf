"""sha256 manifest ``ocimodel-manifest.json`` of artifact files.

Format: ``{"version": 1, "files": {"model.pkl": {"sha256": "<hex>", "size": N}}}``. Digests
already known (computed while the file was written) are used without re-reading the file.
Zipping an artifact (:func:`ocimodel.artifact.archive.make_zip`) writes the manifest into the
zip from the bytes it reads anyway, so preparing an artifact never hashes the model.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from typing import Any

from ocimodel.errors import OcimodelError
from ocimodel.files import sha256_file, write_text_atomic
from ocimodel.layout import MANIFEST_NAME

MANIFEST_VERSION = 1
_HEX64 = frozenset("0123456789abcdef")


class ManifestError(ValueError, OcimodelError):
    """Artifact files do not match ocimodel-manifest.json, or the manifest is unreadable."""


def _is_hex_digest(value: Any) -> bool:
    return isinstance(value, str) and len(value) == 64 and set(value) <= _HEX64


def manifest_document(entries: Mapping[str, tuple[str, int]]) -> dict[str, Any]:
    """The manifest document for ``{name: (sha256 hex, size)}``."""
    files = {
        name: {"sha256": entries[name][0], "size": entries[name][1]} for name in sorted(entries)
    }
    return {"version": MANIFEST_VERSION, "files": files}


def manifest_text(doc: Mapping[str, Any]) -> str:
    """The manifest document as the JSON text stored in the artifact."""
    return json.dumps(doc, indent=2) + "\n"


def build_manifest(
    artifact_dir: str,
    files: Iterable[str],
    known_digests: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The manifest document for ``files`` (posix names relative to ``artifact_dir``)."""
    known = dict(known_digests or {})
    entries: dict[str, tuple[str, int]] = {}
    for name in sorted(set(files)):
        path = os.path.join(artifact_dir, *name.split("/"))
        if not os.path.isfile(path):
            raise ManifestError(
                f"{name!r} is not a file in {artifact_dir!r}; list only files that exist."
            )
        digest = known.get(name)
        if digest is not None:
            if not _is_hex_digest(digest):
                raise ManifestError(
                    f"The known digest for {name!r} is {digest!r}, not a 64-character lowercase "
                    "sha256 hex string; pass the hexdigest() value."
                )
            size = os.path.getsize(path)
        else:
            digest, size = sha256_file(path), os.path.getsize(path)
        entries[name] = (digest, size)
    return manifest_document(entries)


def write_manifest(
    artifact_dir: str,
    files: Iterable[str] | None = None,
    known_digests: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Writes the manifest atomically; ``files`` default to the keys of ``known_digests``."""
    names = list(files) if files is not None else list(known_digests or {})
    if not names:
        raise ManifestError(
            "No files to put in the manifest; pass files=[...] or known_digests={name: sha256}."
        )
    doc = build_manifest(artifact_dir, names, known_digests)
    write_text_atomic(os.path.join(artifact_dir, MANIFEST_NAME), manifest_text(doc))
    return doc


def discard_stale_manifest(artifact_dir: str, replaced: Iterable[str]) -> bool:
    """Deletes the folder's manifest when it lists one of the ``replaced`` files; True if so.

    A file that was just rewritten no longer matches its recorded digest, and score.py
    would refuse to load it.
    """
    path = os.path.join(artifact_dir, MANIFEST_NAME)
    if not os.path.isfile(path):
        return False
    try:
        listed = set(read_manifest(artifact_dir)["files"])
    except ManifestError:
        listed = set(replaced)
    if listed.isdisjoint(replaced):
        return False
    os.unlink(path)
    return True


def read_manifest(artifact_dir: str) -> dict[str, Any] | None:
    """The parsed manifest, or None when the artifact has none."""
    path = os.path.join(artifact_dir, MANIFEST_NAME)
    if not os.path.isfile(path):
        return None
    try:
        with open(path, encoding="utf-8") as fh:
            doc = json.load(fh)
    except json.JSONDecodeError as exc:
        raise ManifestError(
            f"{path} is not valid JSON ({exc.msg}); delete it and run write_manifest() again."
        ) from None
    files = doc.get("files") if isinstance(doc, dict) else None
    if doc.get("version") != MANIFEST_VERSION or not isinstance(files, dict):
        raise ManifestError(
            f"{path} is not a version-{MANIFEST_VERSION} manifest with a 'files' mapping; "
            "delete it and run write_manifest() again."
        )
    return doc


def verify_manifest(artifact_dir: str, *, required: bool = False) -> list[str]:
    """Checks every listed file's size and sha256; returns the names checked.

    Raises ManifestError naming every mismatching or missing file; a missing manifest is an
    error only when ``required``.
    """
    doc = read_manifest(artifact_dir)
    if doc is None:
        if required:
            raise ManifestError(
                f"{artifact_dir!r} has no {MANIFEST_NAME}; run write_manifest() after prepare()."
            )
        return []
    problems = []
    for name, entry in sorted(doc["files"].items()):
        path = os.path.join(artifact_dir, *name.split("/"))
        expected = entry.get("sha256") if isinstance(entry, dict) else None
        if not os.path.isfile(path):
            problems.append(f"{name}: missing")
            continue
        size = os.path.getsize(path)
        if isinstance(entry, dict) and entry.get("size") not in (None, size):
            problems.append(f"{name}: size {size} != {entry['size']}")
            continue
        digest = sha256_file(path)
        if digest != expected:
            problems.append(f"{name}: sha256 {digest} != {expected}")
    if problems:
        raise ManifestError(
            f"Artifact {artifact_dir!r} does not match {MANIFEST_NAME}: "
            + "; ".join(problems)
            + ". Re-serialize the model (prepare with force_overwrite=True) or rewrite the "
            "manifest."
        )
    return sorted(doc["files"])
