"""Generates the artifact's score.py from the jinja2 templates in ``ocimodel/templates``.

The wire codec (:mod:`ocimodel.codec`) is inlined into score.py verbatim, so the decoder a
deployment runs is the very source ocimodel encodes with.
"""

from __future__ import annotations

import ast
import os
import shutil
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2

from ocimodel import codec
from ocimodel.errors import OcimodelError
from ocimodel.serde import (
    MODEL_INPUT_SERDE_FILE_NAME,
    MODEL_SAVE_SERDE_FILE_NAME,
    SERDE,
    companion_of,
    get_model_input_serializer,
    get_model_save_serializer,
    input_loader_of,
    save_companion_serde,
    score_loader_of,
)

TEMPLATES_DIR = Path(__file__).with_name("templates")
MANIFEST_FILE_NAME = "ocimodel-manifest.json"
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
        "model_save_serde_file_name": MODEL_SAVE_SERDE_FILE_NAME,
        "model_input_serde_file_name": MODEL_INPUT_SERDE_FILE_NAME,
        **kwargs,
        "model_file_name": model_file_name,
        "model_serializer": model_serializer,
        "input_serializer": input_serializer,
    }
    source = jinja_template.render(**context)
    ast.parse(source, filename=SCORE_FILE_NAME)
    return source


def write_score_py(
    artifact_dir: str | os.PathLike,
    *,
    model_file_name: str,
    model_save_serializer: str | SERDE = "cloudpickle",
    model_input_serializer: str | SERDE = "json",
    score_py_uri: str | None = None,
    auth: dict | None = None,
    **kwargs: Any,
) -> Path:
    """Write score.py (generated, or copied from ``score_py_uri``) into ``artifact_dir``.

    A custom input SERDE is pickled beside it so that score.py decodes requests with it.
    Returns the path of score.py.
    """
    target_dir = Path(artifact_dir)
    if not target_dir.is_dir():
        raise ScoreTemplateError(
            f"artifact_dir {str(target_dir)!r} is not a directory; create it or pass another"
        )
    saver = get_model_save_serializer(model_save_serializer)
    reader = get_model_input_serializer(model_input_serializer)
    target = target_dir / SCORE_FILE_NAME
    if score_py_uri is not None:
        _copy_score_py(score_py_uri, target, auth)
    else:
        source = render_score_py(
            model_file_name=model_file_name,
            model_serializer=score_loader_of(saver),
            input_serializer=input_loader_of(reader),
            **kwargs,
        )
        tmp = target.with_name(f".{SCORE_FILE_NAME}.tmp")
        tmp.write_text(source, encoding="utf-8")
        os.replace(tmp, target)
    if input_loader_of(reader) == "custom":
        save_companion_serde(companion_of(reader), target_dir / MODEL_INPUT_SERDE_FILE_NAME)
    return target


def _copy_score_py(uri: str, target: Path, auth: dict | None) -> None:
    """Copy a user's score.py from a local path or an oci:// URI."""
    tmp = target.with_name(f".{SCORE_FILE_NAME}.tmp")
    try:
        if uri.startswith("oci://"):
            from ocimodel.oci.storage import open_uri, uri_exists

            if not uri_exists(uri, auth=auth):
                raise ScoreTemplateError(_missing_score_py(uri))
            with open_uri(uri, "rb", auth=auth) as src, open(tmp, "wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
        else:
            source = Path(os.path.expanduser(uri))
            if not source.is_file():
                raise ScoreTemplateError(_missing_score_py(uri))
            shutil.copyfile(source, tmp)
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()


def _missing_score_py(uri: str) -> str:
    return (
        f"score_py_uri {uri!r} is not a file; pass the path or oci:// URI of a score.py that "
        "defines load_model() and predict(data, model)"
    )
