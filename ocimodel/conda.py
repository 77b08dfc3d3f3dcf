"""Resolve a conda environment (service-pack slug or ``oci://`` pack path) to runtime.yaml facts.

A slug is looked up in the service pack index ``oci://<bucket>@<namespace>/service_pack/index.json``
(bucket ``service-conda-packs``, namespace ``id19sfcrra6z`` unless ``CONDA_BUCKET_NAME`` /
``CONDA_BUCKET_NS`` say otherwise; ``OCIMODEL_CONDA_INDEX_URI`` points at another index file).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ocimodel.errors import CondaEnvError
from ocimodel.files import is_oci_uri
from ocimodel.layout import CONDA_DEFAULT_BUCKET, CONDA_DEFAULT_NAMESPACE
from ocimodel.oci.storage import open_uri

if TYPE_CHECKING:
    from ocimodel.oci.auth import AuthLike
INDEX_OBJECT = "service_pack/index.json"
ENV_NAMESPACE = "CONDA_BUCKET_NS"
ENV_BUCKET = "CONDA_BUCKET_NAME"
ENV_INDEX_URI = "OCIMODEL_CONDA_INDEX_URI"

TYPE_SERVICE = "data_science"
TYPE_PUBLISHED = "published"
ENV_TYPES = (TYPE_SERVICE, TYPE_PUBLISHED)

PYTHON_VERSION_RE = re.compile(r"^3\.\d{1,2}(\.\d{1,3})?$")

_PACK_LIST_KEYS = ("packs", "service_packs", "conda_packs", "data")
_PATH_KEYS = ("pack_path", "path", "uri", "pack_uri")
_PYTHON_KEYS = ("python", "python_version", "pythonVersion")


@dataclass(frozen=True)
class CondaEnvInfo:
    """Where a conda pack lives, its slug, its python version and its runtime.yaml type."""

    slug: str
    path: str
    python_version: str
    type: str


def normalize_python_version(value: Any) -> str:
    """'3.11', 'python3.11' or '3.11.4' -> a version string; '' for None/empty."""
    if value is None:
        return ""
    text = str(value).strip()
    if text.lower().startswith("python"):
        text = text[len("python") :].strip()
    return text


def index_uri(namespace: str | None = None, bucketname: str | None = None) -> str:
    """The service pack index URI for a namespace/bucket (arguments, env, then defaults).

    The reference's defaults (``id19sfcrra6z``, ``service-conda-packs``) mean "not chosen":
    ``$CONDA_BUCKET_NS`` / ``$CONDA_BUCKET_NAME`` win over them, as the reference documents.
    """
    namespace = None if namespace == CONDA_DEFAULT_NAMESPACE else namespace
    bucketname = None if bucketname == CONDA_DEFAULT_BUCKET else bucketname
    override = os.environ.get(ENV_INDEX_URI)
    if override and namespace is None and bucketname is None:
        return override
    ns = namespace or os.environ.get(ENV_NAMESPACE) or CONDA_DEFAULT_NAMESPACE
    bucket = bucketname or os.environ.get(ENV_BUCKET) or CONDA_DEFAULT_BUCKET
    return f"oci://{bucket}@{ns}/{INDEX_OBJECT}"


def _bucket_root(uri: str) -> str:
    """``oci://bucket@ns/`` of an oci:// URI, to anchor relative pack paths."""
    if not is_oci_uri(uri):
        return ""
    return "oci://" + uri[len("oci://") :].split("/", 1)[0] + "/"


def _pack_entries(doc: Any) -> list[Mapping[str, Any]]:
    """The pack entries of an index document: a list, or a dict holding list(s) of packs."""
    if isinstance(doc, list):
        return [e for e in doc if isinstance(e, Mapping)]
    if isinstance(doc, Mapping):
        for key in _PACK_LIST_KEYS:
            if isinstance(doc.get(key), list):
                return _pack_entries(doc[key])
        entries: list[Mapping[str, Any]] = []
        for key, value in doc.items():
            if isinstance(value, list):
                entries.extend(_pack_entries(value))
            elif isinstance(value, Mapping) and any(k in value for k in _PATH_KEYS):
                entries.append({"slug": key, **value})
        return entries
    return []


def parse_service_pack_index(doc: Any, source_uri: str = "") -> dict[str, CondaEnvInfo]:
    """Maps slug -> CondaEnvInfo for every usable entry of a parsed index document."""
    root = _bucket_root(source_uri)
    packs: dict[str, CondaEnvInfo] = {}
    for entry in _pack_entries(doc):
        slug = str(entry.get("slug") or "").strip()
        path = next((str(entry[k]) for k in _PATH_KEYS if entry.get(k)), "")
        python = next((entry[k] for k in _PYTHON_KEYS if entry.get(k) is not None), None)
        if not slug or not path:
            continue
        if not is_oci_uri(path) and root:
            path = root + path.lstrip("/")
        packs[slug] = CondaEnvInfo(
            slug=slug,
            path=path,
            python_version=normalize_python_version(python),
            type=TYPE_SERVICE,
        )
    return packs


def load_service_packs(
    namespace: str | None = None,
    bucketname: str | None = None,
    auth: AuthLike = None,
) -> dict[str, CondaEnvInfo]:
    """Reads the service pack index (through fsspec/ocifs) into slug -> CondaEnvInfo."""
    uri = index_uri(namespace, bucketname)
    try:
        with open_uri(uri, "rb", auth) as fh:
            doc = json.load(fh)
    except json.JSONDecodeError as exc:
        raise CondaEnvError(
            f"The service pack index {uri} is not valid JSON ({exc.msg}). Pass a full oci:// "
            "pack path with inference_python_version instead, or ignore_conda_error=True."
        ) from None
    except Exception as exc:
        raise CondaEnvError(
            f"The service pack index {uri} could not be read ({type(exc).__name__}: {exc}). "
            "Check namespace/bucketname (or $CONDA_BUCKET_NS/$CONDA_BUCKET_NAME) and auth, or "
            "pass a full oci:// pack path with inference_python_version, or "
            "ignore_conda_error=True."
        ) from None
    return parse_service_pack_index(doc, uri)


def slug_from_path(path: str) -> str:
    """The last segment of a pack path, which is the slug by OCI's pack layout."""
    return path.rstrip("/").rsplit("/", 1)[-1]


def resolve_conda_env(
    slug_or_uri: str,
    *,
    namespace: str | None = None,
    bucketname: str | None = None,
    auth: AuthLike = None,
    python_version: str | None = None,
    packs: Mapping[str, CondaEnvInfo] | None = None,
) -> CondaEnvInfo:
    """Resolves a slug through the service pack index, or takes an oci:// path as published.

    ``python_version`` (when given) wins over the index; ``packs`` reuses an index already read.
    Raises CondaEnvError for an unknown slug or an unreadable index.
    """
    value = (slug_or_uri or "").strip()
    given_python = normalize_python_version(python_version)
    if not value:
        raise CondaEnvError(
            "No conda environment was given. Pass a service pack slug or a full oci:// "
            "pack path, or ignore_conda_error=True for a container runtime."
        )
    if is_oci_uri(value):
        return CondaEnvInfo(
            slug=slug_from_path(value),
            path=value,
            python_version=given_python,
            type=TYPE_PUBLISHED,
        )
    if "/" in value or "://" in value:
        raise CondaEnvError(
            f"Conda environment {value!r} is neither a service pack slug nor an oci:// path. "
            "Pass a slug like 'generalml_p311_cpu_x86_64_v1' or "
            "'oci://bucket@namespace/path/to/pack'."
        )
    if packs is None:
        packs = load_service_packs(namespace, bucketname, auth)
    info = packs.get(value)
    if info is None:
        known = ", ".join(sorted(packs)[:10]) or "none"
        where = index_uri(namespace, bucketname)
        raise CondaEnvError(
            f"Conda slug {value!r} is not in the service pack index {where} "
            f"(known slugs include: {known}). Use a listed slug, or pass a full oci:// pack "
            "path with inference_python_version, or ignore_conda_error=True."
        )
    if given_python:
        info = CondaEnvInfo(info.slug, info.path, given_python, info.type)
    return info
