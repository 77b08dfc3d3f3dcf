"""Typed errors of ocimodel, under the names the ADS reference uses.

Every error a user can trigger with bad input derives from :class:`OcimodelError` and says
which value was wrong and what to change.
"""

from __future__ import annotations

from collections.abc import Iterable


class OcimodelError(Exception):
    """Base class of every error ocimodel raises on purpose."""


# --- artifact ---------------------------------------------------------------------------------


class AritfactFolderStructureError(OcimodelError):
    """The artifact folder does not have the structure the model catalog expects.

    The misspelled name is the reference's own; ``ArtifactFolderStructureError`` is an alias.
    """

    def __init__(self, required_files: Iterable[str]):
        self.required_files = tuple(required_files)
        super().__init__(
            "The artifact must hold these files at its top level: "
            f"{', '.join(self.required_files)}. Move them out of any sub-folder."
        )


ArtifactFolderStructureError = AritfactFolderStructureError


class ArtifactNestedFolderError(OcimodelError):
    """The archive holds a single nested top folder instead of the artifact files."""

    def __init__(self, folder: str):
        self.folder = folder
        super().__init__(
            f"The artifact has a single nested folder {folder!r} at its top level; "
            "put score.py and runtime.yaml at the top of the archive, not inside a folder."
        )


class ArtifactRequiredFilesError(OcimodelError):
    """Files every artifact needs are missing."""

    def __init__(self, required_files: Iterable[str]):
        self.required_files = tuple(required_files)
        super().__init__(
            f"The artifact is missing required files: {', '.join(self.required_files)}. "
            "Run prepare() or add them to the artifact directory."
        )


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


class UnsafeArchiveError(OcimodelError):
    """An archive entry would land outside the extraction folder (.., absolute path, link)."""


class ArtifactsNotAvailableError(OcimodelError):
    """The model artifacts were not generated or are not available locally."""

    def __init__(
        self, msg: str = "Model artifacts are either not generated or not available locally."
    ):
        super().__init__(msg)


# --- prepare --------------------------------------------------------------------------------


class PrepareError(ValueError, OcimodelError):
    """A prepare step got arguments it cannot work with."""


class TrainingScriptNotFoundError(PrepareError):
    """``training_script_path`` names no file; the provenance would point at nothing."""


class ArtifactInputError(PrepareError):
    """An argument naming or shaping the artifact is missing or unusable."""


class ArtifactSourceNotFoundError(FileNotFoundError, OcimodelError):
    """The folder, archive or schema to copy from does not exist."""


# --- generic model ----------------------------------------------------------------------------


class NotActiveDeploymentError(OcimodelError):
    """Predict was called on a deployment that is not ACTIVE."""

    def __init__(self, state: str):
        self.state = state
        super().__init__(
            f"The model deployment is {state}, not ACTIVE; deploy it (or activate it) "
            "and wait for ACTIVE before calling predict."
        )


class RuntimeInfoInconsistencyError(OcimodelError):
    """runtime.yaml and the model properties disagree."""


class SerializeModelNotImplementedError(NotImplementedError, OcimodelError):
    """No serializer is available for this model."""


class SerializeInputNotImplementedError(NotImplementedError, OcimodelError):
    """No serializer is available for this input data."""


# --- introspection ----------------------------------------------------------------------------


class IntrospectionNotPassed(ValueError, OcimodelError):
    """The artifact failed introspection."""


# --- metadata ---------------------------------------------------------------------------------


class MetadataValueTooLong(ValueError, OcimodelError):
    """A metadata key or value exceeds the service's 255-character limit."""

    def __init__(self, key: str, length: int, limit: int = 255, what: str = "value"):
        self.key, self.length, self.limit = key, length, limit
        super().__init__(
            f"The metadata {what} of {key!r} is {length} characters long; the model catalog "
            f"accepts at most {limit}. Shorten it, or store it as a file in the artifact."
        )


class MetadataDescriptionTooLong(ValueError, OcimodelError):
    """A metadata description exceeds the service's 255-character limit."""

    def __init__(self, key: str, length: int, limit: int = 255):
        self.key, self.length, self.limit = key, length, limit
        super().__init__(
            f"The description of metadata {key!r} is {length} characters long; the model "
            f"catalog accepts at most {limit}. Shorten it."
        )


class MetadataSizeTooLarge(ValueError, OcimodelError):
    """All metadata together exceed the service's 32,000-byte limit."""

    def __init__(self, size: int, limit: int = 32000):
        self.size, self.limit = size, limit
        super().__init__(
            f"The model metadata would be {size} bytes; the model catalog accepts at most "
            f"{limit}. Remove items or move large values into files of the artifact."
        )


# --- runtime / environment --------------------------------------------------------------------


class RuntimeYamlError(ValueError, OcimodelError):
    """runtime.yaml is invalid; the message lists every problem at once."""

    def __init__(self, problems: Iterable[str], path: str | None = None):
        self.problems = list(problems)
        where = f" in {path}" if path else ""
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"runtime.yaml{where} is invalid:\n{lines}")


class CondaEnvError(ValueError, OcimodelError):
    """A conda environment slug or path could not be resolved."""


class MissingExtraError(ImportError, OcimodelError):
    """An optional feature needs an extra that is not installed."""

    def __init__(self, feature: str, extra: str):
        self.feature, self.extra = feature, extra
        super().__init__(
            f"{feature} needs the optional extra {extra!r}: pip install 'ocimodel[{extra}]'"
        )


# --- verify / score ---------------------------------------------------------------------------


class ScoreError(OcimodelError):
    """score.py raised while loading the model or predicting; carries its traceback."""

    def __init__(self, message: str, remote_traceback: str = ""):
        self.remote_traceback = remote_traceback
        text = message if not remote_traceback else f"{message}\n{remote_traceback}"
        super().__init__(text)
