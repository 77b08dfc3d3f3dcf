"""A Prefect flow that stores short summaries of its data parameters instead of the data.

Prefect records every flow run's parameters in its database (``Flow.serialize_parameters``).
Training samples and models do not belong there: they can be large and can hold personal
data. :class:`SummarizedParamsFlow` stores JSON scalars and short strings as they are and
everything else as a summary such as ``"<DataFrame 150x4>"``; the flow function still gets
the real objects.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from prefect import Flow

MAX_STORED_STR = 1024
"""Longer strings are stored as ``<str of N chars>``."""


def summarize_value(value: Any) -> str:
    """A short description of ``value`` that names its type and size, never its content."""
    kind = type(value).__name__
    shape = getattr(value, "shape", None)
    if isinstance(shape, tuple):
        if len(shape) == 2 and hasattr(value, "columns"):
            return f"<{kind} {shape[0]}x{shape[1]}>"
        dtype = getattr(value, "dtype", None)
        if len(shape) == 1 and hasattr(value, "index"):
            return f"<{kind} {shape[0]} {dtype}>"
        return f"<{kind} {shape} {dtype}>" if dtype is not None else f"<{kind} {shape}>"
    if isinstance(value, str):
        return f"<str of {len(value)} chars>"
    if isinstance(value, (list, tuple, set, frozenset, dict)):
        return f"<{kind} of {len(value)}>"
    return f"<{kind}>"


def _is_small_scalar(value: Any) -> bool:
    if value is None or isinstance(value, (bool, int, float)):
        return True
    return isinstance(value, str) and len(value) <= MAX_STORED_STR


class SummarizedParamsFlow(Flow):
    """A flow whose stored run parameters hold summaries of data, not the data.

    ``data_params`` are always summarized (unless None); any other parameter is stored as is
    when it is None, a bool, a number or a short string, and summarized otherwise.
    """

    def __init__(self, fn: Callable[..., Any], *, data_params: Iterable[str] = (), **kwargs: Any):
        self.data_params = frozenset(data_params)
        super().__init__(fn, **kwargs)

    def with_options(self, **options: Any) -> SummarizedParamsFlow:
        """A copy with other options that still summarizes the same parameters."""
        copy = super().with_options(**options)
        copy.__class__ = type(self)
        copy.data_params = self.data_params
        return copy

    def serialize_parameters(self, parameters: dict[str, Any]) -> dict[str, Any]:
        """What Prefect stores for a run: summaries in place of data values."""
        stored = {}
        for key, value in parameters.items():
            keep = _is_small_scalar(value) and (key not in self.data_params or value is None)
            stored[key] = value if keep else summarize_value(value)
        return super().serialize_parameters(stored)


def summarized_flow(
    *, data_params: Iterable[str] = (), **flow_kwargs: Any
) -> Callable[[Callable[..., Any]], SummarizedParamsFlow]:
    """Like ``@flow(...)``, building a :class:`SummarizedParamsFlow`."""

    def decorate(fn: Callable[..., Any]) -> SummarizedParamsFlow:
        return SummarizedParamsFlow(fn, data_params=data_params, **flow_kwargs)

    return decorate
