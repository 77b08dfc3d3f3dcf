"""What the generated score.py runs to read the model and decode requests.

Each serializer declares it as class attributes the score.py templates inline:
``ModelSaveSerializer.score_loader`` is the body of score.py's ``_read_model(path)`` (with
``score_template``, the template that renders score.py) and ``InputSerializer.score_decoder``
the body of its ``deserialize(data)``.

score.py runs without ocimodel, so a snippet imports what it needs beyond what every template
provides: the modules ``hashlib``, ``json``, ``os``, ``pickle``, ``sys`` and ``threading``; the
constants ``ARTIFACT_DIR``, ``MODEL_FILE_NAME``, ``MODEL_SAVE_SERDE_FILE_NAME``,
``MODEL_INPUT_SERDE_FILE_NAME`` and ``PASS_RAW_BODIES`` (whether a body that is not JSON may
reach the model as bytes); and the helpers ``_artifact_file(name)`` (the manifest-checked path
of an artifact file), ``_load_pickled(name)`` (unpickles one), ``decode(value)`` (the wire
codec), ``_LOCK`` and ``_CACHE``. The default declarations load the serializer's pickled
companion (``model_save_serde.pkl`` / ``model_input_serde.pkl``).
"""

from __future__ import annotations

import textwrap
from typing import Any

from ocimodel.serde.registry import _describe

CUSTOM = "custom"
"""The loader name of a serializer that score.py uses through its pickled companion."""
DEFAULT_SCORE_TEMPLATE = "score.py.jinja2"


def _snippet(source: str) -> str:
    """A code snippet without its common indentation and surrounding blank lines."""
    return textwrap.dedent(source).strip()


COMPANION_SCORE_LOADER = _snippet(
    """
    serde = _load_pickled(MODEL_SAVE_SERDE_FILE_NAME)
    if callable(getattr(serde, "load", None)):
        return serde.load(path)
    with open(path, "rb") as fh:
        return serde.deserialize(fh.read())
    """
)
"""score.py's ``_read_model`` body for a serializer pickled beside the model."""

COMPANION_SCORE_DECODER = _snippet(
    """
    with _LOCK:
        if MODEL_INPUT_SERDE_FILE_NAME not in _CACHE:
            _CACHE[MODEL_INPUT_SERDE_FILE_NAME] = _load_pickled(MODEL_INPUT_SERDE_FILE_NAME)
        serde = _CACHE[MODEL_INPUT_SERDE_FILE_NAME]
    return serde.deserialize(data)
    """
)
"""score.py's ``deserialize`` body for an input serializer pickled beside the model."""


class ScoreLoader(str):
    """How a generated score.py reads a model file, as its save serializer declares it.

    The string is the name score.py records as ``MODEL_SERIALIZER`` (``"cloudpickle"``,
    ``"joblib"``, ``"onnx"``, ``"custom"`` for a pickled companion, else the serializer's
    name); ``source`` is the body of score.py's ``_read_model(path)`` and ``template`` the
    template that renders score.py.
    """

    source: str
    template: str

    def __new__(cls, name: str, source: str, template: str = DEFAULT_SCORE_TEMPLATE) -> ScoreLoader:
        loader = super().__new__(cls, name)
        loader.source = _snippet(source)
        loader.template = template
        return loader

    @property
    def uses_companion(self) -> bool:
        return self.source == COMPANION_SCORE_LOADER


class ScoreDecoder(str):
    """How a generated score.py decodes requests, as the input serializer declares it.

    The string is the name score.py records as ``INPUT_SERIALIZER`` (``"json"``, ``"custom"``
    for a pickled companion, else the serializer's name); ``source`` is the body of score.py's
    ``deserialize(data)``.
    """

    source: str

    def __new__(cls, name: str, source: str) -> ScoreDecoder:
        decoder = super().__new__(cls, name)
        decoder.source = _snippet(source)
        return decoder

    @property
    def uses_companion(self) -> bool:
        return self.source == COMPANION_SCORE_DECODER


def _declared_label(serializer: Any, uses_companion: bool) -> str:
    if uses_companion:
        return CUSTOM
    name = getattr(serializer, "name", None)
    if isinstance(name, str) and name and name != CUSTOM:
        return name
    cls = serializer if isinstance(serializer, type) else type(serializer)
    return cls.__name__


def _declaration(serializer: Any, attribute: str, role: str, error: type[Exception]) -> str:
    source = getattr(serializer, attribute, None)
    if not isinstance(source, str) or not source.strip():
        cls = serializer if isinstance(serializer, type) else type(serializer)
        function = "_read_model(path)" if attribute == "score_loader" else "deserialize(data)"
        raise error(
            f"the {role} {_describe(cls)} declares no {attribute}: set the class attribute "
            f"{attribute} to the body of score.py's {function}"
        )
    return source
