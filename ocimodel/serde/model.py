"""Model save serializers: write a model to the artifact's model file and read it back.

cloudpickle (the default), joblib, ``"onnx"`` (by dotted path, see ocimodel.onnx) and custom
SERDEs; a serializer that score.py reads through its pickled companion is saved beside the model.
"""

from __future__ import annotations

import contextlib
import os
import pickle
from collections.abc import Callable
from enum import Enum
from pathlib import Path
from typing import Any, BinaryIO

from ocimodel.errors import SerializeModelNotImplementedError
from ocimodel.layout import MODEL_SAVE_SERDE_FILE_NAME
from ocimodel.serde.hashing import write_hashed
from ocimodel.serde.protocol import SERDE, _is_serde_like
from ocimodel.serde.registry import _name_of, _Registry
from ocimodel.serde.score_code import (
    COMPANION_SCORE_LOADER,
    CUSTOM,
    DEFAULT_SCORE_TEMPLATE,
    ScoreLoader,
    _declaration,
    _declared_label,
    _snippet,
)


class ModelSerializerType(str, Enum):
    """Names of the built-in model save serializers."""

    CLOUDPICKLE = "cloudpickle"
    JOBLIB = "joblib"
    ONNX = "onnx"


class ModelNotPicklableError(SerializeModelNotImplementedError, TypeError):
    """The model cannot be written by the chosen serializer (a lock, an open file, a socket...)."""

    def __init__(self, model: Any, serializer: str, reason: BaseException):
        detail = str(reason).splitlines()[0][:300] if str(reason) else type(reason).__name__
        super().__init__(
            f"The {type(model).__module__}.{type(model).__qualname__} model cannot be saved "
            f"with the {serializer!r} serializer: {detail}. Make the model picklable (drop or "
            "recreate attributes such as locks, open files or connections in __getstate__), "
            "try model_save_serializer='joblib', or pass a custom SERDE as "
            "model_save_serializer."
        )


def _dump_or_explain(dump: Callable[[], Any], model: Any, serializer: str) -> None:
    """Runs a pickling ``dump``; a model it cannot pickle raises ModelNotPicklableError."""
    try:
        dump()
    except (TypeError, pickle.PicklingError) as exc:
        raise ModelNotPicklableError(model, serializer, exc) from exc


_READING_METHODS = frozenset({"dump", "load", "serialize", "deserialize"})


class ModelSaveSerializer(SERDE):
    """Saves a model to one file of the artifact and loads it back.

    ``score_loader`` (the body of score.py's ``_read_model(path)``) and ``score_template``
    declare how the generated score.py reads the file back. By default score.py unpickles the
    serializer itself, which :meth:`save` writes beside the model (``model_save_serde.pkl``),
    and calls its ``load(path)``. A subclass that overrides how the file is written or read
    without declaring its own ``score_loader`` gets that default again.
    """

    name = "custom"
    file_name = "model.bin"
    extension = ".bin"
    score_template: str = DEFAULT_SCORE_TEMPLATE
    score_loader: str = COMPANION_SCORE_LOADER

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "score_loader" not in cls.__dict__ and _READING_METHODS & set(cls.__dict__):
            cls.score_loader = COMPANION_SCORE_LOADER

    def score_companion(self) -> Any:
        """What :meth:`save` pickles beside the model for score.py's loader, or None.

        The serializer (a custom one's wrapped SERDE) when it declares the companion loader.
        """
        if _snippet(self.score_loader or "") == COMPANION_SCORE_LOADER:
            return companion_of(self)
        return None

    def save(self, model: Any, path: str | os.PathLike, sha256: bool = True) -> str | None:
        """Stream ``model`` to ``path``; return the sha256 hex digest of the written file
        (None with ``sha256=False``, which skips hashing).

        A serializer that score.py loads through its companion is also pickled beside the model.
        """
        companion = self.score_companion()
        if companion is None:
            return write_hashed(path, lambda fh: self.dump(model, fh), sha256)
        return _save_with_companion(self, companion, model, path, sha256)

    def dump(self, model: Any, file: BinaryIO) -> None:
        """Write ``model`` to an open binary file."""
        file.write(_as_bytes(self.serialize(model), self))

    def load(self, path: str | os.PathLike) -> Any:
        """Read the model from ``path``."""
        with open(path, "rb") as fh:
            return self.deserialize(fh.read())


class CloudpickleModelSaveSerializer(ModelSaveSerializer):
    """cloudpickle, the default: handles models defined in notebooks and lambdas."""

    name = "cloudpickle"
    file_name = "model.pkl"
    extension = ".pkl"
    score_loader = """
        with open(path, "rb") as fh:
            return pickle.load(fh)
    """

    def dump(self, model: Any, file: BinaryIO) -> None:
        import cloudpickle

        _dump_or_explain(lambda: cloudpickle.dump(model, file), model, self.name)

    def load(self, path: str | os.PathLike) -> Any:
        with open(path, "rb") as fh:
            return pickle.load(fh)

    def serialize(self, data: Any) -> bytes:
        import cloudpickle

        return cloudpickle.dumps(data)

    def deserialize(self, data: Any) -> Any:
        return pickle.loads(data)


class JoblibModelSaveSerializer(ModelSaveSerializer):
    """joblib: the usual format of scikit-learn models."""

    name = "joblib"
    file_name = "model.joblib"
    extension = ".joblib"
    score_loader = """
        import joblib

        return joblib.load(path)
    """

    @staticmethod
    def _joblib() -> Any:
        try:
            import joblib
        except ImportError as exc:
            raise SerializeModelNotImplementedError(
                "the 'joblib' model serializer needs joblib: pip install joblib, "
                "or use 'cloudpickle'"
            ) from exc
        return joblib

    def dump(self, model: Any, file: BinaryIO) -> None:
        joblib = self._joblib()
        _dump_or_explain(lambda: joblib.dump(model, file), model, self.name)

    def load(self, path: str | os.PathLike) -> Any:
        return self._joblib().load(path)

    def serialize(self, data: Any) -> bytes:
        import io

        buffer = io.BytesIO()
        self._joblib().dump(data, buffer)
        return buffer.getvalue()

    def deserialize(self, data: Any) -> Any:
        import io

        return self._joblib().load(io.BytesIO(data))


class CustomModelSaveSerializer(ModelSaveSerializer):
    """Adapts a user SERDE (``serialize(model) -> bytes``, ``deserialize(bytes) -> model``);
    score.py loads the model through that SERDE, pickled beside it."""

    def __init__(self, serde: Any):
        super().__init__()
        self.serde = serde
        self.name = getattr(serde, "name", None) or type(serde).__name__
        self.file_name = getattr(serde, "file_name", None) or "model.bin"
        self.extension = getattr(serde, "extension", None) or Path(self.file_name).suffix

    def serialize(self, data: Any) -> Any:
        return self.serde.serialize(data)

    def deserialize(self, data: Any) -> Any:
        return self.serde.deserialize(data)


def _save_with_companion(
    serializer: ModelSaveSerializer,
    companion: Any,
    model: Any,
    path: str | os.PathLike,
    sha256: bool = True,
) -> str | None:
    companion_path = Path(path).parent / MODEL_SAVE_SERDE_FILE_NAME
    save_companion_serde(companion, companion_path)
    try:
        return write_hashed(path, lambda fh: serializer.dump(model, fh), sha256)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(companion_path)
        raise


def _as_bytes(data: Any, serde: Any) -> bytes:
    if isinstance(data, (bytes, bytearray, memoryview)):
        return bytes(data)
    if isinstance(data, str):
        return data.encode("utf-8")
    raise SerializeModelNotImplementedError(
        f"{type(serde).__name__}.serialize() returned {type(data).__name__}; a model save "
        "serializer must return bytes or str so that it can be written to the model file"
    )


def save_companion_serde(serde: Any, path: str | os.PathLike) -> str | None:
    """Pickle a custom SERDE next to the model so that score.py can use it without ocimodel."""
    import cloudpickle

    import ocimodel

    def dump(fh: Any) -> None:
        cloudpickle.register_pickle_by_value(ocimodel)
        try:
            cloudpickle.dump(serde, fh)
        finally:
            cloudpickle.unregister_pickle_by_value(ocimodel)

    return write_hashed(path, dump, sha256=False)


def companion_of(serializer: Any) -> Any:
    """The object pickled beside the model for a custom serializer (the user's own SERDE)."""
    return getattr(serializer, "serde", serializer)


_MODEL_SAVE_SERIALIZERS = _Registry(
    "model_save_serializer",
    {
        "cloudpickle": CloudpickleModelSaveSerializer,
        "joblib": JoblibModelSaveSerializer,
        "onnx": "ocimodel.onnx:OnnxModelSaveSerializer",
    },
)


def register_model_save_serializer(
    name: str, factory: Callable[..., ModelSaveSerializer] | str, clobber: bool = False
) -> None:
    """Make ``name`` (case-insensitive) resolve to ``factory(**options)`` in
    :func:`get_model_save_serializer`.

    ``factory`` is a :class:`ModelSaveSerializer` subclass (or any callable returning one), or
    its dotted path, ``"package.module:ClassName"`` or ``"package.module.ClassName"``, imported
    the first time the name is used. A name already registered to something else raises
    :class:`SerializerAlreadyRegisteredError` unless ``clobber=True``; registering the same
    thing again is a no-op.
    """
    _MODEL_SAVE_SERIALIZERS.register(name, factory, clobber)


def unregister_model_save_serializer(name: str) -> Any:
    """Forget ``name``; return what it was registered as (None if it was not)."""
    return _MODEL_SAVE_SERIALIZERS.unregister(name)


def model_save_serializer_names() -> list[str]:
    return _MODEL_SAVE_SERIALIZERS.names()


def _model_save_factory(name: str) -> Any:
    factory = _MODEL_SAVE_SERIALIZERS.get(name)
    if factory is None:
        raise SerializeModelNotImplementedError(
            f"model_save_serializer {name!r} is unknown; use one of "
            f"{', '.join(model_save_serializer_names())} or a SERDE instance"
        )
    return factory


def _as_model_save_serializer(value: Any, name: str) -> ModelSaveSerializer:
    if isinstance(value, ModelSaveSerializer):
        return value
    if _is_serde_like(value):
        return CustomModelSaveSerializer(value)
    raise SerializeModelNotImplementedError(
        f"model_save_serializer {name!r} made a {type(value).__name__}, which is neither a "
        "ModelSaveSerializer nor a SERDE (serialize/deserialize)"
    )


def get_model_save_serializer(serializer: str | SERDE, **options: Any) -> ModelSaveSerializer:
    """The model save serializer for a name (``options`` go to its constructor) or instance."""
    if isinstance(serializer, ModelSaveSerializer):
        return serializer
    if isinstance(serializer, str):
        name = _name_of(serializer)
        return _as_model_save_serializer(_model_save_factory(name)(**options), name)
    if _is_serde_like(serializer):
        return CustomModelSaveSerializer(serializer)
    raise SerializeModelNotImplementedError(
        f"model_save_serializer must be a name or a SERDE instance, not "
        f"{type(serializer).__name__}; use one of {', '.join(model_save_serializer_names())}"
    )


def score_loader_of(serializer: Any) -> ScoreLoader:
    """How a generated score.py reads what ``serializer`` wrote, as the serializer declares it.

    ``serializer`` is a :class:`ModelSaveSerializer` (instance or class), a registered name
    (its class is read without being instantiated, so ``"onnx"`` needs no extra), ``"custom"``
    or a user SERDE (both read through the pickled companion). The result compares equal to
    ``"cloudpickle"``, ``"joblib"``, ``"onnx"`` or ``"custom"`` for those.
    """
    if isinstance(serializer, ScoreLoader):
        return serializer
    if isinstance(serializer, str):
        name = _name_of(serializer)
        if name.lower() == CUSTOM:
            return ScoreLoader(CUSTOM, COMPANION_SCORE_LOADER)
        serializer = _model_save_factory(name)
        if not isinstance(serializer, type):
            serializer = _as_model_save_serializer(serializer(), name)
    is_class = isinstance(serializer, type) and issubclass(serializer, ModelSaveSerializer)
    if is_class or isinstance(serializer, ModelSaveSerializer):
        source = _declaration(
            serializer, "score_loader", "model_save_serializer", SerializeModelNotImplementedError
        )
        template = getattr(serializer, "score_template", None) or DEFAULT_SCORE_TEMPLATE
        uses_companion = _snippet(source) == COMPANION_SCORE_LOADER
        return ScoreLoader(_declared_label(serializer, uses_companion), source, template)
    if _is_serde_like(serializer):
        return ScoreLoader(CUSTOM, COMPANION_SCORE_LOADER)
    raise SerializeModelNotImplementedError(
        f"{type(serializer).__name__} is not a model save serializer; use one of "
        f"{', '.join(model_save_serializer_names())}, a ModelSaveSerializer or a SERDE instance"
    )
