"""Renders the artifact's score.py from the jinja2 templates in ``ocimodel/templates``.

:func:`ocimodel.prepare.generate_score_py` is what writes it into an artifact.

The wire codec (:mod:`ocimodel.codec`) is inlined into score.py verbatim, so the decoder a
deployment runs is the very source ocimodel encodes with.
"""

from __future__ import annotations

import ast
import hashlib
import os
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2

from ocimodel import codec
from ocimodel.errors import OcimodelError
from ocimodel.manifest import MANIFEST_NAME as MANIFEST_FILE_NAME
from ocimodel.schema import INPUT_SCHEMA_FILE_NAME
from ocimodel.serde import MODEL_INPUT_SERDE_FILE_NAME, MODEL_SAVE_SERDE_FILE_NAME

TEMPLATES_DIR = Path(__file__).with_name("templates")
SCORE_FILE_NAME = "score.py"
MODEL_LOADERS = ("cloudpickle", "joblib", "onnx", "custom")
INPUT_LOADERS = ("json", "custom")
_CODEC_TEMPLATE = "ocimodel_codec.py"


class ScoreTemplateError(ValueError, OcimodelError):
    """score.py cannot be generated from the given options."""


def _codec_source(name: str) -> str | None:
    if name != _CODEC_TEMPLATE:
        return None
    source = Path(codec.__file__).read_text(encoding="utf-8")
    return "{% raw %}" + source + "{% endraw %}"


@lru_cache(maxsize=1)
def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.ChoiceLoader(
            [jinja2.FileSystemLoader(str(TEMPLATES_DIR)), jinja2.FunctionLoader(_codec_source)]
        ),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
    )
    env.filters["pyrepr"] = repr
    return env


def _check_file_name(model_file_name: Any) -> str:
    if not isinstance(model_file_name, str) or not model_file_name:
        raise ScoreTemplateError(
            f"model_file_name must be a non-empty file name, not {model_file_name!r}; "
            "pass e.g. 'model.pkl'"
        )
    if os.path.basename(model_file_name) != model_file_name or model_file_name in (".", ".."):
        raise ScoreTemplateError(
            f"model_file_name {model_file_name!r} must be a bare file name in the artifact "
            "directory, without folders; pass e.g. 'model.pkl'"
        )
    return model_file_name


def render_score_py(
    *,
    model_file_name: str,
    model_serializer: str = "cloudpickle",
    input_serializer: str = "json",
    template: str | None = None,
    **kwargs: Any,
) -> str:
    """Source text of score.py for a model file and the ways to load it and decode requests.

    ``model_serializer`` is one of ``cloudpickle``, ``joblib``, ``onnx`` or ``custom`` (a user
    SERDE pickled beside the model); ``input_serializer`` is ``json`` or ``custom``. The
    template defaults to ``score_onnx.py.jinja2`` for ONNX models, else ``score.py.jinja2``.
    """
    _check_file_name(model_file_name)
    if model_serializer not in MODEL_LOADERS:
        raise ScoreTemplateError(
            f"model_serializer {model_serializer!r} has no score.py loader; use one of "
            f"{', '.join(MODEL_LOADERS)}"
        )
    if input_serializer not in INPUT_LOADERS:
        raise ScoreTemplateError(
            f"input_serializer {input_serializer!r} has no score.py decoder; use one of "
            f"{', '.join(INPUT_LOADERS)}"
        )
    if template is None:
        template = "score_onnx.py.jinja2" if model_serializer == "onnx" else "score.py.jinja2"
    try:
        jinja_template = _environment().get_template(template)
    except jinja2.TemplateNotFound as exc:
        raise ScoreTemplateError(
            f"score.py template {template!r} is not in {TEMPLATES_DIR}; use score.py.jinja2 "
            "or score_onnx.py.jinja2, or pass score_py_uri for a score.py of your own"
        ) from exc
    context = {
        "manifest_file_name": MANIFEST_FILE_NAME,
        "input_schema_file_name": INPUT_SCHEMA_FILE_NAME,
        "model_save_serde_file_name": MODEL_SAVE_SERDE_FILE_NAME,
        "model_input_serde_file_name": MODEL_INPUT_SERDE_FILE_NAME,
        **kwargs,
        "model_file_name": model_file_name,
        "model_serializer": model_serializer,
        "input_serializer": input_serializer,
    }
    source = jinja_template.render(**context)
    _check_syntax(source)
    return source


_CHECKED_SOURCES: dict[bytes, None] = {}
_CHECKED_SOURCES_MAX = 64


def _check_syntax(source: str) -> None:
    """Parses score.py once per distinct text; the same rendering is not parsed again."""
    key = hashlib.sha256(source.encode("utf-8")).digest()
    if key in _CHECKED_SOURCES:
        return
    ast.parse(source, filename=SCORE_FILE_NAME)
    if len(_CHECKED_SOURCES) >= _CHECKED_SOURCES_MAX:
        _CHECKED_SOURCES.pop(next(iter(_CHECKED_SOURCES)))
    _CHECKED_SOURCES[key] = None
