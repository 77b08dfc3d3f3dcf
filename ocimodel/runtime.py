"""runtime.yaml of an OCI Data Science model artifact (format ``MODEL_ARTIFACT_VERSION: '3.0'``).

The schema is data (:data:`RUNTIME_SCHEMA` plus :data:`CROSS_FIELD_RULES`); validation collects
every problem before raising :class:`ocimodel.errors.RuntimeYamlError`.
"""

from __future__ import annotations

import os
import re
import tempfile
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

import yaml

from ocimodel.conda import ENV_TYPES, PYTHON_VERSION_RE
from ocimodel.errors import OcimodelError, RuntimeYamlError

RUNTIME_YAML = "runtime.yaml"
MODEL_ARTIFACT_VERSION = "3.0"
OCI_PATH_RE = re.compile(r"^oci://[^/@\s]+@[^/\s]+/.+$")


class ArtifactFileExistsError(FileExistsError, OcimodelError):
    """A file of the artifact exists and force_overwrite=False; nothing was replaced."""

    def __init__(self, paths: list[str] | str):
        self.paths = [paths] if isinstance(paths, str) else list(paths)
        shown = ", ".join(self.paths[:10]) + (" ..." if len(self.paths) > 10 else "")
        super().__init__(
            f"These artifact files already exist: {shown}. Pass force_overwrite=True to replace "
            "them, or use another artifact_dir."
        )


class ArtifactPathIsFolderError(ArtifactFileExistsError):
    """A folder sits where an artifact file must go; force_overwrite never removes folders."""

    def __init__(self, path: str):
        self.paths = [path]
        FileExistsError.__init__(
            self,
            f"{path!r} is a folder, but the artifact needs a file there. Remove that folder "
            "(or move it elsewhere), then run again.",
        )


def check_not_folder(path: str) -> None:
    """Raises ArtifactPathIsFolderError when ``path`` is a folder (a link to one is replaced)."""
    if os.path.isdir(path) and not os.path.islink(path):
        raise ArtifactPathIsFolderError(path)


@dataclass(frozen=True)
class Field:
    """One leaf of the runtime.yaml schema."""

    required: bool = True
    allowed: tuple[str, ...] | None = None
    pattern: re.Pattern[str] | None = None
    hint: str = ""


_ENV_TYPE = Field(allowed=(*ENV_TYPES, ""), hint="data_science for a slug, published for a path")
_ENV_PATH = Field(pattern=OCI_PATH_RE, hint="like 'oci://bucket@namespace/path/to/pack'")
_PYTHON = Field(pattern=PYTHON_VERSION_RE, hint="a quoted string like '3.11'")
_OPTIONAL = Field(required=False)

RUNTIME_SCHEMA: dict[str, Any] = {
    "MODEL_ARTIFACT_VERSION": Field(allowed=(MODEL_ARTIFACT_VERSION,), hint="quote it: '3.0'"),
    "MODEL_DEPLOYMENT": {
        "INFERENCE_CONDA_ENV": {
            "INFERENCE_ENV_PATH": _ENV_PATH,
            "INFERENCE_ENV_SLUG": Field(),
            "INFERENCE_ENV_TYPE": _ENV_TYPE,
            "INFERENCE_PYTHON_VERSION": _PYTHON,
        }
    },
    "MODEL_PROVENANCE": {
        "PROJECT_OCID": _OPTIONAL,
        "TENANCY_OCID": _OPTIONAL,
        "TRAINING_CODE": {"ARTIFACT_DIRECTORY": _OPTIONAL},
        "TRAINING_COMPARTMENT_OCID": _OPTIONAL,
        "TRAINING_CONDA_ENV": {
            "TRAINING_ENV_PATH": Field(False, None, OCI_PATH_RE, _ENV_PATH.hint),
            "TRAINING_ENV_SLUG": _OPTIONAL,
            "TRAINING_ENV_TYPE": Field(False, _ENV_TYPE.allowed, None, _ENV_TYPE.hint),
            "TRAINING_PYTHON_VERSION": Field(False, None, PYTHON_VERSION_RE, _PYTHON.hint),
        },
        "TRAINING_REGION": _OPTIONAL,
        "TRAINING_RESOURCE_OCID": _OPTIONAL,
        "USER_OCID": _OPTIONAL,
        "VM_IMAGE_INTERNAL_ID": _OPTIONAL,
    },
}
OPTIONAL_SECTIONS = frozenset({"MODEL_PROVENANCE"})


def _get(doc: Mapping[str, Any], dotted: str) -> Any:
    """The value at a dotted key path, or None."""
    node: Any = doc
    for part in dotted.split("."):
        if not isinstance(node, Mapping):
            return None
        node = node.get(part)
    return node


def _env_rule(
    prefix: str, path_key: str, type_key: str, python_key: str, require_python: bool = True
) -> Callable:
    """A rule tying a conda env's path, type and (optionally) python version together."""

    def rule(doc: Mapping[str, Any]) -> list[str]:
        path, kind, python = (_get(doc, f"{prefix}.{k}") for k in (path_key, type_key, python_key))
        problems = []
        if require_python and isinstance(path, str) and path and not python:
            problems.append(
                f"{prefix}.{python_key} is empty but {prefix}.{path_key} names a conda pack; "
                "give the pack's python version, e.g. '3.11'."
            )
        if isinstance(path, str) and path and not kind:
            problems.append(
                f"{prefix}.{type_key} is empty but {prefix}.{path_key} is set; use "
                "'data_science' for a service pack or 'published' for your own pack."
            )
        return problems

    return rule


CROSS_FIELD_RULES: tuple[Callable[[Mapping[str, Any]], list[str]], ...] = (
    _env_rule(
        "MODEL_DEPLOYMENT.INFERENCE_CONDA_ENV",
        "INFERENCE_ENV_PATH",
        "INFERENCE_ENV_TYPE",
        "INFERENCE_PYTHON_VERSION",
    ),
    _env_rule(
        "MODEL_PROVENANCE.TRAINING_CONDA_ENV",
        "TRAINING_ENV_PATH",
        "TRAINING_ENV_TYPE",
        "TRAINING_PYTHON_VERSION",
        require_python=False,
    ),
)


def _check_leaf(key: str, spec: Field, value: Any, present: bool) -> list[str]:
    """Problems of one leaf value against its Field."""
    if not present or value is None:
        return [f"{key} is missing; add it ({spec.hint or 'a string'})."] if spec.required else []
    if not isinstance(value, str):
        return [
            f"{key} is {value!r} ({type(value).__name__}), not a string; quote it in YAML"
            + (f" ({spec.hint})." if spec.hint else ".")
        ]
    if value == "":
        return []
    if spec.allowed is not None and value not in spec.allowed:
        allowed = ", ".join(repr(a) for a in spec.allowed if a)
        return [f"{key} is {value!r}; allowed: {allowed}."]
    if spec.pattern is not None and not spec.pattern.match(value):
        return [f"{key} is {value!r}; expected {spec.hint}."]
    return []


def _has_required(schema: Mapping[str, Any]) -> bool:
    """True when a schema section holds at least one required leaf."""
    return any(v.required if isinstance(v, Field) else _has_required(v) for v in schema.values())


def _check_node(prefix: str, schema: Mapping[str, Any], node: Any) -> list[str]:
    """Problems of a mapping node against a schema mapping, recursively."""
    problems: list[str] = []
    for key, spec in schema.items():
        dotted = f"{prefix}.{key}" if prefix else key
        present = isinstance(node, Mapping) and key in node
        value = node.get(key) if isinstance(node, Mapping) else None
        if isinstance(spec, Field):
            problems.extend(_check_leaf(dotted, spec, value, present))
        elif not present or value is None:
            if (not prefix and key in OPTIONAL_SECTIONS) or not _has_required(spec):
                continue
            problems.append(f"{dotted} is missing; add the {dotted} section.")
        elif not isinstance(value, Mapping):
            problems.append(f"{dotted} must be a mapping, not {type(value).__name__}.")
        else:
            problems.extend(_check_node(dotted, spec, value))
    return problems


def validate_runtime_dict(doc: Any) -> list[str]:
    """Every problem of a parsed runtime.yaml document (empty list when valid)."""
    if not isinstance(doc, Mapping):
        return [f"the document must be a mapping of keys, not {type(doc).__name__}."]
    problems = _check_node("", RUNTIME_SCHEMA, doc)
    for rule in CROSS_FIELD_RULES:
        problems.extend(rule(doc))
    return problems


class _Section:
    """Dataclass mix-in: attribute ``name`` <-> YAML key ``NAME``, nested sections recurse."""

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in fields(self):  # type: ignore[arg-type]
            value = getattr(self, f.name)
            out[f.name.upper()] = value.to_dict() if isinstance(value, _Section) else value
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> Any:
        data = data or {}
        kwargs = {}
        for f in fields(cls):  # type: ignore[arg-type]
            raw = data.get(f.name.upper())
            sub = _SECTION_TYPES.get((cls.__name__, f.name))
            if sub is not None:
                kwargs[f.name] = sub.from_dict(raw if isinstance(raw, Mapping) else None)
            else:
                kwargs[f.name] = "" if raw is None else str(raw)
        return cls(**kwargs)


@dataclass
class InferenceCondaEnv(_Section):
    """MODEL_DEPLOYMENT.INFERENCE_CONDA_ENV."""

    inference_env_path: str = ""
    inference_env_slug: str = ""
    inference_env_type: str = ""
    inference_python_version: str = ""


@dataclass
class TrainingCondaEnv(_Section):
    """MODEL_PROVENANCE.TRAINING_CONDA_ENV."""

    training_env_path: str = ""
    training_env_slug: str = ""
    training_env_type: str = ""
    training_python_version: str = ""


@dataclass
class TrainingCode(_Section):
    """MODEL_PROVENANCE.TRAINING_CODE."""

    artifact_directory: str = ""


@dataclass
class ModelDeployment(_Section):
    """MODEL_DEPLOYMENT."""

    inference_conda_env: InferenceCondaEnv = field(default_factory=InferenceCondaEnv)


@dataclass
class ModelProvenance(_Section):
    """MODEL_PROVENANCE."""

    project_ocid: str = ""
    tenancy_ocid: str = ""
    training_code: TrainingCode = field(default_factory=TrainingCode)
    training_compartment_ocid: str = ""
    training_conda_env: TrainingCondaEnv = field(default_factory=TrainingCondaEnv)
    training_region: str = ""
    training_resource_ocid: str = ""
    user_ocid: str = ""
    vm_image_internal_id: str = ""


_SECTION_TYPES: dict[tuple[str, str], type[_Section]] = {
    ("RuntimeInfo", "model_deployment"): ModelDeployment,
    ("RuntimeInfo", "model_provenance"): ModelProvenance,
    ("ModelDeployment", "inference_conda_env"): InferenceCondaEnv,
    ("ModelProvenance", "training_code"): TrainingCode,
    ("ModelProvenance", "training_conda_env"): TrainingCondaEnv,
}


@dataclass
class RuntimeInfo(_Section):
    """The whole runtime.yaml; attribute names are the lower-cased YAML keys."""

    model_artifact_version: str = MODEL_ARTIFACT_VERSION
    model_deployment: ModelDeployment = field(default_factory=ModelDeployment)
    model_provenance: ModelProvenance = field(default_factory=ModelProvenance)

    def validate(self) -> None:
        """Raises RuntimeYamlError listing every problem of this runtime info."""
        problems = validate_runtime_dict(self.to_dict())
        if problems:
            raise RuntimeYamlError(problems)

    def to_yaml(self) -> str:
        """YAML text with keys in schema order and version-like strings quoted."""
        return yaml.safe_dump(self.to_dict(), sort_keys=False, default_flow_style=False)

    @classmethod
    def from_yaml(cls, text: str | None = None, uri: str | None = None) -> RuntimeInfo:
        """Parses and validates YAML text (or the file at ``uri``), reporting all problems."""
        if text is None:
            if uri is None:
                raise RuntimeYamlError(["neither YAML text nor a file path was given."])
            return read_runtime_yaml(uri)
        try:
            doc = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise RuntimeYamlError([f"not valid YAML: {exc}"], uri) from None
        problems = validate_runtime_dict(doc)
        if problems:
            raise RuntimeYamlError(problems, uri)
        return cls.from_dict(doc)

    @classmethod
    def load(cls, path: str) -> RuntimeInfo:
        """Reads and validates a runtime.yaml file."""
        return read_runtime_yaml(path)

    def save(self, path: str, force_overwrite: bool = True) -> str:
        """Validates, then writes atomically to ``path`` (a file or an artifact folder)."""
        if os.path.isdir(path):
            path = os.path.join(path, RUNTIME_YAML)
        if os.path.exists(path) and not force_overwrite:
            raise ArtifactFileExistsError(path)
        self.validate()
        write_text_atomic(path, self.to_yaml())
        return path


def read_runtime_yaml(path: str) -> RuntimeInfo:
    """Reads a runtime.yaml (file or artifact folder), validating it against the schema."""
    if os.path.isdir(path):
        path = os.path.join(path, RUNTIME_YAML)
    if not os.path.isfile(path):
        raise RuntimeYamlError([f"file not found; run prepare() to create {RUNTIME_YAML}."], path)
    with open(path, encoding="utf-8") as fh:
        text = fh.read()
    return RuntimeInfo.from_yaml(text=text, uri=path)


def write_converging(path: str, data: bytes, force_overwrite: bool = False) -> bool:
    """Writes ``data`` atomically unless ``path`` already holds exactly it; True if written.

    A different existing file is replaced only with ``force_overwrite``; otherwise
    ArtifactFileExistsError is raised and the file is left as it was.
    """
    check_not_folder(path)
    if os.path.isfile(path):
        if os.path.getsize(path) == len(data):
            with open(path, "rb") as fh:
                if fh.read() == data:
                    return False
        if not force_overwrite:
            raise ArtifactFileExistsError(path)
    write_bytes_atomic(path, data)
    return True


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
