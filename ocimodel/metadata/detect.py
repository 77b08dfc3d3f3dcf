"""Framework, version, algorithm and hyperparameters of a model, read from its class.

Nothing is imported to find out: the framework comes from the modules the model's class (or a
base class) already lives in, the version from that loaded module or the installed package.
"""

from __future__ import annotations

import math
import sys
import types
from dataclasses import dataclass
from typing import Any

from ocimodel.metadata.enums import Framework

# top-level module -> (Framework value, distribution name for the version)
FRAMEWORK_MODULES: dict[str, tuple[str, str]] = {
    "sklearn": (Framework.SCIKIT_LEARN, "scikit-learn"),
    "xgboost": (Framework.XGBOOST, "xgboost"),
    "lightgbm": (Framework.LIGHT_GBM, "lightgbm"),
    "torch": (Framework.PYTORCH, "torch"),
    "tensorflow": (Framework.TENSORFLOW, "tensorflow"),
    "keras": (Framework.KERAS, "keras"),
    "statsmodels": (Framework.STATSMODELS, "statsmodels"),
    "prophet": (Framework.PROPHET, "prophet"),
    "sktime": (Framework.SKTIME, "sktime"),
    "spacy": (Framework.SPACY, "spacy"),
    "transformers": (Framework.TRANSFORMERS, "transformers"),
    "pyod": (Framework.PYOD, "pyod"),
    "gensim": (Framework.GENSIM, "gensim"),
    "flair": (Framework.FLAIR, "flair"),
    "nltk": (Framework.NLTK, "nltk"),
    "emcee": (Framework.EMCEE, "emcee"),
    "pystan": (Framework.PYSTAN, "pystan"),
    "pymc3": (Framework.PYMC3, "pymc3"),
    "mxnet": (Framework.MXNET, "mxnet"),
    "cuml": (Framework.CUML, "cuml"),
    "h2o": (Framework.H20, "h2o"),
    "pyspark": (Framework.SPARK, "pyspark"),
}

_MAX_ARRAY_ITEMS = 1000


@dataclass(frozen=True)
class FrameworkInfo:
    """What detection found; every field is None for a model of no known framework."""

    framework: str | None = None
    framework_version: str | None = None
    algorithm: str | None = None
    hyperparameters: dict[str, Any] | None = None


def _framework_module(model: Any) -> str | None:
    """The known top-level module of the model's class or, failing that, of a base class."""
    for klass in type(model).__mro__:
        root = (getattr(klass, "__module__", None) or "").split(".", 1)[0]
        if root in FRAMEWORK_MODULES:
            return root
    return None


def framework_version(root_module: str) -> str | None:
    """Version of an already-loaded framework, from ``__version__`` or package metadata."""
    module = sys.modules.get(root_module)
    version = getattr(module, "__version__", None)
    if isinstance(version, str) and version:
        return version
    import importlib.metadata

    try:
        return importlib.metadata.version(FRAMEWORK_MODULES[root_module][1])
    except (importlib.metadata.PackageNotFoundError, KeyError):
        return None


def json_safe(value: Any) -> Any:
    """``value`` as strict JSON data: objects become readable strings, NaN/inf strings."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, (set, frozenset)):
        return sorted((json_safe(v) for v in value), key=repr)
    if isinstance(value, type):
        return f"{value.__module__}.{value.__qualname__}"
    if isinstance(value, (types.FunctionType, types.BuiltinFunctionType, types.MethodType)):
        return f"{getattr(value, '__module__', None) or ''}.{value.__qualname__}".lstrip(".")
    if type(value).__module__ == "numpy":
        if hasattr(value, "tolist") and getattr(value, "size", 0) <= _MAX_ARRAY_ITEMS:
            return json_safe(value.tolist())
        return repr(value)
    return repr(value)


def model_hyperparameters(model: Any) -> dict[str, Any] | None:
    """``get_params(deep=False)`` as JSON-safe data, or None if the model has none."""
    get_params = getattr(model, "get_params", None)
    if not callable(get_params):
        return None
    try:
        params = get_params(deep=False)
    except Exception:
        return None
    return json_safe(params) if isinstance(params, dict) else None


def detect_framework(model: Any) -> FrameworkInfo:
    """Framework, version, algorithm (class name) and hyperparameters of ``model``."""
    root = _framework_module(model)
    if root is None:
        return FrameworkInfo()
    return FrameworkInfo(
        framework=FRAMEWORK_MODULES[root][0],
        framework_version=framework_version(root),
        algorithm=type(model).__name__,
        hyperparameters=model_hyperparameters(model),
    )
