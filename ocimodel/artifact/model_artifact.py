"""ModelArtifact: the folder OCI Data Science deploys (model file, score.py, runtime.yaml, ...).

Writers never replace an existing file unless ``force_overwrite=True``; every file is written
through a temporary file and a rename, so a failure leaves no half-written file behind.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import sys
import tempfile
import uuid
from collections.abc import Mapping
from types import ModuleType
from typing import Any

from ocimodel import conda
from ocimodel.archive import (
    MODEL_IGNORE,
    ArchiveFormatError,
    archive_kind,
    make_zip,
    member_parts,
    safe_extract,
)
from ocimodel.conda import CondaEnvInfo, resolve_conda_env
from ocimodel.errors import (
    AritfactFolderStructureError,
    ArtifactNestedFolderError,
    ArtifactRequiredFilesError,
    ArtifactsNotAvailableError,
    CondaEnvError,
    OcimodelError,
)
from ocimodel.manifest import MANIFEST_NAME, read_manifest, verify_manifest, write_manifest
from ocimodel.oci.storage import copy_uri, is_oci_uri, iter_files, uri_exists, uri_isdir
from ocimodel.runtime import (
    RUNTIME_YAML,
    ArtifactFileExistsError,
    InferenceCondaEnv,
    ModelDeployment,
    ModelProvenance,
    RuntimeInfo,
    TrainingCode,
    TrainingCondaEnv,
    read_runtime_yaml,
    write_converging,
    write_text_atomic,
)
from ocimodel.serde import MODEL_INPUT_SERDE_FILE_NAME, MODEL_SAVE_SERDE_FILE_NAME

SCORE_PY = "score.py"
INPUT_SCHEMA = "input_schema.json"
OUTPUT_SCHEMA = "output_schema.json"
REQUIRED_FILES = (SCORE_PY, RUNTIME_YAML)
TEMPLATES_DIR = os.path.join(os.path.dirname(__file__), "templates")
MODEL_FILE_SUFFIXES = (".pkl", ".joblib", ".onnx", ".pt", ".pth", ".h5", ".keras", ".bin")
DEFAULT_MODEL_IGNORE = """\
# Files left out when the artifact is zipped (gitignore syntax).
.ipynb_checkpoints/
__pycache__/
*.pyc
.DS_Store
.git/
.tmp-*
"""

PROVENANCE_ENV = {
    "PROJECT_OCID": "PROJECT_OCID",
    "TENANCY_OCID": "TENANCY_OCID",
    "USER_OCID": "USER_OCID",
    "TRAINING_COMPARTMENT_OCID": "NB_SESSION_COMPARTMENT_OCID",
    "TRAINING_RESOURCE_OCID": "NB_SESSION_OCID",
    "TRAINING_REGION": "NB_REGION",
    "VM_IMAGE_INTERNAL_ID": "VM_ID",
}


class ArtifactInputError(ValueError, OcimodelError):
    """An argument of ModelArtifact is missing or unusable."""


class ArtifactSourceNotFoundError(FileNotFoundError, OcimodelError):
    """The folder, archive or schema to copy from does not exist."""


def _empty_env(slug: str = "", path: str = "", python: str = "") -> CondaEnvInfo:
    kind = conda.TYPE_PUBLISHED if is_oci_uri(path) else ""
    return CondaEnvInfo(slug=slug, path=path, python_version=python, type=kind)


class ModelArtifact:
    """The artifact folder of one model, and the operations that prepare and load it."""

    def __init__(
        self,
        artifact_dir: str,
        model_file_name: str | None = None,
        reload: bool | None = False,
        ignore_conda_error: bool | None = False,
        local_copy_dir: str | None = None,
        auth: dict | None = None,
    ):
        if not artifact_dir or not isinstance(artifact_dir, (str, os.PathLike)):
            raise ArtifactInputError(
                f"artifact_dir is {artifact_dir!r}; pass the folder that should hold the "
                "model artifact, e.g. artifact_dir='./model_artifact'."
            )
        self.artifact_dir = os.path.abspath(os.path.expanduser(os.fspath(artifact_dir)))
        if os.path.exists(self.artifact_dir) and not os.path.isdir(self.artifact_dir):
            raise ArtifactInputError(
                f"artifact_dir {self.artifact_dir!r} is a file; pass a folder path instead."
            )
        os.makedirs(self.artifact_dir, exist_ok=True)
        self.model_file_name = model_file_name
        self.ignore_conda_error = bool(ignore_conda_error)
        self.local_copy_dir = local_copy_dir
        self.auth = auth
        self.runtime_info: RuntimeInfo | None = None
        self.model: Any = None
        self.score: ModuleType | None = None
        if reload:
            self.reload()

    def __repr__(self) -> str:
        return (
            f"ModelArtifact(artifact_dir={self.artifact_dir!r}, "
            f"model_file_name={self.model_file_name!r})"
        )

    def path(self, name: str) -> str:
        """Absolute path of a file of the artifact."""
        return os.path.join(self.artifact_dir, *name.split("/"))

    def _guard(self, name: str, force_overwrite: bool) -> str:
        target = self.path(name)
        if os.path.exists(target) and not force_overwrite:
            raise ArtifactFileExistsError(target)
        return target

    # --- runtime.yaml ------------------------------------------------------------------------

    def prepare_runtime_yaml(
        self,
        inference_conda_env: str | None,
        inference_python_version: str | None = None,
        training_conda_env: str | None = None,
        training_python_version: str | None = None,
        force_overwrite: bool = False,
        namespace: str = conda.DEFAULT_NAMESPACE,
        bucketname: str = conda.DEFAULT_BUCKET,
        auth: dict | None = None,
        ignore_conda_error: bool = False,
        *,
        provenance: Mapping[str, str] | None = None,
    ) -> RuntimeInfo:
        """Resolves the conda envs and writes a validated runtime.yaml (see build_runtime_info).

        An identical runtime.yaml is kept; a different one is replaced only with
        ``force_overwrite=True``, else ArtifactFileExistsError.
        """
        info = build_runtime_info(
            self.artifact_dir,
            inference_conda_env,
            inference_python_version=inference_python_version,
            training_conda_env=training_conda_env,
            training_python_version=training_python_version,
            namespace=namespace,
            bucketname=bucketname,
            auth=auth or self.auth,
            ignore_conda_error=bool(ignore_conda_error or self.ignore_conda_error),
            provenance=provenance,
        )
        save_runtime_info(self.artifact_dir, info, force_overwrite=force_overwrite)
        self.runtime_info = info
        return info

    def reload_runtime_info(self) -> RuntimeInfo:
        """Reads and validates runtime.yaml of the artifact into ``runtime_info``."""
        self.runtime_info = read_runtime_yaml(self.artifact_dir)
        return self.runtime_info

    # --- score.py, schema, .model-ignore, manifest -------------------------------------------

    def prepare_score_py(
        self,
        jinja_template_filename: str | None = None,
        model_file_name: str | None = None,
        *,
        force_overwrite: bool = False,
        model_save_serializer: Any = "cloudpickle",
        model_input_serializer: Any = "json",
        **kwargs: Any,
    ) -> str:
        """Renders score.py from a packaged jinja2 template (default: the one matching the
        model save serializer) through :func:`ocimodel.prepare.generate_score_py`.

        An identical score.py is kept; a different one is replaced only with
        ``force_overwrite=True``. Extra kwargs become template variables.
        """
        from ocimodel.prepare import generate_score_py

        model_file_name = model_file_name or self.model_file_name
        if not model_file_name:
            raise ArtifactInputError(
                "model_file_name is not set; pass model_file_name='model.pkl' (the serialized "
                "model's file name in the artifact)."
            )
        target = generate_score_py(
            self.artifact_dir,
            model_file_name=model_file_name,
            model_save_serializer=model_save_serializer,
            model_input_serializer=model_input_serializer,
            template=jinja_template_filename,
            force_overwrite=force_overwrite,
            auth=self.auth,
            **kwargs,
        )
        self.model_file_name = model_file_name
        return target

    def prepare_schema(self, schema_name: str, force_overwrite: bool = False) -> str:
        """Copies a schema file (a path, or a name in ocimodel/templates) into the artifact."""
        source = schema_name
        if not os.path.isfile(source):
            source = os.path.join(TEMPLATES_DIR, schema_name)
        if not os.path.isfile(source):
            raise ArtifactSourceNotFoundError(
                f"Schema {schema_name!r} is neither a file nor a template in {TEMPLATES_DIR}; "
                "pass an existing schema file path."
            )
        target = self._guard(os.path.basename(source), force_overwrite)
        with open(source, encoding="utf-8") as fh:
            write_text_atomic(target, fh.read())
        return target

    def write_schema(self, schema: Any, kind: str = "input", force_overwrite: bool = False) -> str:
        """Writes input_schema.json or output_schema.json from a Schema, dict or JSON text."""
        names = {"input": INPUT_SCHEMA, "output": OUTPUT_SCHEMA}
        if kind not in names:
            raise ArtifactInputError(f"kind is {kind!r}; use 'input' or 'output'.")
        if hasattr(schema, "to_json"):
            text = schema.to_json()
        elif isinstance(schema, Mapping):
            text = json.dumps(schema, indent=2)
        elif isinstance(schema, str):
            json.loads(schema)
            text = schema
        else:
            raise ArtifactInputError(
                f"schema is a {type(schema).__name__}; pass an ocimodel Schema, a dict or JSON."
            )
        target = self._guard(names[kind], force_overwrite)
        write_text_atomic(target, text)
        return target

    def prepare_model_ignore(
        self, content: str = DEFAULT_MODEL_IGNORE, force_overwrite: bool = False
    ) -> str:
        """Writes .model-ignore (gitignore syntax), honoured by zip()."""
        target = self._guard(MODEL_IGNORE, force_overwrite)
        write_text_atomic(target, content)
        return target

    def write_manifest(
        self,
        known_digests: Mapping[str, str] | None = None,
        files: list[str] | None = None,
    ) -> dict[str, Any]:
        """Writes ocimodel-manifest.json; defaults to the model file, using known digests."""
        if files is None:
            files = sorted(set(known_digests or {}) | {self.model_file_name} - {None})
        return write_manifest(self.artifact_dir, files, known_digests)

    def verify_manifest(self, required: bool = False) -> list[str]:
        """Checks the files listed in ocimodel-manifest.json (ManifestError on mismatch)."""
        return verify_manifest(self.artifact_dir, required=required)

    # --- zip, reload -------------------------------------------------------------------------

    def zip(self, dest: str | None = None, force_overwrite: bool = False) -> str:
        """Zips the artifact (honouring .model-ignore) to ``dest`` (default ``<dir>.zip``).

        The zip carries a fresh ocimodel-manifest.json with the sha256 of the model file and
        any serializer pickles, computed from the bytes as they are zipped.
        """
        self.check_required_files()
        return make_zip(
            self.artifact_dir,
            dest or self.artifact_dir.rstrip(os.sep) + ".zip",
            force_overwrite=force_overwrite,
            manifest_files=self.integrity_files(),
        )

    def integrity_files(self) -> list[str]:
        """The files the manifest covers: the model file and the serializer pickles present."""
        model = self.model_file_name or _guess_model_file(self.artifact_dir)
        names = [model] if model else []
        return names + [
            name
            for name in (MODEL_SAVE_SERDE_FILE_NAME, MODEL_INPUT_SERDE_FILE_NAME)
            if os.path.isfile(self.path(name))
        ]

    def check_required_files(self) -> None:
        """Raises the reference's structure errors when score.py/runtime.yaml are absent."""
        _check_structure(self.artifact_dir, self.model_file_name)

    def reload(self) -> ModelArtifact:
        """Imports score.py of the artifact and loads the model through its load_model()."""
        score_path = self.path(SCORE_PY)
        if not os.path.isfile(score_path):
            raise ArtifactsNotAvailableError(
                f"{score_path} does not exist; run prepare() before reload()."
            )
        name = f"ocimodel_score_{uuid.uuid4().hex}"
        spec = importlib.util.spec_from_file_location(name, score_path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.path.insert(0, self.artifact_dir)
        try:
            spec.loader.exec_module(module)
            self.model = module.load_model()
        finally:
            if sys.path and sys.path[0] == self.artifact_dir:
                sys.path.pop(0)
        self.score = module
        return self

    # --- from_uri ----------------------------------------------------------------------------

    @classmethod
    def from_uri(
        cls,
        uri: str,
        artifact_dir: str,
        model_file_name: str | None = None,
        force_overwrite: bool | None = False,
        auth: dict | None = None,
        ignore_conda_error: bool | None = False,
        reload: bool | None = False,
    ) -> ModelArtifact:
        """Builds an artifact from a folder, .zip or .tar(.gz), local or oci://.

        The source is staged and checked (structure, runtime.yaml) before anything lands in
        ``artifact_dir``; existing files are replaced only with ``force_overwrite=True``.
        """
        if not uri or not isinstance(uri, str):
            raise ArtifactInputError(
                f"uri is {uri!r}; pass a folder, .zip or .tar.gz path, or an oci:// URI."
            )
        if not artifact_dir:
            raise ArtifactInputError(
                "artifact_dir is empty; pass the local folder to put the artifact in."
            )
        target = os.path.abspath(os.path.expanduser(os.fspath(artifact_dir)))
        if uri.startswith("file://"):
            uri = uri[len("file://") :]
        if not is_oci_uri(uri) and os.path.abspath(os.path.expanduser(uri)) == target:
            if not os.path.isdir(target):
                raise ArtifactSourceNotFoundError(
                    f"uri and artifact_dir are both {target!r}, which does not exist; pass an "
                    "existing artifact folder or archive as uri."
                )
            _check_structure(target, model_file_name)
            return cls._open(target, model_file_name, auth, ignore_conda_error, reload)
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
            _check_structure(staging, model_file_name)
            read_runtime_yaml(staging)
            incoming = [rel for rel, _ in iter_files(staging)]
            conflicts = [rel for rel in incoming if os.path.lexists(os.path.join(target, rel))]
            if conflicts and not force_overwrite:
                raise ArtifactFileExistsError([os.path.join(target, c) for c in conflicts])
            os.makedirs(target, exist_ok=True)
            for rel in incoming:
                dest = os.path.join(target, *rel.split("/"))
                os.makedirs(os.path.dirname(dest), exist_ok=True)
                os.replace(os.path.join(staging, *rel.split("/")), dest)
            stale = os.path.join(target, MANIFEST_NAME)
            if MANIFEST_NAME not in incoming and os.path.exists(stale):
                os.unlink(stale)
        finally:
            shutil.rmtree(staging_root, ignore_errors=True)
        return cls._open(target, model_file_name, auth, ignore_conda_error, reload)

    @classmethod
    def _open(cls, folder, model_file_name, auth, ignore_conda_error, reload) -> ModelArtifact:
        art = cls(
            folder,
            model_file_name=model_file_name or _guess_model_file(folder),
            ignore_conda_error=ignore_conda_error,
            auth=auth,
        )
        art.reload_runtime_info()
        if reload:
            art.reload()
        return art


def build_runtime_info(
    artifact_dir: str,
    inference_conda_env: str | None,
    *,
    inference_python_version: str | None = None,
    training_conda_env: str | None = None,
    training_python_version: str | None = None,
    namespace: str = conda.DEFAULT_NAMESPACE,
    bucketname: str = conda.DEFAULT_BUCKET,
    auth: dict | None = None,
    ignore_conda_error: bool = False,
    provenance: Mapping[str, str] | None = None,
) -> RuntimeInfo:
    """The runtime.yaml content for an artifact folder; writes nothing.

    Slugs resolve through the service pack index; an ``oci://`` path is a published pack.
    ``provenance`` overrides MODEL_PROVENANCE keys (e.g. ``{"PROJECT_OCID": ...}``).
    Raises CondaEnvError when no inference python version is given or resolvable.
    """
    ignore = bool(ignore_conda_error)
    ns = None if namespace == conda.DEFAULT_NAMESPACE else namespace
    bucket = None if bucketname == conda.DEFAULT_BUCKET else bucketname
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
                packs_cache["packs"] = conda.load_service_packs(ns, bucket, auth)
            return resolve_conda_env(value, python_version=python, packs=packs_cache.get("packs"))
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


def _materialize(uri: str, staging: str, scratch: str, auth: dict | None) -> None:
    """Puts the source's files into the new folder ``staging`` (archives extracted safely)."""
    if archive_kind(uri):
        local = uri
        if is_oci_uri(uri):
            local = os.path.join(scratch, "source-" + uri.rstrip("/").rsplit("/", 1)[-1])
            copy_uri(uri, local, auth)
        safe_extract(os.path.expanduser(local), staging)
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


def _check_structure(folder: str, model_file_name: str | None = None) -> None:
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


def _guess_model_file(folder: str) -> str | None:
    """The model file: the one top-level model-like file, else the manifest's single entry
    when that file exists."""
    candidates = [
        n
        for n in sorted(os.listdir(folder))
        if n.lower().endswith(MODEL_FILE_SUFFIXES)
        and n not in (MODEL_SAVE_SERDE_FILE_NAME, MODEL_INPUT_SERDE_FILE_NAME)
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
