"""Input/output data schemas generated from a data sample.

A schema lists one :class:`Attribute` per column: name, dtype, feature type, order, whether
values are required (the sample has no missing values) and a :class:`Domain` (describe-like
stats and constraints). Feature types, decided from the dtype and, for strings, the sample:

- ``boolean``: bool/``boolean`` dtypes, or object columns holding only bools
- ``integer``: signed/unsigned integer dtypes, nullable ``Int*``/``UInt*`` included
- ``continuous``: float dtypes (``Float*`` included) and object columns of numbers
- ``categorical``: ``category`` dtype, or strings with at most 20 distinct values that repeat
- ``text``: other strings
- ``datetime`` / ``timedelta``: datetime64 (tz-aware included) / timedelta64 dtypes
- ``tensor``: a single attribute for arrays of three or more dimensions (images, sequences)
- ``unknown``: anything else (mixed objects, complex numbers, all-missing columns)

The serialized form is ``{"schema": [attribute dicts], "version": "1.1"}``. The catalog takes a
schema of at most 32,000 bytes (UTF-8 bytes of :meth:`Schema.to_json`); a larger one is kept
as a file in the artifact instead (:func:`schema_for_catalog`).
"""

from __future__ import annotations

import json
import math
import os
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ocimodel.errors import OcimodelError
from ocimodel.files import ensure_artifact_dir, write_converging
from ocimodel.layout import INPUT_SCHEMA_FILE_NAME, OUTPUT_SCHEMA_FILE_NAME
from ocimodel.metadata.fileio import write_text

SCHEMA_MAX_BYTES = 32000
SCHEMA_VERSION = "1.1"
DATA_SCHEMA_MAX_COL_NUM = 2000
CATEGORICAL_MAX_UNIQUE = 20
_TOP_MAX_CHARS = 255


class FeatureType:
    """Feature types an attribute can have (see the module docstring for the rules)."""

    BOOLEAN = "boolean"
    INTEGER = "integer"
    CONTINUOUS = "continuous"
    CATEGORICAL = "categorical"
    TEXT = "text"
    DATETIME = "datetime"
    TIMEDELTA = "timedelta"
    TENSOR = "tensor"
    UNKNOWN = "unknown"


class SchemaSampleError(ValueError, OcimodelError):
    """The sample cannot describe a schema (unsupported type, no rows, no columns)."""


class DataSchemaTooLarge(SchemaSampleError):
    """The sample has more columns than ``max_col_num`` (raised by ``Schema.from_sample``;
    prepare turns it into a SchemaTooWideWarning and goes on without the schema)."""

    def __init__(self, columns: int, max_col_num: int):
        self.columns, self.max_col_num = columns, max_col_num
        super().__init__(
            f"The sample has {columns} columns, more than max_col_num={max_col_num}; no schema "
            f"is generated. Raise max_col_num (to at least {columns}) or pass fewer columns."
        )


class SchemaTooWideWarning(UserWarning):
    """prepare got a sample with more columns than ``max_col_num`` and made no schema for it."""

    def __init__(self, columns: int, max_col_num: int, file_name: str = INPUT_SCHEMA_FILE_NAME):
        self.columns, self.max_col_num = columns, max_col_num
        which = "output" if file_name == OUTPUT_SCHEMA_FILE_NAME else "input"
        super().__init__(
            f"The {which} sample has {columns} columns, more than max_col_num={max_col_num}; "
            f"the model is prepared without an {which} schema. To get one, pass "
            f"max_col_num={columns} (or more) or a sample with fewer columns."
        )


class SchemaFormatError(ValueError, OcimodelError):
    """Serialized schema text or dict does not have the schema's structure."""


class SchemaSizeWarning(UserWarning):
    """A schema is too large for the model catalog and stays only as an artifact file."""


@dataclass
class Domain:
    """What values an attribute takes: a short description, stats and constraints."""

    values: str = ""
    stats: dict[str, Any] = field(default_factory=dict)
    constraints: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Attribute:
    """One column of a schema."""

    name: str
    dtype: str
    feature_type: str
    order: int
    required: bool = True
    description: str = ""
    domain: Domain = field(default_factory=Domain)

    def to_dict(self) -> dict[str, Any]:
        """The attribute as a JSON-ready dictionary (fields in declaration order)."""
        domain = self.domain
        return {
            "name": self.name,
            "dtype": self.dtype,
            "feature_type": self.feature_type,
            "order": self.order,
            "required": self.required,
            "description": self.description,
            "domain": {
                "values": domain.values,
                "stats": _plain_copy(domain.stats),
                "constraints": _plain_copy(domain.constraints),
            },
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Attribute:
        """Build from ``to_dict()`` output (SchemaFormatError if a field is missing or wrong)."""
        if not isinstance(data, dict):
            raise SchemaFormatError(f"A schema attribute must be a dict, got {data!r:.100}.")
        missing = [k for k in ("name", "dtype", "feature_type", "order") if k not in data]
        if missing:
            raise SchemaFormatError(
                f"Schema attribute {data.get('name')!r} lacks {missing}; every attribute needs "
                "name, dtype, feature_type and order."
            )
        domain = data.get("domain") or {}
        if not isinstance(domain, dict):
            raise SchemaFormatError(f"The domain of {data['name']!r} must be a dict.")
        unknown = set(data) - {f for f in cls.__dataclass_fields__}
        if unknown:
            raise SchemaFormatError(
                f"Schema attribute {data['name']!r} has unknown fields {sorted(unknown)}."
            )
        return cls(
            name=str(data["name"]),
            dtype=str(data["dtype"]),
            feature_type=str(data["feature_type"]),
            order=int(data["order"]),
            required=bool(data.get("required", True)),
            description=str(data.get("description") or ""),
            domain=Domain(
                values=str(domain.get("values") or ""),
                stats=dict(domain.get("stats") or {}),
                constraints=list(domain.get("constraints") or []),
            ),
        )


def _plain_copy(value: Any) -> Any:
    """A copy of nested dicts and lists; other values are shared (they are immutable)."""
    if isinstance(value, dict):
        return {k: _plain_copy(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain_copy(v) for v in value]
    return value


class Schema:
    """An ordered list of attributes, serializable to the catalog's schema JSON."""

    def __init__(self, attributes: list[Attribute] | None = None, version: str = SCHEMA_VERSION):
        self.attributes: list[Attribute] = list(attributes or [])
        self.version = version
        names = [a.name for a in self.attributes]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise SchemaFormatError(
                f"Column names must be unique in a schema; duplicated: {duplicates}. "
                "Rename the columns of the sample."
            )

    @classmethod
    def from_sample(cls, data: Any, max_col_num: int = DATA_SCHEMA_MAX_COL_NUM) -> Schema:
        """Describe ``data`` (list, tuple, ndarray, Series or DataFrame)."""
        if isinstance(max_col_num, bool) or not isinstance(max_col_num, int) or max_col_num < 1:
            raise SchemaSampleError(
                f"max_col_num must be a positive int, got {max_col_num!r}; "
                f"the default is {DATA_SCHEMA_MAX_COL_NUM}."
            )
        sample = _as_frame_or_tensor(data)
        if isinstance(sample, np.ndarray):
            return cls([_tensor_attribute(sample)])
        if sample.shape[1] > max_col_num:
            raise DataSchemaTooLarge(sample.shape[1], max_col_num)
        names = [str(c) for c in sample.columns]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise SchemaSampleError(
                f"The sample has duplicated column names {duplicates}; rename them so each "
                "column can be told apart in the schema."
            )
        items = enumerate(sample.items())
        return cls([_column_attribute(str(name), column, i) for i, (name, column) in items])

    # --- access ---------------------------------------------------------------------------

    @property
    def keys(self) -> list[str]:
        """Attribute names in order."""
        return [a.name for a in self.attributes]

    def __getitem__(self, name: str) -> Attribute:
        for attribute in self.attributes:
            if attribute.name == name:
                return attribute
        raise KeyError(f"The schema has no attribute {name!r}; it has {self.keys[:20]}.")

    def __len__(self) -> int:
        return len(self.attributes)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Schema) and self.to_dict() == other.to_dict()

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Schema({len(self)} attributes: {self.keys[:10]}{'...' if len(self) > 10 else ''})"

    # --- serialization --------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """``{"schema": [attribute dicts], "version": ...}``."""
        return {"schema": [a.to_dict() for a in self.attributes], "version": self.version}

    def to_json(self) -> str:
        """JSON text of :meth:`to_dict` (what the catalog stores as input/output schema)."""
        return json.dumps(self.to_dict(), allow_nan=False)

    def size(self) -> int:
        """UTF-8 bytes of :meth:`to_json`, the number compared with SCHEMA_MAX_BYTES."""
        return len(self.to_json().encode("utf-8"))

    def to_json_file(self, file_path: str, storage_options: dict | None = None) -> str:
        """Write the schema JSON to a local path or oci:// URI; return the target."""
        return write_text(self.to_json(), file_path, INPUT_SCHEMA_FILE_NAME, storage_options)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Schema:
        """Build from ``to_dict()`` output."""
        if not isinstance(data, dict) or not isinstance(data.get("schema"), list):
            raise SchemaFormatError(
                "A schema must be a dict like {'schema': [attributes], 'version': '1.1'}, "
                f"got {str(data)[:100]!r}."
            )
        return cls(
            [Attribute.from_dict(a) for a in data["schema"]],
            version=str(data.get("version") or SCHEMA_VERSION),
        )

    @classmethod
    def from_json(cls, text: str | bytes) -> Schema:
        """Build from JSON text."""
        try:
            data = json.loads(text)
        except (TypeError, ValueError) as exc:
            raise SchemaFormatError(f"The schema is not valid JSON ({exc}).") from None
        return cls.from_dict(data)

    @classmethod
    def from_file(cls, file_path: str | os.PathLike) -> Schema:
        """Read a schema JSON file (as written by :meth:`to_json_file`)."""
        path = os.fspath(file_path)
        if not os.path.isfile(path):
            raise SchemaFormatError(f"No schema file at {path!r}; check the path.")
        with open(path, encoding="utf-8") as fh:
            return cls.from_json(fh.read())


def catalog_json(
    schema: Schema | None, max_bytes: int = SCHEMA_MAX_BYTES, text: str | None = None
) -> str | None:
    """The schema JSON the catalog accepts, or None when there is no schema or its JSON is
    larger than ``max_bytes`` (then it lives only as a file in the artifact)."""
    if schema is None:
        return None
    text = schema.to_json() if text is None else text
    return text if len(text.encode("utf-8")) <= max_bytes else None


def schema_for_catalog(
    schema: Schema | None,
    artifact_dir: str | os.PathLike,
    file_name: str = INPUT_SCHEMA_FILE_NAME,
    max_bytes: int = SCHEMA_MAX_BYTES,
    force_overwrite: bool = False,
) -> str | None:
    """The schema JSON to send to the catalog, or None when it is larger than ``max_bytes``:
    then it is written to ``artifact_dir/file_name`` and a SchemaSizeWarning is issued.

    An existing file with the same bytes is kept; a different one raises
    ArtifactFileExistsError unless ``force_overwrite``.
    """
    if schema is None:
        return None
    text = schema.to_json()
    if catalog_json(schema, max_bytes, text) is not None:
        return text
    size = len(text.encode("utf-8"))
    if not os.path.isdir(artifact_dir):
        raise SchemaSampleError(
            f"artifact_dir {os.fspath(artifact_dir)!r} is not an existing folder; create the "
            "artifact folder before placing a large schema in it."
        )
    target = os.path.join(os.path.abspath(os.fspath(artifact_dir)), file_name)
    write_converging(target, text.encode("utf-8"), force_overwrite)
    warnings.warn(
        f"The schema is {size} bytes, more than the {max_bytes} the model catalog accepts; it "
        f"is saved as {target} in the artifact and left out of the catalog metadata.",
        SchemaSizeWarning,
        stacklevel=2,
    )
    return None


# --- sample conversion ------------------------------------------------------------------------


def _is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, (str, bytes, bool, int, float, complex, np.generic))


def _is_flat_row(value: Any) -> bool:
    """True for a list, tuple or 1-D array of scalars (one row of a table)."""
    if isinstance(value, np.ndarray):
        return value.ndim == 1
    return isinstance(value, (list, tuple)) and all(_is_scalar(x) for x in value)


def _as_frame_or_tensor(data: Any) -> pd.DataFrame | np.ndarray:
    """The sample as a DataFrame, or as an ndarray of three or more dimensions."""
    if data is None:
        raise SchemaSampleError(
            "The sample is None; pass X_sample/y_sample as a list, tuple, numpy array, "
            "pandas Series or DataFrame."
        )
    if isinstance(data, pd.DataFrame):
        frame = data
    elif isinstance(data, pd.Series):
        frame = data.to_frame(name=data.name if data.name is not None else 0)
    elif isinstance(data, np.ndarray):
        if data.ndim == 0:
            raise SchemaSampleError(
                "The sample is a 0-dimensional array (one scalar); pass at least one row."
            )
        if data.ndim > 2:
            if data.shape[0] == 0:
                raise SchemaSampleError("The sample array has no rows; pass at least one row.")
            return data
        frame = pd.DataFrame(data)
    elif isinstance(data, (list, tuple)):
        frame_or_tensor = _sequence_sample(data)
        if isinstance(frame_or_tensor, np.ndarray):
            return frame_or_tensor
        frame = frame_or_tensor
    else:
        raise SchemaSampleError(
            f"Cannot build a schema from {type(data).__module__}.{type(data).__qualname__}; "
            "pass a list, tuple, numpy array, pandas Series or DataFrame."
        )
    if frame.shape[1] == 0:
        raise SchemaSampleError("The sample has no columns; pass data with at least one column.")
    if frame.shape[0] == 0:
        raise SchemaSampleError("The sample has no rows; pass at least one row of data.")
    return frame


def _sequence_sample(data: list | tuple) -> pd.DataFrame | np.ndarray:
    """A list/tuple sample as a DataFrame (rows of scalars or dicts) or a tensor."""
    if len(data) == 0:
        raise SchemaSampleError("The sample is an empty list; pass at least one row of data.")
    if all(_is_scalar(v) for v in data):
        return pd.Series(list(data)).to_frame(name=0)
    if all(isinstance(v, dict) for v in data):
        return pd.DataFrame(list(data))
    if all(_is_flat_row(v) for v in data):
        return pd.DataFrame([list(v) for v in data])
    try:
        array = np.asarray(data)
    except ValueError as exc:
        raise SchemaSampleError(
            f"The sample list mixes rows of different shapes ({exc}); pass rows of the same "
            "length, or a DataFrame."
        ) from None
    if array.dtype == object or array.ndim < 3:
        raise SchemaSampleError(
            "The sample list mixes scalars, rows and dicts; pass a uniform list (all scalars, "
            "all rows of scalars, or all dicts) or a DataFrame."
        )
    return array


# --- attributes ---------------------------------------------------------------------------------


def _number(value: Any) -> float | str | None:
    """A float for JSON: None for NaN, 'inf'/'-inf' for infinities."""
    value = float(value)
    if math.isnan(value):
        return None
    return value if math.isfinite(value) else str(value)


def _scalar(value: Any) -> Any:
    """A sample value as JSON data (numpy scalars unwrapped, timestamps as ISO text)."""
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or isinstance(value, (bool, int, str)):
        return value if not isinstance(value, str) else value[:_TOP_MAX_CHARS]
    if isinstance(value, float):
        return _number(value)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)[:_TOP_MAX_CHARS]


def _quartiles(ordered: np.ndarray) -> list[float]:
    """25%, 50% and 75% quantiles of a sorted array, linearly interpolated like pandas."""
    last = ordered.size - 1
    result = []
    for fraction in (0.25, 0.5, 0.75):
        position = fraction * last
        low = int(position)
        high = min(low + 1, last)
        weight = position - low
        a, b = float(ordered[low]), float(ordered[high])
        result.append(a if weight == 0 or a == b else a + (b - a) * weight)
    return result


def _numeric_stats(values: np.ndarray) -> dict[str, Any]:
    """count, mean, std, min, quartiles and max of a float array, ignoring NaN (describe)."""
    present = values[~np.isnan(values)]
    stats: dict[str, Any] = {"count": int(present.size)}
    if present.size == 0:
        return stats
    with np.errstate(all="ignore"):
        q = _quartiles(np.sort(present))
        std = float(np.std(present, ddof=1)) if present.size > 1 else float("nan")
        stats.update(
            mean=_number(np.mean(present)),
            std=_number(std),
            min=_number(present.min()),
            **{"25%": _number(q[0]), "50%": _number(q[1]), "75%": _number(q[2])},
            max=_number(present.max()),
        )
    return stats


def _counts_stats(column: pd.Series) -> tuple[dict[str, Any], int]:
    """count, unique, top and freq of a column (describe for non-numeric data)."""
    counts = column.value_counts(dropna=True, sort=True)
    count = int(counts.sum())
    stats: dict[str, Any] = {"count": count, "unique": int(counts.size)}
    if counts.size:
        stats["top"] = _scalar(counts.index[0])
        stats["freq"] = int(counts.iloc[0])
    return stats, int(counts.size)


def _object_kind(column: pd.Series) -> str:
    """Feature type of an object column from the kinds of values it holds."""
    inferred = pd.api.types.infer_dtype(column, skipna=True)
    if inferred == "string":
        return "string"
    if inferred == "boolean":
        return FeatureType.BOOLEAN
    if inferred == "integer":
        return FeatureType.INTEGER
    if inferred in ("floating", "mixed-integer-float", "decimal"):
        return FeatureType.CONTINUOUS
    if inferred in ("datetime", "datetime64", "date"):
        return FeatureType.DATETIME
    return FeatureType.UNKNOWN


def _column_kind(column: pd.Series) -> str:
    """Feature type of a column from its dtype ('string' means decide from the values)."""
    dtype = column.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        return FeatureType.CATEGORICAL
    if pd.api.types.is_bool_dtype(dtype):
        return FeatureType.BOOLEAN
    if pd.api.types.is_integer_dtype(dtype):
        return FeatureType.INTEGER
    if pd.api.types.is_float_dtype(dtype):
        return FeatureType.CONTINUOUS
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return FeatureType.DATETIME
    if pd.api.types.is_timedelta64_dtype(dtype):
        return FeatureType.TIMEDELTA
    if isinstance(dtype, pd.StringDtype):
        return "string"
    if pd.api.types.is_object_dtype(dtype):
        return _object_kind(column)
    return FeatureType.UNKNOWN


def _column_attribute(name: str, column: pd.Series, order: int) -> Attribute:
    """The attribute describing one column of the sample."""
    kind = _column_kind(column)
    constraints: list[dict[str, Any]] = []
    numeric_dtype = kind in (FeatureType.INTEGER, FeatureType.CONTINUOUS) and column.dtype != object
    if numeric_dtype:
        values = column.to_numpy(dtype="float64", na_value=np.nan)
        missing = int(np.isnan(values).sum())
    else:
        missing = int(column.isna().sum())
    if numeric_dtype:
        stats = _numeric_stats(values)
    elif kind in (FeatureType.INTEGER, FeatureType.CONTINUOUS):
        numeric = pd.to_numeric(column, errors="coerce")
        stats = _numeric_stats(numeric.to_numpy(dtype="float64", na_value=np.nan))
    elif kind in (FeatureType.DATETIME, FeatureType.TIMEDELTA):
        present = column.dropna()
        stats = {"count": int(present.size)}
        if present.size:
            try:
                stats.update(min=_scalar(present.min()), max=_scalar(present.max()))
            except (TypeError, ValueError):
                pass  # values that cannot be ordered (e.g. mixed time zones) get no range
    elif kind == "string":
        stats, unique = _counts_stats(column)
        repeats = unique < stats["count"]
        kind = (
            FeatureType.CATEGORICAL
            if repeats and unique <= CATEGORICAL_MAX_UNIQUE
            else FeatureType.TEXT
        )
    elif kind == FeatureType.UNKNOWN:
        stats = {"count": int(column.size - missing)}
    else:
        stats, _ = _counts_stats(column)
        if isinstance(column.dtype, pd.CategoricalDtype):
            categories = [_scalar(c) for c in column.dtype.categories]
            constraints.append({"expression": "$x in $values", "values": categories})
        elif kind == FeatureType.BOOLEAN:
            constraints.append({"expression": "$x in $values", "values": [False, True]})
    stats["missing"] = missing
    return Attribute(
        name=name,
        dtype=str(column.dtype),
        feature_type=kind,
        order=order,
        required=missing == 0,
        description=name,
        domain=Domain(values=kind.capitalize(), stats=stats, constraints=constraints),
    )


def _tensor_attribute(array: np.ndarray) -> Attribute:
    """The single attribute describing an array of three or more dimensions."""
    stats: dict[str, Any] = {"count": int(array.shape[0]), "shape": [None, *array.shape[1:]]}
    real = np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)
    if real and array.size:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN input gives NaN stats
            stats.update(
                min=_number(np.nanmin(array)),
                max=_number(np.nanmax(array)),
                mean=_number(np.nanmean(array, dtype="float64")),
            )
    return Attribute(
        name="0",
        dtype=str(array.dtype),
        feature_type=FeatureType.TENSOR,
        order=0,
        required=True,
        description="array of shape (n, " + ", ".join(str(s) for s in array.shape[1:]) + ")",
        domain=Domain(values="Tensor", stats=stats, constraints=[]),
    )


# --- schemas from data samples (the prepare step) ---------------------------------------------


def populate_schema(
    X_sample: Any = None,
    y_sample: Any = None,
    *,
    max_col_num: int = 2000,
    artifact_dir: str | None = None,
    force_overwrite: bool = False,
) -> tuple[Schema | None, Schema | None]:
    """Input/output schemas from data samples.

    A sample with more than ``max_col_num`` columns gets no schema (None) and a
    SchemaTooWideWarning. A schema too big for the catalog (over 32,000 bytes of JSON) is
    written to input_schema.json / output_schema.json in ``artifact_dir`` with a
    SchemaSizeWarning, and :meth:`PreparedMetadata.catalog_schemas` leaves it out of the
    catalog metadata. A different existing file is replaced only with ``force_overwrite``.
    """
    schemas: list[Schema | None] = []
    for sample, file_name in (
        (X_sample, INPUT_SCHEMA_FILE_NAME),
        (y_sample, OUTPUT_SCHEMA_FILE_NAME),
    ):
        schema = None if sample is None else _schema_or_none(sample, max_col_num, file_name)
        if schema is not None and artifact_dir:
            schema_for_catalog(
                schema,
                ensure_artifact_dir(artifact_dir),
                file_name,
                force_overwrite=force_overwrite,
            )
        schemas.append(schema)
    return schemas[0], schemas[1]


def _schema_or_none(sample: Any, max_col_num: int, file_name: str) -> Schema | None:
    """The sample's schema, or None with a SchemaTooWideWarning when it has more than
    ``max_col_num`` columns (the reference skips the schema then)."""
    try:
        return Schema.from_sample(sample, max_col_num=max_col_num)
    except DataSchemaTooLarge as too_wide:
        warnings.warn(
            SchemaTooWideWarning(too_wide.columns, too_wide.max_col_num, file_name),
            stacklevel=3,
        )
        return None
