"""ModelArtifact: the folder OCI Data Science deploys (model file, score.py, runtime.yaml, ...).

A thin facade over the stage functions: runtime.yaml (:mod:`ocimodel.runtime`), score.py
(:mod:`ocimodel.score`), zip and safe extraction (:mod:`ocimodel.artifact.archive`) and the
manifest (:mod:`ocimodel.artifact.manifest`). Writers never replace an existing file unless
``force_overwrite=True``; every file is written through a temporary file and a rename.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from types import ModuleType
from typing import TYPE_CHECKING, Any

from ocimodel.artifact.archive import (
    make_zip,
)
from ocimodel.artifact.manifest import verify_manifest, write_manifest
from ocimodel.artifact.source import check_structure, guess_model_file, place_artifact
from ocimodel.errors import (
    ArtifactFileExistsError,
    ArtifactInputError,
    ArtifactSourceNotFoundError,
)
from ocimodel.files import write_text_atomic
from ocimodel.layout import (
    CONDA_DEFAULT_BUCKET,
    CONDA_DEFAULT_NAMESPACE,
    INPUT_SCHEMA_FILE_NAME,
    OUTPUT_SCHEMA_FILE_NAME,
    SERIALIZER_FILES,
    TEMPLATES_DIR,
)
from ocimodel.runtime import RuntimeInfo, generate_runtime_yaml, read_runtime_yaml
from ocimodel.score import generate_score_py, load_score

if TYPE_CHECKING:
    from ocimodel.oci.auth import AuthLike


class ModelArtifact:
    """The artifact folder of one model, and the operations that prepare and load it."""

    def __init__(
        self,
        artifact_dir: str,
        model_file_name: str | None = None,
        reload: bool | None = False,
        ignore_conda_error: bool | None = False,
        local_copy_dir: str | None = None,
        auth: AuthLike = None,
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
        namespace: str = CONDA_DEFAULT_NAMESPACE,
        bucketname: str = CONDA_DEFAULT_BUCKET,
        auth: AuthLike = None,
        ignore_conda_error: bool = False,
        *,
        provenance: Mapping[str, str] | None = None,
    ) -> RuntimeInfo:
        """Resolves the conda envs and writes a validated runtime.yaml (see generate_runtime_yaml).

        An identical runtime.yaml is kept; a different one is replaced only with
        ``force_overwrite=True``, else ArtifactFileExistsError.
        """
        info = generate_runtime_yaml(
            self.artifact_dir,
            inference_conda_env=inference_conda_env,
            inference_python_version=inference_python_version,
            training_conda_env=training_conda_env,
            training_python_version=training_python_version,
            namespace=namespace,
            bucketname=bucketname,
            auth=auth or self.auth,
            ignore_conda_error=bool(ignore_conda_error or self.ignore_conda_error),
            force_overwrite=force_overwrite,
            provenance=provenance,
        )
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
        model save serializer) through :func:`ocimodel.score.generate_score_py`.

        An identical score.py is kept; a different one is replaced only with
        ``force_overwrite=True``. Extra kwargs become template variables.
        """
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
        names = {"input": INPUT_SCHEMA_FILE_NAME, "output": OUTPUT_SCHEMA_FILE_NAME}
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
        model = self.model_file_name or guess_model_file(self.artifact_dir)
        names = [model] if model else []
        return names + [name for name in SERIALIZER_FILES if os.path.isfile(self.path(name))]

    def check_required_files(self) -> None:
        """Raises the reference's structure errors when score.py/runtime.yaml are absent."""
        check_structure(self.artifact_dir, self.model_file_name)

    def reload(self) -> ModelArtifact:
        """Imports score.py of the artifact and loads the model through its load_model()."""
        module = load_score(self.artifact_dir)
        self.model = module.load_model()
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
        auth: AuthLike = None,
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
        target = place_artifact(uri, artifact_dir, model_file_name, bool(force_overwrite), auth)
        return cls._open(target, model_file_name, auth, ignore_conda_error, reload)

    @classmethod
    def _open(cls, folder, model_file_name, auth, ignore_conda_error, reload) -> ModelArtifact:
        art = cls(
            folder,
            model_file_name=model_file_name or guess_model_file(folder),
            ignore_conda_error=ignore_conda_error,
            auth=auth,
        )
        art.reload_runtime_info()
        if reload:
            art.reload()
        return art
