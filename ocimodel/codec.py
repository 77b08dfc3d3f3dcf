"""The JSON wire codec of model inputs: faithful, tagged JSON for numpy and pandas values.

Standalone on purpose: it imports only the standard library at module level (numpy and pandas
load lazily when a value needs them) and it is inlined verbatim into every generated score.py,
so the encoder in ocimodel and the decoder in a deployment are one source. Nothing here ever
unpickles: object arrays travel element by element as JSON.
"""

import base64
import datetime
import json
import math
import sys
from typing import Any

WIRE_TAG = "__ocimodel__"


def dumps(value: Any) -> str:
    """Encode ``value`` as strict JSON text (no NaN literals) in the tagged wire format."""
    return json.dumps(encode(value), allow_nan=False, separators=(",", ":"))


def loads(payload: Any) -> Any:
    """Decode JSON text (str or bytes) in the tagged wire format back into Python values."""
    if isinstance(payload, (bytes, bytearray, memoryview)):
        payload = bytes(payload).decode("utf-8")
    return decode(json.loads(payload))


def _tagged(kind: str, **fields: Any) -> dict:
    return {WIRE_TAG: kind, **fields}


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _module_of(value: Any) -> str:
    return type(value).__module__.split(".", 1)[0]


def encode(value: Any) -> Any:
    """Turn ``value`` into plain JSON values; non-JSON types become tagged objects."""
    kind = type(value)
    if value is None or kind is bool or kind is str or kind is int:
        return value
    if kind is float:
        return value if math.isfinite(value) else _tagged("float", value=repr(value))
    if kind is list:
        return [encode(item) for item in value]
    if kind is dict:
        if WIRE_TAG not in value and all(type(key) is str for key in value):
            return {key: encode(item) for key, item in value.items()}
        return _tagged("dict", items=[[encode(k), encode(v)] for k, v in value.items()])
    if kind is tuple:
        return _tagged("tuple", items=[encode(item) for item in value])
    if kind in (bytes, bytearray):
        return _tagged("bytes", data=_b64(bytes(value)))
    module = _module_of(value)
    if module == "numpy":
        return _encode_numpy(value)
    if module == "pandas":
        return _encode_pandas(value)
    if isinstance(value, datetime.datetime):
        return _tagged("datetime", iso=value.isoformat())
    if isinstance(value, datetime.date):
        return _tagged("date", iso=value.isoformat())
    if isinstance(value, datetime.timedelta):
        return _tagged(
            "timedelta", days=value.days, seconds=value.seconds, microseconds=value.microseconds
        )
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return encode(float(value))
    if isinstance(value, str):
        return str(value)
    raise TypeError(
        f"cannot encode a value of type {kind.__module__}.{kind.__qualname__} as JSON: "
        "send lists, dicts, numbers, strings, bytes, numpy arrays or pandas objects, "
        "or register a custom SERDE as the model input serializer"
    )


def _encode_numpy(value: Any) -> Any:
    import numpy as np

    if isinstance(value, np.ndarray):
        return _encode_ndarray(value)
    if isinstance(value, np.generic):
        if value.dtype.hasobject or value.dtype.fields is not None:
            return encode(value.item())
        return _tagged("npscalar", dtype=value.dtype.str, data=_b64(value.tobytes()))
    if isinstance(value, np.dtype):
        return _tagged("npdtype", dtype=value.str)
    raise TypeError(f"cannot encode numpy value of type {type(value).__qualname__} as JSON")


def _encode_ndarray(array: Any) -> dict:
    import numpy as np

    shape = [int(n) for n in array.shape]
    if array.dtype.fields is not None:
        raise TypeError(
            "cannot encode a structured numpy array as JSON: send a pandas DataFrame instead"
        )
    if array.dtype.hasobject:
        items = [encode(item) for item in array.ravel(order="C").tolist()]
        return _tagged("ndarray", dtype="object", shape=shape, items=items)
    data = np.ascontiguousarray(array).tobytes()
    return _tagged("ndarray", dtype=array.dtype.str, shape=shape, data=_b64(data))


def _encode_pandas(value: Any) -> Any:
    import pandas as pd

    if isinstance(value, pd.DataFrame):
        columns = [_encode_values(value.iloc[:, i]) for i in range(value.shape[1])]
        return _tagged(
            "dataframe",
            columns=_encode_index(value.columns),
            index=_encode_index(value.index),
            data=columns,
        )
    if isinstance(value, pd.Series):
        return _tagged(
            "series",
            name=encode(value.name),
            index=_encode_index(value.index),
            values=_encode_values(value),
        )
    if isinstance(value, pd.Index):
        return _encode_index(value)
    if value is pd.NaT:
        return _tagged("nat")
    if value is pd.NA:
        return _tagged("na")
    if isinstance(value, pd.Timestamp):
        tz = None if value.tz is None else str(value.tz)
        return _tagged("timestamp", iso=value.isoformat(), tz=tz, unit=value.unit)
    if isinstance(value, pd.Timedelta):
        return _tagged("pdtimedelta", value=int(value.as_unit("ns").value), unit=value.unit)
    raise TypeError(f"cannot encode pandas value of type {type(value).__qualname__} as JSON")


def _encode_index(index: Any) -> dict:
    import pandas as pd

    if isinstance(index, pd.RangeIndex):
        return _tagged(
            "rangeindex",
            start=int(index.start),
            stop=int(index.stop),
            step=int(index.step),
            name=encode(index.name),
        )
    if isinstance(index, pd.MultiIndex):
        levels = [_encode_values(index.get_level_values(i)) for i in range(index.nlevels)]
        return _tagged("multiindex", names=[encode(n) for n in index.names], levels=levels)
    return _tagged("index", name=encode(index.name), values=_encode_values(index))


def _encode_values(values: Any) -> dict:
    """Encode the values of a Series or Index so that their dtype comes back unchanged."""
    import numpy as np
    import pandas as pd

    dtype = values.dtype
    if isinstance(dtype, np.dtype) and not dtype.hasobject:
        return {"kind": "numpy", "array": _encode_ndarray(values.to_numpy())}
    if isinstance(dtype, pd.CategoricalDtype):
        codes = np.asarray(pd.Categorical(values, dtype=dtype).codes)
        return {
            "kind": "category",
            "categories": _encode_index(dtype.categories),
            "ordered": bool(dtype.ordered),
            "codes": _encode_ndarray(codes),
        }
    items = [encode(item) for item in values.astype(object).tolist()]
    if isinstance(dtype, np.dtype):
        return {"kind": "object", "items": items}
    return {"kind": "extension", "dtype": str(dtype), "items": items}


def decode(value: Any) -> Any:
    """Rebuild Python values from parsed wire JSON; untagged JSON passes through unchanged."""
    kind = type(value)
    if kind is list:
        return [decode(item) for item in value]
    if kind is not dict:
        return value
    tag = value.get(WIRE_TAG)
    if tag is None:
        return {key: decode(item) for key, item in value.items()}
    decoder = _DECODERS.get(tag)
    if decoder is None:
        raise ValueError(
            f"unknown wire tag {tag!r} in the request payload: encode it with ocimodel's "
            "'json' input serializer of a matching version"
        )
    try:
        return decoder(value)
    except (KeyError, TypeError) as exc:
        raise ValueError(f"malformed {tag!r} value in the request payload: {exc!r}") from exc


def _decode_float(value: dict) -> float:
    text = value["value"]
    if text not in ("nan", "inf", "-inf"):
        raise ValueError(f"bad float literal {text!r} in the request payload")
    return float(text)


def _decode_dict(value: dict) -> dict:
    return {_hashable(decode(k)): decode(v) for k, v in value["items"]}


def _hashable(key: Any) -> Any:
    return tuple(key) if type(key) is list else key


def _decode_ndarray(value: dict) -> Any:
    import numpy as np

    shape = tuple(int(n) for n in value["shape"])
    if value["dtype"] == "object":
        items = [decode(item) for item in value["items"]]
        array = np.empty(len(items), dtype=object)
        for i, item in enumerate(items):
            array[i] = item
        return array.reshape(shape)
    dtype = np.dtype(value["dtype"])
    if dtype.hasobject or dtype.fields is not None:
        raise ValueError(f"dtype {value['dtype']!r} cannot travel as raw bytes")
    raw = base64.b64decode(value["data"], validate=True)
    count = math.prod(shape)
    if len(raw) != count * dtype.itemsize:
        raise ValueError(
            f"ndarray payload holds {len(raw)} bytes; shape {list(shape)} of {dtype.str} "
            f"needs {count * dtype.itemsize}"
        )
    return np.frombuffer(bytearray(raw), dtype=dtype, count=count).reshape(shape)


def _decode_npscalar(value: dict) -> Any:
    import numpy as np

    dtype = np.dtype(value["dtype"])
    if dtype.hasobject or dtype.fields is not None:
        raise ValueError(f"dtype {value['dtype']!r} cannot travel as raw bytes")
    raw = base64.b64decode(value["data"], validate=True)
    if len(raw) != dtype.itemsize:
        raise ValueError(f"numpy scalar of {dtype.str} needs {dtype.itemsize} bytes")
    return np.frombuffer(raw, dtype=dtype)[0]


def _decode_values(encoded: dict) -> tuple:
    """Return ``(array_like, dtype_or_None)`` for a Series/Index constructor."""
    import numpy as np
    import pandas as pd

    kind = encoded["kind"]
    if kind == "numpy":
        array = _decode_ndarray(encoded["array"])
        return array, array.dtype
    if kind == "category":
        categories = _decode_index(encoded["categories"])
        codes = _decode_ndarray(encoded["codes"])
        return pd.Categorical.from_codes(codes, categories, bool(encoded["ordered"])), None
    items = [decode(item) for item in encoded["items"]]
    if kind == "object":
        array = np.empty(len(items), dtype=object)
        for i, item in enumerate(items):
            array[i] = item
        return array, np.dtype(object)
    if kind == "extension":
        dtype = pd.api.types.pandas_dtype(encoded["dtype"])
        items = [None if item is pd.NaT or item is pd.NA else item for item in items]
        return pd.array(items, dtype=dtype), dtype
    raise ValueError(f"unknown values kind {kind!r} in the request payload")


def _decode_index(value: dict) -> Any:
    import pandas as pd

    tag = value.get(WIRE_TAG)
    if tag == "rangeindex":
        return pd.RangeIndex(
            int(value["start"]), int(value["stop"]), int(value["step"]), name=decode(value["name"])
        )
    if tag == "multiindex":
        arrays = [pd.Index(*_decode_values(level)) for level in value["levels"]]
        names = [_hashable(decode(name)) for name in value["names"]]
        return pd.MultiIndex.from_arrays(arrays, names=names)
    if tag == "index":
        array, dtype = _decode_values(value["values"])
        return pd.Index(array, dtype=dtype, name=_hashable(decode(value["name"])), copy=False)
    raise ValueError(f"expected an index in the request payload, found tag {tag!r}")


def _decode_series(value: dict) -> Any:
    import pandas as pd

    array, dtype = _decode_values(value["values"])
    index = _decode_index(value["index"])
    return pd.Series(array, index=index, dtype=dtype, name=_hashable(decode(value["name"])))


def _decode_dataframe(value: dict) -> Any:
    import pandas as pd

    index = _decode_index(value["index"])
    columns = _decode_index(value["columns"])
    if len(columns) != len(value["data"]):
        raise ValueError("dataframe payload has a different number of columns and column names")
    series = {}
    for i, encoded in enumerate(value["data"]):
        array, dtype = _decode_values(encoded)
        series[i] = pd.Series(array, index=index, dtype=dtype, copy=False)
    frame = pd.DataFrame(series, index=index) if series else pd.DataFrame(index=index)
    frame.columns = columns
    return frame


def _decode_timestamp(value: dict) -> Any:
    import pandas as pd

    stamp = pd.Timestamp(value["iso"])
    if value.get("tz"):
        stamp = stamp.tz_convert(value["tz"])
    return stamp.as_unit(value["unit"]) if value.get("unit") else stamp


def _decode_pdtimedelta(value: dict) -> Any:
    import pandas as pd

    delta = pd.Timedelta(int(value["value"]), unit="ns")
    return delta.as_unit(value["unit"]) if value.get("unit") else delta


def _decode_nat(value: dict) -> Any:
    import pandas as pd

    return pd.NaT


def _decode_na(value: dict) -> Any:
    import pandas as pd

    return pd.NA


def _decode_npdtype(value: dict) -> Any:
    import numpy as np

    return np.dtype(value["dtype"])


_DECODERS = {
    "float": _decode_float,
    "dict": _decode_dict,
    "tuple": lambda value: tuple(decode(item) for item in value["items"]),
    "bytes": lambda value: base64.b64decode(value["data"], validate=True),
    "datetime": lambda value: datetime.datetime.fromisoformat(value["iso"]),
    "date": lambda value: datetime.date.fromisoformat(value["iso"]),
    "timedelta": lambda value: datetime.timedelta(
        days=value["days"], seconds=value["seconds"], microseconds=value["microseconds"]
    ),
    "ndarray": _decode_ndarray,
    "npscalar": _decode_npscalar,
    "npdtype": _decode_npdtype,
    "series": _decode_series,
    "dataframe": _decode_dataframe,
    "index": _decode_index,
    "rangeindex": _decode_index,
    "multiindex": _decode_index,
    "timestamp": _decode_timestamp,
    "pdtimedelta": _decode_pdtimedelta,
    "nat": _decode_nat,
    "na": _decode_na,
}


def to_jsonable(value: Any) -> Any:
    """Convert a prediction to plain JSON values (lists, dicts, numbers, strings, None).

    Non-finite floats become None so that the response is strict JSON.
    """
    kind = type(value)
    if value is None or kind is bool or kind is str or kind is int:
        return value
    if isinstance(value, float):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, (list, tuple, set, frozenset)):
        return [to_jsonable(item) for item in value]
    if isinstance(value, dict):
        return {_json_key(key): to_jsonable(item) for key, item in value.items()}
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(bytes(value)).decode("ascii")
    pandas = sys.modules.get("pandas")
    if pandas is not None:
        if value is pandas.NA or value is pandas.NaT:
            return None
        if isinstance(value, pandas.DataFrame):
            return to_jsonable(value.to_dict(orient="records"))
        if isinstance(value, (pandas.Series, pandas.Index)):
            return to_jsonable(value.tolist())
    numpy = sys.modules.get("numpy")
    if numpy is not None:
        if isinstance(value, numpy.ndarray):
            return to_jsonable(value.tolist())
        if isinstance(value, numpy.generic):
            return to_jsonable(value.item())
    if isinstance(value, (datetime.datetime, datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, datetime.timedelta):
        return value.total_seconds()
    if isinstance(value, int):
        return int(value)
    if isinstance(value, str):
        return str(value)
    for method in ("tolist", "item"):
        convert = getattr(value, method, None)
        if callable(convert):
            return to_jsonable(convert())
    raise TypeError(
        f"the prediction holds a {kind.__module__}.{kind.__qualname__}, which has no JSON form: "
        "make predict() return lists, dicts, numbers, strings or numpy/pandas values"
    )


def _json_key(key: Any) -> str:
    if isinstance(key, str):
        return str(key)
    converted = to_jsonable(key)
    return converted if isinstance(converted, str) else json.dumps(converted)
