"""Model input serializers: turn verify/predict payloads into request bodies and back.

Tagged JSON and custom SERDEs. Anything that would make a deployment unpickle request bodies
(pickle-format names, model save serializers, SERDEs wrapping them) is refused.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from enum import Enum
from typing import Any

from ocimodel import codec
from ocimodel.errors import SerializeInputNotImplementedError
from ocimodel.serde.model import ModelSaveSerializer, companion_of
from ocimodel.serde.protocol import SERDE, _is_serde_like
from ocimodel.serde.registry import _name_of, _Registry
from ocimodel.serde.score_code import (
    COMPANION_SCORE_DECODER,
    CUSTOM,
    ScoreDecoder,
    _declaration,
    _declared_label,
    _snippet,
)


class ModelInputSerializerType(str, Enum):
    """Names of the built-in model input serializers."""

    JSON = "json"


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


class InputSerializer(SERDE):
    """Serializes verify/predict payloads into request bodies and back.

    ``score_decoder`` (the body of score.py's ``deserialize(data)``) declares how the generated
    score.py decodes a request. By default score.py unpickles the serializer itself, written
    beside score.py (``model_input_serde.pkl``), and calls its ``deserialize``; a subclass that
    overrides ``deserialize`` without declaring its own ``score_decoder`` gets that default
    again.
    """

    name = "custom"
    score_decoder: str = COMPANION_SCORE_DECODER

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "score_decoder" not in cls.__dict__ and "deserialize" in cls.__dict__:
            cls.score_decoder = COMPANION_SCORE_DECODER

    def score_companion(self) -> Any:
        """What is pickled beside score.py for its decoder, or None.

        The serializer (a custom one's wrapped SERDE) when it declares the companion decoder.
        """
        if _snippet(self.score_decoder or "") == COMPANION_SCORE_DECODER:
            return companion_of(self)
        return None

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
    score_decoder = """
        if isinstance(data, (bytes, bytearray)):
            try:
                parsed = json.loads(bytes(data).decode("utf-8"))
            except ValueError:
                if PASS_RAW_BODIES:
                    return data
                raise
            return decode(parsed)
        return decode(data)
    """

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
    """Adapts a user SERDE to the input role; score.py decodes requests with that SERDE,
    pickled beside it."""

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
_MODEL_INPUT_SERIALIZERS = _Registry("model_input_serializer", {"json": JsonInputSerializer})


def register_model_input_serializer(
    name: str, factory: Callable[[], InputSerializer] | str, clobber: bool = False
) -> None:
    """Make ``name`` (case-insensitive) resolve to ``factory()`` in
    :func:`get_model_input_serializer`.

    ``factory`` is an :class:`InputSerializer` subclass (or any callable returning one), or its
    dotted path, imported the first time the name is used. Names of pickle formats raise
    :class:`InputSerializerRefusedError`; a name already registered to something else raises
    :class:`SerializerAlreadyRegisteredError` unless ``clobber=True``.
    """
    if isinstance(name, str) and name.lower() in _REFUSED_INPUT_SERIALIZERS:
        raise InputSerializerRefusedError(name)
    _MODEL_INPUT_SERIALIZERS.register(name, factory, clobber)


def unregister_model_input_serializer(name: str) -> Any:
    """Forget ``name``; return what it was registered as (None if it was not)."""
    return _MODEL_INPUT_SERIALIZERS.unregister(name)


def model_input_serializer_names() -> list[str]:
    return _MODEL_INPUT_SERIALIZERS.names()


def _model_input_factory(name: str) -> Any:
    if name.lower() in _REFUSED_INPUT_SERIALIZERS:
        raise InputSerializerRefusedError(name)
    factory = _MODEL_INPUT_SERIALIZERS.get(name)
    if factory is None:
        raise SerializeInputNotImplementedError(
            f"model_input_serializer {name!r} is unknown; use one of "
            f"{', '.join(model_input_serializer_names())} or a SERDE instance"
        )
    return factory


def _as_input_serializer(value: Any, name: str) -> InputSerializer:
    if isinstance(value, InputSerializer):
        return value
    if _is_serde_like(value):
        return CustomInputSerializer(value)
    raise SerializeInputNotImplementedError(
        f"model_input_serializer {name!r} made a {type(value).__name__}, which is neither an "
        "InputSerializer nor a SERDE (serialize/deserialize)"
    )


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
        name = _name_of(serializer)
        resolved = _as_input_serializer(_model_input_factory(name)(), name)
        _refuse_unpickling(resolved)
        return resolved
    if _is_serde_like(serializer):
        _refuse_unpickling(serializer)
        return CustomInputSerializer(serializer)
    raise SerializeInputNotImplementedError(
        f"model_input_serializer must be a name or a SERDE instance, not "
        f"{type(serializer).__name__}; use 'json'"
    )


def input_loader_of(serializer: Any) -> ScoreDecoder:
    """How a generated score.py decodes requests, as the input serializer declares it.

    ``serializer`` is an :class:`InputSerializer` (instance or class), a registered name,
    ``"custom"`` or a user SERDE (both decoded through the pickled companion). The result
    compares equal to ``"json"`` or ``"custom"`` for those.
    """
    if isinstance(serializer, ScoreDecoder):
        return serializer
    if isinstance(serializer, str):
        name = _name_of(serializer)
        if name.lower() == CUSTOM:
            return ScoreDecoder(CUSTOM, COMPANION_SCORE_DECODER)
        serializer = _model_input_factory(name)
        if not isinstance(serializer, type):
            serializer = _as_input_serializer(serializer(), name)
    is_class = isinstance(serializer, type) and issubclass(serializer, InputSerializer)
    if is_class or isinstance(serializer, InputSerializer):
        source = _declaration(
            serializer, "score_decoder", "model_input_serializer", SerializeInputNotImplementedError
        )
        uses_companion = _snippet(source) == COMPANION_SCORE_DECODER
        return ScoreDecoder(_declared_label(serializer, uses_companion), source)
    if _is_serde_like(serializer):
        return ScoreDecoder(CUSTOM, COMPANION_SCORE_DECODER)
    raise SerializeInputNotImplementedError(
        f"{type(serializer).__name__} is not a model input serializer; use one of "
        f"{', '.join(model_input_serializer_names())}, an InputSerializer or a SERDE instance"
    )
