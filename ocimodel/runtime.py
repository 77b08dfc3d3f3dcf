"""The runtime.yaml stage: its schema and rules, RuntimeInfo, and building it for an artifact.

runtime.yaml of an OCI Data Science model artifact (format ``MODEL_ARTIFACT_VERSION: '3.0'``).
The schema is data (:data:`RUNTIME_SCHEMA` plus :data:`CROSS_FIELD_RULES`); validation collects
every problem before raising :class:`ocimodel.errors.RuntimeYamlError`. Introspection checks an
artifact against the same rules. Conda environments resolve through :mod:`ocimodel.conda`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any

import yaml

from ocimodel import conda
from ocimodel.conda import ENV_TYPES, PYTHON_VERSION_RE, CondaEnvInfo
from ocimodel.errors import (
    ArtifactFileExistsError,
    ArtifactInputError,
    CondaEnvError,
    RuntimeYamlError,
)
from ocimodel.files import (
    ensure_artifact_dir,
    is_oci_uri,
    write_converging,
    write_text_atomic,
)
from ocimodel.layout import (
    CONDA_DEFAULT_BUCKET,
    CONDA_DEFAULT_NAMESPACE,
    DEFAULT_MODEL_IGNORE,
    MODEL_ARTIFACT_VERSION,
    MODEL_IGNORE,
    RUNTIME_YAML,
)

if TYPE_CHECKING:
    from ocimodel.oci.auth import AuthLike

OCI_PATH_RE = re.compile(r"^oci://[^/@\s]+@[^/\s]+/.+$")


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


SUPPORTED_PYTHON_VERSIONS = tuple(f"3.{minor}" for minor in range(7, 15))
"""Python versions (major.minor) a model deployment's conda runtime can run."""


def _field(dotted: str) -> Field:
    node: Any = RUNTIME_SCHEMA
    for part in dotted.split("."):
        node = node[part]
    if not isinstance(node, Field):
        raise KeyError(f"{dotted} is a section of runtime.yaml, not a value")
    return node


def field_problems(dotted: str, value: Any) -> list[str]:
    """Problems of one runtime.yaml value (``None`` when absent) against its schema field."""
    return _check_leaf(dotted, _field(dotted), value, value is not None)


def python_version_supported(value: Any) -> bool:
    """True for a valid INFERENCE_PYTHON_VERSION that a deployment supports (3.7 to 3.14)."""
    if not isinstance(value, str) or not PYTHON_VERSION_RE.match(value):
        return False
    return ".".join(value.split(".")[:2]) in SUPPORTED_PYTHON_VERSIONS


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


# --- building runtime.yaml for an artifact -----------------------------------------------------


PROVENANCE_ENV = {
    "PROJECT_OCID": "PROJECT_OCID",
    "TENANCY_OCID": "TENANCY_OCID",
    "USER_OCID": "USER_OCID",
    "TRAINING_COMPARTMENT_OCID": "NB_SESSION_COMPARTMENT_OCID",
    "TRAINING_RESOURCE_OCID": "NB_SESSION_OCID",
    "TRAINING_REGION": "NB_REGION",
    "VM_IMAGE_INTERNAL_ID": "VM_ID",
}
"""MODEL_PROVENANCE keys and the environment variables (of a notebook session) they come from."""


def _empty_env(slug: str = "", path: str = "", python: str = "") -> CondaEnvInfo:
    kind = conda.TYPE_PUBLISHED if is_oci_uri(path) else ""
    return CondaEnvInfo(slug=slug, path=path, python_version=python, type=kind)


def build_runtime_info(
    artifact_dir: str,
    inference_conda_env: str | None,
    *,
    inference_python_version: str | None = None,
    training_conda_env: str | None = None,
    training_python_version: str | None = None,
    namespace: str = CONDA_DEFAULT_NAMESPACE,
    bucketname: str = CONDA_DEFAULT_BUCKET,
    auth: AuthLike = None,
    ignore_conda_error: bool = False,
    provenance: Mapping[str, str] | None = None,
) -> RuntimeInfo:
    """The runtime.yaml content for an artifact folder; writes nothing.

    Slugs resolve through the service pack index; an ``oci://`` path is a published pack.
    ``provenance`` overrides MODEL_PROVENANCE keys (e.g. ``{"PROJECT_OCID": ...}``).
    Raises CondaEnvError when no inference python version is given or resolvable.
    """
    ignore = bool(ignore_conda_error)
    packs_cache: dict[str, Any] = {}

    def resolve(value: str | None, python: str | None) -> CondaEnvInfo:
        python = conda.normalize_python_version(python)
        if not value:
            if ignore:
                return _empty_env(python=python)
            raise CondaEnvError(
                "inference_conda_env is empty. Pass a service pack slug or a full "
                "oci://bucket@namespace/path of a published pack, or "
                "ignore_conda_error=True for a container runtime."
            )
        try:
            if not is_oci_uri(value) and "packs" not in packs_cache:
                packs_cache["packs"] = conda.load_service_packs(namespace, bucketname, auth)
            return conda.resolve_conda_env(
                value, python_version=python, packs=packs_cache.get("packs")
            )
        except CondaEnvError:
            if not ignore:
                raise
            if is_oci_uri(value):
                return _empty_env(conda.slug_from_path(value), value, python)
            return _empty_env(slug=value, python=python)

    inference = resolve(inference_conda_env, inference_python_version)
    if inference.path and not inference.python_version:
        raise CondaEnvError(
            f"No python version is known for inference conda env {inference.path!r}. Pass "
            "inference_python_version='3.11' (the pack's python), or a service pack slug "
            "whose python version the index lists."
        )
    if training_conda_env:
        training = resolve(training_conda_env, training_python_version)
    else:
        training = CondaEnvInfo(
            inference.slug,
            inference.path,
            conda.normalize_python_version(training_python_version) or inference.python_version,
            inference.type,
        )
    prov = _provenance_values(os.path.abspath(os.fspath(artifact_dir)), provenance)
    return RuntimeInfo(
        model_deployment=ModelDeployment(
            InferenceCondaEnv(
                inference.path, inference.slug, inference.type, inference.python_version
            )
        ),
        model_provenance=ModelProvenance(
            project_ocid=prov["PROJECT_OCID"],
            tenancy_ocid=prov["TENANCY_OCID"],
            training_code=TrainingCode(prov["ARTIFACT_DIRECTORY"]),
            training_compartment_ocid=prov["TRAINING_COMPARTMENT_OCID"],
            training_conda_env=TrainingCondaEnv(
                training.path, training.slug, training.type, training.python_version
            ),
            training_region=prov["TRAINING_REGION"],
            training_resource_ocid=prov["TRAINING_RESOURCE_OCID"],
            user_ocid=prov["USER_OCID"],
            vm_image_internal_id=prov["VM_IMAGE_INTERNAL_ID"],
        ),
    )


def _provenance_values(artifact_dir: str, overrides: Mapping[str, str] | None) -> dict[str, str]:
    """MODEL_PROVENANCE values from the environment, then ``overrides``."""
    prov = {key: os.environ.get(env, "") for key, env in PROVENANCE_ENV.items()}
    if not prov["TRAINING_RESOURCE_OCID"]:
        prov["TRAINING_RESOURCE_OCID"] = os.environ.get("JOB_RUN_OCID", "")
    prov["ARTIFACT_DIRECTORY"] = artifact_dir
    unknown = set(overrides or {}) - set(prov)
    if unknown:
        raise ArtifactInputError(
            f"Unknown provenance keys {sorted(unknown)}; use keys among {sorted(prov)}."
        )
    prov.update({k: str(v) for k, v in (overrides or {}).items() if v is not None})
    return prov


def save_runtime_info(artifact_dir: str, info: RuntimeInfo, force_overwrite: bool = False) -> str:
    """Validates ``info`` and writes it as runtime.yaml (plus a default .model-ignore).

    An identical runtime.yaml is left as is; a different one is replaced only with
    ``force_overwrite``, else ArtifactFileExistsError and nothing changes.
    """
    info.validate()
    target = os.path.join(artifact_dir, RUNTIME_YAML)
    write_converging(target, info.to_yaml().encode("utf-8"), force_overwrite)
    ignore_file = os.path.join(artifact_dir, MODEL_IGNORE)
    if not os.path.exists(ignore_file):
        write_text_atomic(ignore_file, DEFAULT_MODEL_IGNORE)
    return target


def provenance_from_properties(properties: Mapping[str, Any] | None) -> dict[str, str]:
    """MODEL_PROVENANCE keys taken from model properties when they are set."""
    props = dict(properties or {})
    pairs = {
        "PROJECT_OCID": props.get("project_id"),
        "TRAINING_COMPARTMENT_OCID": props.get("compartment_id"),
        "TRAINING_RESOURCE_OCID": props.get("training_resource_id"),
    }
    return {key: str(value) for key, value in pairs.items() if value}


def generate_runtime_yaml(
    artifact_dir: str,
    *,
    inference_conda_env: str | None = None,
    inference_python_version: str | None = None,
    training_conda_env: str | None = None,
    training_python_version: str | None = None,
    namespace: str = CONDA_DEFAULT_NAMESPACE,
    bucketname: str = CONDA_DEFAULT_BUCKET,
    auth: AuthLike = None,
    ignore_conda_error: bool = False,
    force_overwrite: bool = False,
    properties: Mapping[str, Any] | None = None,
    provenance: Mapping[str, str] | None = None,
) -> RuntimeInfo:
    """Resolves the conda environments and writes runtime.yaml; returns its RuntimeInfo.

    ``properties`` (ModelProperties values) fill MODEL_PROVENANCE's project and compartment;
    ``provenance`` sets MODEL_PROVENANCE keys directly (e.g. ``{"PROJECT_OCID": ...}``).
    """
    folder = ensure_artifact_dir(artifact_dir)
    info = build_runtime_info(
        folder,
        inference_conda_env,
        inference_python_version=inference_python_version,
        training_conda_env=training_conda_env,
        training_python_version=training_python_version,
        namespace=namespace,
        bucketname=bucketname,
        auth=auth,
        ignore_conda_error=ignore_conda_error,
        provenance={**provenance_from_properties(properties), **(provenance or {})},
    )
    save_runtime_info(folder, info, force_overwrite=force_overwrite)
    return info
