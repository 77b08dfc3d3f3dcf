"""ONNX export of scikit-learn estimators (``as_onnx=True``), behind the ``onnx`` extra.

skl2onnx, onnx and onnxruntime are imported only here and only when used; without them every
entry point raises :class:`~ocimodel.errors.MissingExtraError` naming the extra.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Sequence
from typing import Any, BinaryIO

from ocimodel.errors import MissingExtraError, OcimodelError
from ocimodel.serde import ModelSaveSerializer

ONNX_EXTRA = "onnx"
_EXTRA_MODULES = ("skl2onnx", "onnx", "onnxruntime")


class OnnxConversionError(ValueError, OcimodelError):
    """The model or its initial_types cannot be converted to ONNX."""


def require_onnx_extra(feature: str = "as_onnx=True") -> None:
    """Raise MissingExtraError naming the ``onnx`` extra unless its packages import."""
    missing = []
    for name in _EXTRA_MODULES:
        try:
            importlib.import_module(name)
        except ImportError:
            missing.append(name)
    if missing:
        error = MissingExtraError(feature, ONNX_EXTRA)
        error.missing = tuple(missing)
        raise error


def _is_sklearn_estimator(model: Any) -> bool:
    module = type(model).__module__ or ""
    return module.split(".", 1)[0] == "sklearn" or (
        callable(getattr(model, "get_params", None)) and callable(getattr(model, "fit", None))
    )


def _check_initial_types(initial_types: Any) -> list[tuple[str, Any]]:
    if not isinstance(initial_types, Sequence) or isinstance(initial_types, str):
        raise OnnxConversionError(
            f"initial_types must be a list of (name, type) tuples, not {initial_types!r}; "
            "e.g. [('input', FloatTensorType([None, 4]))] from skl2onnx.common.data_types"
        )
    checked = []
    for item in initial_types:
        if (
            not isinstance(item, (tuple, list))
            or len(item) != 2
            or not isinstance(item[0], str)
            or not hasattr(item[1], "to_onnx_type")
        ):
            raise OnnxConversionError(
                f"initial_types entry {item!r} is not a (name, skl2onnx type) tuple; "
                "e.g. ('input', FloatTensorType([None, 4]))"
            )
        checked.append((item[0], item[1]))
    return checked


def _default_initial_types(model: Any) -> list[tuple[str, Any]]:
    from skl2onnx.common.data_types import FloatTensorType

    n_features = getattr(model, "n_features_in_", None)
    if n_features is None:
        raise OnnxConversionError(
            f"cannot infer the ONNX input of {type(model).__name__}: pass initial_types, "
            "e.g. [('input', FloatTensorType([None, n_features]))], or X_sample"
        )
    return [("input", FloatTensorType([None, int(n_features)]))]


def to_onnx(
    model: Any,
    initial_types: list[tuple[str, Any]] | None = None,
    X_sample: Any = None,
    target_opset: int | None = None,
) -> Any:
    """Convert a fitted scikit-learn estimator or pipeline to an ``onnx.ModelProto``.

    Input types come from ``initial_types``, else from ``X_sample``, else float features of
    ``model.n_features_in_``.
    """
    require_onnx_extra()
    import onnx

    if isinstance(model, onnx.ModelProto):
        return model
    if not _is_sklearn_estimator(model):
        raise OnnxConversionError(
            f"as_onnx=True converts scikit-learn estimators; {type(model).__name__} is not "
            "one. Use as_onnx=False (cloudpickle) or convert the model to ONNX yourself."
        )
    from skl2onnx import convert_sklearn
    from skl2onnx import to_onnx as skl_to_onnx

    try:
        if initial_types is not None:
            return convert_sklearn(
                model, initial_types=_check_initial_types(initial_types), target_opset=target_opset
            )
        if X_sample is not None:
            return skl_to_onnx(model, _sample_for_onnx(X_sample), target_opset=target_opset)
        return convert_sklearn(
            model, initial_types=_default_initial_types(model), target_opset=target_opset
        )
    except OnnxConversionError:
        raise
    except Exception as exc:
        detail = str(exc).strip().rstrip(".") or type(exc).__name__
        raise OnnxConversionError(
            f"skl2onnx could not convert {type(model).__name__}: {detail}. "
            f"{_extension_dtype_hint(X_sample, detail)}Check initial_types (one entry per model "
            "input) or use as_onnx=False."
        ) from exc


def _extension_dtype_hint(X_sample: Any, detail: str) -> str:
    """A sentence naming X_sample's nullable/extension dtypes, which skl2onnx cannot type."""
    import numpy as np

    if hasattr(X_sample, "columns") and hasattr(X_sample, "dtypes"):
        dtypes = list(X_sample.dtypes.items())
    elif hasattr(X_sample, "index") and hasattr(X_sample, "dtype"):
        dtypes = [(X_sample.name, X_sample.dtype)]
    else:
        dtypes = []
    extension = {str(name): str(dtype) for name, dtype in dtypes if not isinstance(dtype, np.dtype)}
    if extension:
        return (
            f"X_sample has nullable/extension dtypes skl2onnx cannot read ({extension}): cast "
            "them to numpy dtypes first, e.g. X_sample.astype('float64'), or pass initial_types. "
        )
    if "Unsupported type" in detail:
        return (
            "Nullable/extension dtypes (Int64, boolean, string, category) are not supported: "
            "cast the sample to numpy dtypes first, e.g. X.astype('float64'), or pass "
            "initial_types. "
        )
    return ""


def _sample_for_onnx(X_sample: Any) -> Any:
    import numpy as np

    if hasattr(X_sample, "dtypes") and hasattr(X_sample, "columns"):
        doubles = {
            name: np.float32 for name, dtype in X_sample.dtypes.items() if dtype == np.float64
        }
        return X_sample.head(1).astype(doubles)
    array = np.asarray(X_sample)
    if array.dtype.kind == "f" and array.dtype != np.float32:
        array = array.astype(np.float32)
    if array.dtype.kind in "iu":
        array = array.astype(np.float32)
    return array[:1] if array.ndim > 1 else array.reshape(1, -1)


class OnnxModelSaveSerializer(ModelSaveSerializer):
    """Saves scikit-learn models as ONNX (``model.onnx``); loads them as onnxruntime sessions.

    Registered in :mod:`ocimodel.serde` as ``"onnx"`` by its dotted path; its score.py is
    rendered from ``score_onnx.py.jinja2``, which feeds requests to the session as tensors.
    """

    name = "onnx"
    file_name = "model.onnx"
    extension = ".onnx"
    score_template = "score_onnx.py.jinja2"
    score_loader = """
        import onnxruntime

        return onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
    """

    def __init__(
        self,
        initial_types: list[tuple[str, Any]] | None = None,
        X_sample: Any = None,
        target_opset: int | None = None,
    ):
        super().__init__()
        require_onnx_extra()
        self.initial_types = initial_types
        self.X_sample = X_sample
        self.target_opset = target_opset

    def serialize(self, data: Any) -> bytes:
        proto = to_onnx(data, self.initial_types, self.X_sample, self.target_opset)
        return proto.SerializeToString()

    def deserialize(self, data: Any) -> Any:
        import onnxruntime

        return onnxruntime.InferenceSession(bytes(data), providers=["CPUExecutionProvider"])

    def dump(self, model: Any, file: BinaryIO) -> None:
        file.write(self.serialize(model))

    def load(self, path: str | os.PathLike) -> Any:
        import onnxruntime

        return onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
