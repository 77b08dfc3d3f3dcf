"""Serializers of models (to the artifact's model file) and of model inputs (to request bodies).

``SERDE`` is the protocol both roles share (``name``, ``serialize``, ``deserialize``); the
registries map names such as ``"cloudpickle"`` or ``"json"`` to instances, and any user SERDE
instance is accepted in either role. Model files are written to a temporary file beside the
target and renamed into place only when complete; on request they are hashed with sha256 on a
background thread while they stream out.
"""

from __future__ import annotations

import collections
import contextlib
import hashlib
import json
import os
import pickle
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable
from enum import Enum
from pathlib import Path
from typing import Any, BinaryIO

from ocimodel import codec
from ocimodel.errors import (
    SerializeInputNotImplementedError,
    SerializeModelNotImplementedError,
)
from ocimodel.runtime import check_not_folder, create_temp_file

MODEL_SAVE_SERDE_FILE_NAME = "model_save_serde.pkl"
MODEL_INPUT_SERDE_FILE_NAME = "model_input_serde.pkl"
_HASH_QUEUE_LIMIT = 64 * 1024 * 1024


class InputSerializerRefusedError(SerializeInputNotImplementedError):
    """A model input serializer that would make a deployment unpickle request bodies."""

    def __init__(self, name: str, value: Any = None):
        self.serializer_name = name
        shown = repr(name) if value is None else f"{value!r} (name {name!r})"
        super().__init__(
            f"model_input_serializer {shown} is refused: the deployment would unpickle request "
            "bodies received over the network, which lets any caller run code on it. Use 'json' "
            "(it carries numpy arrays, pandas Series/DataFrames, bytes, lists and dicts) or a "
            "custom SERDE instance whose deserialize parses the body without unpickling it."
        )


class ModelSerializerType(str, Enum):
    """Names of the built-in model save serializers."""

    CLOUDPICKLE = "cloudpickle"
    JOBLIB = "joblib"
    ONNX = "onnx"


class ModelInputSerializerType(str, Enum):
    """Names of the built-in model input serializers."""

    JSON = "json"


class SERDE(ABC):
    """Serializes and deserializes one kind of value; subclass it for a custom serializer."""

    name: str = "custom"

    @abstractmethod
    def serialize(self, data: Any) -> Any:
        """Turn ``data`` into its serialized form."""

    @abstractmethod
    def deserialize(self, data: Any) -> Any:
        """Turn a serialized form back into the value."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


# --- model save serializers -------------------------------------------------------------------


class HashingWriter:
    """A binary file writer that feeds sha256 on a background thread as the data goes out.

    Buffers are handed to the hashing thread before they are written, so hashing overlaps the
    write (hashlib releases the GIL on large buffers). At most ``limit`` bytes of copies wait
    for it; pickle protocol-5 buffers are views of the model's own memory and cost nothing.
    """

    def __init__(self, file: BinaryIO, limit: int = _HASH_QUEUE_LIMIT):
        self._file = file
        self._limit = limit
        self._sha = hashlib.sha256()
        self._queue: collections.deque = collections.deque()
        self._pending = 0
        self._done = False
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._hash_loop, name="sha256-writer", daemon=True)
        self._thread.start()

    def write(self, data: Any) -> int:
        """Queue ``data`` for hashing and write it to the file."""
        if isinstance(data, pickle.PickleBuffer):
            view = data.raw()
            size, held = view.nbytes, 0
        else:
            view = data if isinstance(data, bytes) else bytes(data)
            size = held = len(view)
        with self._cond:
            while self._pending and self._pending + held > self._limit:
                self._cond.wait()
            self._queue.append((view, held))
            self._pending += held
            self._cond.notify_all()
        self._file.write(view)
        return size

    def _hash_loop(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._done:
                    self._cond.wait()
                if not self._queue:
                    return
                view, held = self._queue.popleft()
            self._sha.update(view)
            if held:
                with self._cond:
                    self._pending -= held
                    self._cond.notify_all()

    def tell(self) -> int:
        return self._file.tell()

    def flush(self) -> None:
        self._file.flush()

    def writable(self) -> bool:
        return True

    def finish(self) -> str:
        """Stop the hashing thread after it has hashed everything; return the hex digest."""
        with self._cond:
            self._done = True
            self._cond.notify_all()
        self._thread.join()
        return self._sha.hexdigest()


def write_hashed(
    path: str | os.PathLike, write: Callable[[Any], Any], sha256: bool = True
) -> str | None:
    """Write a file through ``write(writer)`` atomically; return its sha256 hex digest.

    The data goes to a temporary file in the same folder that replaces ``path`` only once
    complete, so a failure leaves no partial file behind. With ``sha256=False`` nothing is
    hashed and None is returned.
    """
    target = Path(path)
    check_not_folder(str(target))
    fd, tmp = create_temp_file(str(target.parent), prefix=f".{target.name}.", suffix=".tmp")
    digest = None
    try:
        with os.fdopen(fd, "wb") as raw:
            if not sha256:
                write(raw)
            else:
                writer = HashingWriter(raw)
                try:
                    write(writer)
                finally:
                    digest = writer.finish()
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return digest


def sha256_file(path: str | os.PathLike, chunk_size: int = 1 << 20) -> str:
    """sha256 hex digest of a file, read in chunks."""
    sha = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(chunk_size):
            sha.update(chunk)
    return sha.hexdigest()


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


class ModelSaveSerializer(SERDE):
    """Saves a model to one file of the artifact and loads it back."""

    name = "custom"
    file_name = "model.bin"
    extension = ".bin"

    def save(self, model: Any, path: str | os.PathLike, sha256: bool = True) -> str | None:
        """Stream ``model`` to ``path``; return the sha256 hex digest of the written file
        (None with ``sha256=False``, which skips hashing).

        A custom serializer is also pickled beside the model, for score.py to load it with.
        """
        if score_loader_of(self) != "custom":
            return write_hashed(path, lambda fh: self.dump(model, fh), sha256)
        return _save_with_companion(self, companion_of(self), model, path, sha256)

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
    """Adapts a user SERDE (``serialize(model) -> bytes``, ``deserialize(bytes) -> model``)."""

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


def score_loader_of(serializer: Any) -> str:
    """How a generated score.py loads the model: a built-in name, or ``"custom"``."""
    builtin = {
        CloudpickleModelSaveSerializer: "cloudpickle",
        JoblibModelSaveSerializer: "joblib",
    }
    loader = builtin.get(type(serializer))
    if loader:
        return loader
    if type(serializer).__module__ == "ocimodel.onnx" and serializer.name == "onnx":
        return "onnx"
    return "custom"


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


def _onnx_factory(**options: Any) -> ModelSaveSerializer:
    from ocimodel.onnx import OnnxModelSaveSerializer

    return OnnxModelSaveSerializer(**options)


_MODEL_SAVE_SERIALIZERS: dict[str, Callable[..., ModelSaveSerializer]] = {
    "cloudpickle": CloudpickleModelSaveSerializer,
    "joblib": JoblibModelSaveSerializer,
    "onnx": _onnx_factory,
}


def register_model_save_serializer(name: str, factory: Callable[..., ModelSaveSerializer]) -> None:
    """Make ``name`` resolve to ``factory()`` in :func:`get_model_save_serializer`."""
    _MODEL_SAVE_SERIALIZERS[name.lower()] = factory


def model_save_serializer_names() -> list[str]:
    return sorted(_MODEL_SAVE_SERIALIZERS)


def _is_serde_like(value: Any) -> bool:
    return callable(getattr(value, "serialize", None)) and callable(
        getattr(value, "deserialize", None)
    )


def get_model_save_serializer(serializer: str | SERDE, **options: Any) -> ModelSaveSerializer:
    """The model save serializer for a name (``options`` go to its constructor) or instance."""
    if isinstance(serializer, ModelSaveSerializer):
        return serializer
    if isinstance(serializer, str):
        name = serializer.value if isinstance(serializer, Enum) else serializer
        factory = _MODEL_SAVE_SERIALIZERS.get(name.lower())
        if factory is None:
            raise SerializeModelNotImplementedError(
                f"model_save_serializer {name!r} is unknown; use one of "
                f"{', '.join(model_save_serializer_names())} or a SERDE instance"
            )
        return factory(**options)
    if _is_serde_like(serializer):
        return CustomModelSaveSerializer(serializer)
    raise SerializeModelNotImplementedError(
        f"model_save_serializer must be a name or a SERDE instance, not "
        f"{type(serializer).__name__}; use one of {', '.join(model_save_serializer_names())}"
    )


# --- model input serializers ------------------------------------------------------------------


class InputSerializer(SERDE):
    """Serializes verify/predict payloads into request bodies and back."""

    name = "custom"

    def to_request(self, data: Any) -> tuple[bytes, str]:
        """The request body and its content type for ``data``."""
        return _body_of(self.serialize(data), self)


def _body_of(payload: Any, serde: Any) -> tuple[bytes, str]:
    if isinstance(payload, (bytes, bytearray, memoryview)):
        return bytes(payload), "application/octet-stream"
    if isinstance(payload, str):
        try:
            json.loads(payload)
        except ValueError:
            return payload.encode("utf-8"), "text/plain"
        return payload.encode("utf-8"), "application/json"
    try:
        return json.dumps(payload, allow_nan=False).encode("utf-8"), "application/json"
    except (TypeError, ValueError) as exc:
        raise SerializeInputNotImplementedError(
            f"{type(serde).__name__}.serialize() returned {type(payload).__name__}, which is "
            "neither bytes, str nor JSON: return one of those"
        ) from exc


class JsonInputSerializer(InputSerializer):
    """Tagged JSON: plain JSON stays plain; arrays, pandas objects and bytes keep their types."""

    name = "json"

    def serialize(self, data: Any) -> str:
        try:
            return codec.dumps(data)
        except TypeError as exc:
            raise SerializeInputNotImplementedError(f"{exc}") from exc

    def deserialize(self, data: Any) -> Any:
        """Decode JSON text (str/bytes) or already parsed JSON values."""
        if isinstance(data, (str, bytes, bytearray, memoryview)):
            return codec.loads(data)
        return codec.decode(data)

    def to_request(self, data: Any) -> tuple[bytes, str]:
        return self.serialize(data).encode("utf-8"), "application/json"


class CustomInputSerializer(InputSerializer):
    """Adapts a user SERDE to the input role; score.py loads it from the artifact."""

    def __init__(self, serde: Any):
        super().__init__()
        self.serde = serde
        self.name = getattr(serde, "name", None) or type(serde).__name__

    def serialize(self, data: Any) -> Any:
        return self.serde.serialize(data)

    def deserialize(self, data: Any) -> Any:
        return self.serde.deserialize(data)

    def to_request(self, data: Any) -> tuple[bytes, str]:
        return _body_of(self.serialize(data), self.serde)


_REFUSED_INPUT_SERIALIZERS = frozenset({"cloudpickle", "pickle", "joblib", "dill"})
_MODEL_INPUT_SERIALIZERS: dict[str, Callable[[], InputSerializer]] = {
    "json": JsonInputSerializer,
}


def register_model_input_serializer(name: str, factory: Callable[[], InputSerializer]) -> None:
    """Make ``name`` resolve to ``factory()`` in :func:`get_model_input_serializer`."""
    if name.lower() in _REFUSED_INPUT_SERIALIZERS:
        raise InputSerializerRefusedError(name)
    _MODEL_INPUT_SERIALIZERS[name.lower()] = factory


def model_input_serializer_names() -> list[str]:
    return sorted(_MODEL_INPUT_SERIALIZERS)


def _refuse_unpickling(serializer: Any) -> None:
    """Raises InputSerializerRefusedError for a SERDE that would unpickle request bodies.

    Model save serializers (cloudpickle, joblib and custom ones alike) load with pickle, and a
    SERDE named like a pickle format presumably does too; a custom input SERDE that wraps one
    of them is refused the same way.
    """
    wrapped = isinstance(serializer, CustomInputSerializer)
    inner = serializer.serde if wrapped else None
    for candidate in (serializer, inner):
        if candidate is None:
            continue
        name = getattr(candidate, "name", None)
        refused_name = isinstance(name, str) and name.lower() in _REFUSED_INPUT_SERIALIZERS
        if isinstance(candidate, ModelSaveSerializer) or refused_name:
            raise InputSerializerRefusedError(
                name if isinstance(name, str) else type(candidate).__name__, candidate
            )


def get_model_input_serializer(serializer: str | SERDE) -> InputSerializer:
    """The model input serializer for a name or a SERDE instance.

    Anything that would unpickle request bodies raises InputSerializerRefusedError.
    """
    if isinstance(serializer, InputSerializer):
        _refuse_unpickling(serializer)
        return serializer
    if isinstance(serializer, str):
        name = serializer.value if isinstance(serializer, Enum) else serializer
        if name.lower() in _REFUSED_INPUT_SERIALIZERS:
            raise InputSerializerRefusedError(name)
        factory = _MODEL_INPUT_SERIALIZERS.get(name.lower())
        if factory is None:
            raise SerializeInputNotImplementedError(
                f"model_input_serializer {name!r} is unknown; use one of "
                f"{', '.join(model_input_serializer_names())} or a SERDE instance"
            )
        resolved = factory()
        _refuse_unpickling(resolved)
        return resolved
    if _is_serde_like(serializer):
        _refuse_unpickling(serializer)
        return CustomInputSerializer(serializer)
    raise SerializeInputNotImplementedError(
        f"model_input_serializer must be a name or a SERDE instance, not "
        f"{type(serializer).__name__}; use 'json'"
    )


def input_loader_of(serializer: Any) -> str:
    """How a generated score.py decodes requests: ``"json"`` or ``"custom"``."""
    return "json" if type(serializer) is JsonInputSerializer else "custom"


def companion_of(serializer: Any) -> Any:
    """The object pickled beside the model for a custom serializer (the user's own SERDE)."""
    return getattr(serializer, "serde", serializer)


__all__ = [
    "MODEL_INPUT_SERDE_FILE_NAME",
    "MODEL_SAVE_SERDE_FILE_NAME",
    "SERDE",
    "CloudpickleModelSaveSerializer",
    "CustomInputSerializer",
    "CustomModelSaveSerializer",
    "HashingWriter",
    "InputSerializer",
    "InputSerializerRefusedError",
    "JoblibModelSaveSerializer",
    "JsonInputSerializer",
    "ModelInputSerializerType",
    "ModelNotPicklableError",
    "ModelSaveSerializer",
    "ModelSerializerType",
    "get_model_input_serializer",
    "get_model_save_serializer",
    "input_loader_of",
    "model_input_serializer_names",
    "model_save_serializer_names",
    "register_model_input_serializer",
    "register_model_save_serializer",
    "score_loader_of",
    "sha256_file",
    "write_hashed",
]
