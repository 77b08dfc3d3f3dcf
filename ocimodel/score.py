"""The score.py stage: render the artifact's score.py, write it, and import it back.

score.py is rendered from the jinja2 templates in ``ocimodel/templates`` (or copied from
``score_py_uri``); :func:`generate_score_py` is its one writer. :func:`load_score` imports an
artifact's score.py in this process through the same loader the model server and verify use
(:mod:`ocimodel.score_runner`).

The wire codec (:mod:`ocimodel.codec`) is inlined into score.py verbatim, so the decoder a
deployment runs is the very source ocimodel encodes with.
"""

from __future__ import annotations

import ast
import contextlib
import hashlib
import os
import sys
import textwrap
import uuid
from functools import lru_cache
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import jinja2

from ocimodel import codec, serde
from ocimodel.errors import (
    ArtifactsNotAvailableError,
    OcimodelError,
    PrepareError,
    SerializeInputNotImplementedError,
    SerializeModelNotImplementedError,
)
from ocimodel.files import ensure_artifact_dir, is_oci_uri, write_converging
from ocimodel.layout import (
    INPUT_SCHEMA_FILE_NAME,
    MANIFEST_NAME,
    MODEL_INPUT_SERDE_FILE_NAME,
    MODEL_SAVE_SERDE_FILE_NAME,
    SCORE_PY,
    TEMPLATES_DIR,
)
from ocimodel.oci.storage import open_uri, uri_exists, uri_isdir
from ocimodel.score_runner import import_score
from ocimodel.serialize import model_file_name_for

if TYPE_CHECKING:
    from ocimodel.oci.auth import AuthLike

_CODEC_TEMPLATE = "ocimodel_codec.py"


class ScoreTemplateError(ValueError, OcimodelError):
    """score.py cannot be generated from the given options."""


def _extra_template(name: str) -> str | tuple[str, str, Any] | None:
    """The inlined wire codec, or a template of one's own given by its absolute path."""
    if name == _CODEC_TEMPLATE:
        source = Path(codec.__file__).read_text(encoding="utf-8")
        return "{% raw %}" + source + "{% endraw %}"
    if not os.path.isabs(name) or not os.path.isfile(name):
        return None
    mtime = os.path.getmtime(name)
    source = Path(name).read_text(encoding="utf-8")
    return source, name, lambda: os.path.isfile(name) and os.path.getmtime(name) == mtime


@lru_cache(maxsize=1)
def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.ChoiceLoader(
            [jinja2.FileSystemLoader(TEMPLATES_DIR), jinja2.FunctionLoader(_extra_template)]
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


def _model_loader(model_serializer: Any) -> serde.ScoreLoader:
    """The loader a model save serializer declares (given as a name, class or instance)."""
    if isinstance(model_serializer, str) and not isinstance(model_serializer, serde.ScoreLoader):
        name = getattr(model_serializer, "value", model_serializer)
        known = [*serde.model_save_serializer_names(), serde.CUSTOM]
        if name.lower() not in known:
            raise ScoreTemplateError(
                f"model_serializer {name!r} has no score.py loader; use one of "
                f"{', '.join(known)}, or register a serializer that declares one"
            )
    try:
        loader = serde.score_loader_of(model_serializer)
    except (serde.SerializerRegistryError, SerializeModelNotImplementedError) as exc:
        raise ScoreTemplateError(f"model_serializer has no score.py loader: {exc}") from exc
    _check_body("_read_model(path)", loader.source, f"model_serializer {str(loader)!r}")
    return loader


def _input_decoder(input_serializer: Any) -> serde.ScoreDecoder:
    """The decoder a model input serializer declares (given as a name, class or instance)."""
    if isinstance(input_serializer, str) and not isinstance(input_serializer, serde.ScoreDecoder):
        name = getattr(input_serializer, "value", input_serializer)
        known = [*serde.model_input_serializer_names(), serde.CUSTOM]
        if name.lower() not in known:
            raise ScoreTemplateError(
                f"input_serializer {name!r} has no score.py decoder; use one of "
                f"{', '.join(known)}, or register a serializer that declares one"
            )
    try:
        decoder = serde.input_loader_of(input_serializer)
    except (serde.SerializerRegistryError, SerializeInputNotImplementedError) as exc:
        raise ScoreTemplateError(f"input_serializer has no score.py decoder: {exc}") from exc
    _check_body("deserialize(data)", decoder.source, f"input_serializer {str(decoder)!r}")
    return decoder


def _check_body(function: str, source: str, owner: str) -> None:
    """A declared snippet must be a valid body of the score.py function it is inlined into."""
    try:
        ast.parse(f"def {function}:\n" + textwrap.indent(source, "    "))
    except SyntaxError as exc:
        raise ScoreTemplateError(
            f"the score.py code {owner} declares is not a valid body of {function}: "
            f"{exc.msg} (line {exc.lineno})"
        ) from exc


def render_score_py(
    *,
    model_file_name: str,
    model_serializer: Any = "cloudpickle",
    input_serializer: Any = "json",
    template: str | None = None,
    **kwargs: Any,
) -> str:
    """Source text of score.py for a model file and the ways to load it and decode requests.

    ``model_serializer`` is a model save serializer (instance or class), a registered name
    (``cloudpickle``, ``joblib``, ``onnx``...), ``custom`` (a user SERDE pickled beside the
    model) or what :func:`ocimodel.serde.score_loader_of` returns; ``input_serializer`` is an
    input serializer, a registered name (``json``...), ``custom`` or what
    :func:`ocimodel.serde.input_loader_of` returns. score.py inlines the loader and the
    decoder they declare; the template defaults to the one the model serializer declares
    (``score_onnx.py.jinja2`` for ONNX, else ``score.py.jinja2``).
    """
    _check_file_name(model_file_name)
    loader = _model_loader(model_serializer)
    decoder = _input_decoder(input_serializer)
    if template is None:
        template = loader.template
    try:
        jinja_template = _environment().get_template(template)
    except jinja2.TemplateNotFound as exc:
        raise ScoreTemplateError(
            f"score.py template {template!r} is not in {TEMPLATES_DIR}; use score.py.jinja2, "
            "score_onnx.py.jinja2 or the absolute path of a template of your own, or pass "
            "score_py_uri for a score.py of your own"
        ) from exc
    context = {
        "manifest_file_name": MANIFEST_NAME,
        "input_schema_file_name": INPUT_SCHEMA_FILE_NAME,
        "model_save_serde_file_name": MODEL_SAVE_SERDE_FILE_NAME,
        "model_input_serde_file_name": MODEL_INPUT_SERDE_FILE_NAME,
        **kwargs,
        "model_file_name": model_file_name,
        "model_serializer": str(loader),
        "input_serializer": str(decoder),
        "model_loader": loader.source,
        "input_decoder": decoder.source,
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
    ast.parse(source, filename=SCORE_PY)
    if len(_CHECKED_SOURCES) >= _CHECKED_SOURCES_MAX:
        _CHECKED_SOURCES.pop(next(iter(_CHECKED_SOURCES)))
    _CHECKED_SOURCES[key] = None


# --- writing score.py into an artifact ---------------------------------------------------------


def generate_score_py(
    artifact_dir: str,
    *,
    model_file_name: str,
    model_save_serializer: Any = "cloudpickle",
    model_input_serializer: Any = "json",
    score_py_uri: str | None = None,
    template: str | None = None,
    force_overwrite: bool = False,
    auth: AuthLike = None,
    **template_kwargs: Any,
) -> str:
    """Writes score.py: rendered from ``template`` (default: the serializer's), or copied
    from ``score_py_uri``; returns its path.

    The one writer of score.py (``ModelArtifact.prepare_score_py`` and the task call it).
    A custom input serializer is pickled beside it so score.py can decode requests.
    """
    folder = ensure_artifact_dir(artifact_dir)
    target = os.path.join(folder, SCORE_PY)
    model_file_name = model_file_name_for(model_save_serializer, model_file_name)
    input_serializer = serde.get_model_input_serializer(model_input_serializer)
    if score_py_uri:
        data = _read_score_py_uri(score_py_uri, auth)
    else:
        text = render_score_py(
            model_file_name=model_file_name,
            model_serializer=serde.get_model_save_serializer(model_save_serializer),
            input_serializer=input_serializer,
            template=template,
            **template_kwargs,
        )
        data = text.encode("utf-8")
    write_converging(target, data, force_overwrite)
    companion = input_serializer.score_companion()
    if companion is not None:
        serde.save_companion_serde(companion, os.path.join(folder, MODEL_INPUT_SERDE_FILE_NAME))
    return target


def _read_score_py_uri(uri: str, auth: AuthLike) -> bytes:
    uri = os.path.expanduser(uri)
    if not uri_exists(uri, auth=auth) or (not is_oci_uri(uri) and uri_isdir(uri)):
        raise PrepareError(
            f"score_py_uri {uri!r} is not a file; pass the path or oci:// URI of a score.py "
            "that defines load_model() and predict(data, model)."
        )
    with open_uri(uri, "rb", auth=auth) as fh:
        return fh.read()


# --- importing score.py back -------------------------------------------------------------------


def load_score(artifact_dir: str | os.PathLike) -> ModuleType:
    """Imports the artifact's score.py in this process, under a name of its own, with the
    artifact folder on ``sys.path`` only while it is imported."""
    folder = os.path.abspath(os.fspath(artifact_dir))
    if not os.path.isfile(os.path.join(folder, SCORE_PY)):
        raise ArtifactsNotAvailableError(
            f"{os.path.join(folder, SCORE_PY)} does not exist; run prepare() before reload()."
        )
    name = f"ocimodel_score_{uuid.uuid4().hex}"
    sys.path.insert(0, folder)
    try:
        return import_score(folder, name)
    finally:
        sys.modules.pop(name, None)
        with contextlib.suppress(ValueError):
            sys.path.remove(folder)
