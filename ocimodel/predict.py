"""The predict stage: data in, a live deployment's answer out.

:func:`payload_of` turns what a user predicts on (a value, raw bytes, an image) into the request
body and content type a deployment receives; ``verify`` (score.py run locally) and
:func:`predict_endpoint` (the live endpoint) both use it, so a payload that verifies is the
payload the deployment gets.

- bytes (``bytes``, ``bytearray``, ``memoryview``) are sent as they are, as
  ``application/octet-stream`` unless ``content_type`` says otherwise;
- ``image=`` is a ``PIL.Image`` (sent as PNG) or a local path or URI (``oci://``, ``s3://``,
  ``http(s)://``, ``file://``...) whose bytes are sent unchanged, read through fsspec with
  ``storage_options`` (for ``oci://`` without them: the auth's own ocifs filesystem);
- anything else goes through the model input serializer (``auto_serialize_data=True``) or must
  be plain JSON (``auto_serialize_data=False``).

Nothing here unpickles: a payload is only ever encoded. The endpoint client
(:mod:`ocimodel.oci.predict`, the oci SDK) is imported on first prediction only, so verifying
stays light.
"""

from __future__ import annotations

import io
import json
import os
from typing import TYPE_CHECKING, Any

from ocimodel.errors import OcimodelError, SerializeInputNotImplementedError
from ocimodel.files import is_oci_uri, is_remote, local_path
from ocimodel.serde import SERDE, get_model_input_serializer

if TYPE_CHECKING:
    from ocimodel.oci.auth import AuthLike

__all__ = [
    "JSON",
    "OCTET_STREAM",
    "ImageNotFoundError",
    "PredictInputError",
    "payload_of",
    "predict_endpoint",
]

OCTET_STREAM = "application/octet-stream"
JSON = "application/json"
_BYTES_TYPES = (bytes, bytearray, memoryview)


class PredictInputError(ValueError, OcimodelError):
    """The data or image given to verify/predict cannot become a request; nothing was sent."""


class ImageNotFoundError(PredictInputError, FileNotFoundError):
    """``image=`` names a file or object that does not exist (or cannot be read)."""


def payload_of(
    data: Any = None,
    *,
    input_serializer: str | SERDE = "json",
    auto_serialize_data: bool = True,
    content_type: str | None = None,
    image: Any = None,
    storage_options: dict | None = None,
    auth: AuthLike = None,
) -> tuple[bytes, str]:
    """The request body and content type a deployment receives for data (shared by verify and
    predict).

    ``content_type``, when given, is the content type sent. ``auth`` reads ``oci://`` images
    when no ``storage_options`` are given. Raises :class:`PredictInputError` (a ValueError) for
    no input, both ``data`` and ``image``, or an unusable image, and
    :class:`~ocimodel.errors.SerializeInputNotImplementedError` for data the serializer (or
    JSON, with ``auto_serialize_data=False``) cannot encode.
    """
    if content_type is not None and (not isinstance(content_type, str) or not content_type):
        raise PredictInputError(
            f"content_type must be a media type such as 'application/json' or "
            f"'application/octet-stream', not {content_type!r}."
        )
    if image is not None:
        if data is not None:
            raise PredictInputError(
                "Pass either data= or image=, not both: an image is sent as the whole request body."
            )
        return _image_bytes(image, storage_options, auth), content_type or OCTET_STREAM
    if data is None:
        raise PredictInputError(
            "Nothing to predict on: pass data=<the model's input> or image=<a PIL.Image, a "
            "local path or a URI such as oci://bucket@namespace/image.png>."
        )
    if isinstance(data, _BYTES_TYPES):
        return bytes(data), content_type or OCTET_STREAM
    if isinstance(data, str) and content_type and not _is_json(content_type):
        return data.encode("utf-8"), content_type  # text the caller has already encoded
    body, kind = _serialized(data, input_serializer, auto_serialize_data)
    return body, content_type or kind


def _is_json(content_type: str) -> bool:
    kind = content_type.split(";")[0].strip().lower()
    return kind == JSON or kind.endswith("+json")


def _serialized(
    data: Any, input_serializer: str | SERDE, auto_serialize_data: bool
) -> tuple[bytes, str]:
    """Through the model input serializer, or as plain JSON."""
    if auto_serialize_data:
        return get_model_input_serializer(input_serializer).to_request(data)
    try:
        return json.dumps(data, allow_nan=False).encode("utf-8"), JSON
    except (TypeError, ValueError) as exc:
        raise SerializeInputNotImplementedError(
            f"data of type {type(data).__name__} is not JSON serializable; pass "
            "auto_serialize_data=True to send it through the model input serializer"
        ) from exc


def _image_bytes(image: Any, storage_options: dict | None, auth: AuthLike) -> bytes:
    """The bytes of a PIL image (as PNG) or of the file/object an image path or URI names."""
    if isinstance(image, (str, os.PathLike)):
        return _read_image(os.fspath(image), storage_options, auth)
    if _is_pil_image(image):
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        return buffer.getvalue()
    raise PredictInputError(
        f"image must be a PIL.Image or a path/URI of an image file (local, oci://, s3://, "
        f"http(s)://...), not {type(image).__name__}; to send other bytes, pass data=<bytes>."
    )


def _is_pil_image(value: Any) -> bool:
    """True for a PIL image; PIL is never imported here (a PIL image means it is loaded)."""
    import sys

    pil_image = sys.modules.get("PIL.Image")
    return pil_image is not None and isinstance(value, pil_image.Image)


def _read_image(uri: str, storage_options: dict | None, auth: AuthLike) -> bytes:
    """Reads at most the endpoint's payload limit from a local path or any fsspec URI."""
    from ocimodel.oci.predict import MAX_PAYLOAD_BYTES

    try:
        with _open(uri, storage_options, auth) as fh:
            content = fh.read(MAX_PAYLOAD_BYTES + 1)
    except FileNotFoundError as exc:
        raise ImageNotFoundError(
            f"image {uri!r} does not exist; pass the path or URI of an existing image file"
            + (" (and storage_options= that can read it)." if is_remote(uri) else ".")
        ) from exc
    except (IsADirectoryError, PermissionError) as exc:
        raise ImageNotFoundError(f"image {uri!r} cannot be read: {exc}") from exc
    if len(content) > MAX_PAYLOAD_BYTES:
        raise PredictInputError(
            f"image {uri!r} is larger than {MAX_PAYLOAD_BYTES // (1024 * 1024)} MB, the most a "
            "model deployment accepts in one request; send a smaller image."
        )
    return content


def _open(uri: str, storage_options: dict | None, auth: AuthLike) -> Any:
    """A binary file object for ``uri``: fsspec with ``storage_options`` when given, else the
    storage helpers (the auth's ocifs for oci://)."""
    if is_remote(uri) and storage_options is not None:
        import fsspec

        return fsspec.open(uri, "rb", **storage_options).open()
    if is_remote(uri):
        from ocimodel.oci.storage import open_uri

        return open_uri(uri, "rb", auth if is_oci_uri(uri) else None)
    return open(local_path(uri), "rb")


def predict_endpoint(
    endpoint_url: str,
    data: Any = None,
    *,
    auth: AuthLike = None,
    input_serializer: str | SERDE = "json",
    auto_serialize_data: bool = True,
    content_type: str | None = None,
    image: Any = None,
    storage_options: dict | None = None,
    timeout: float | None = None,
) -> dict[str, Any]:
    """Send data to a live deployment and return score.py's answer (e.g. {"prediction": [...]}).

    ``endpoint_url`` is the deployment's URL (``/predict`` is appended) or its predict URL;
    the request body is :func:`payload_of`'s. ``timeout`` (seconds) defaults to the endpoint
    client's (:data:`ocimodel.oci.predict.DEFAULT_TIMEOUT`). Connections are pooled per auth and
    host, so repeated calls reuse them.

    Raises the errors of :func:`payload_of` before anything is sent, then those of
    :func:`ocimodel.oci.predict.predict`: ``DeploymentNotActiveError`` (a
    :class:`~ocimodel.errors.NotActiveDeploymentError`) when the deployment is not ACTIVE,
    ``PredictThrottledError``, ``PredictTimeoutError`` and ``PredictError``.
    """
    from ocimodel.oci import predict as endpoint

    body, kind = payload_of(
        data,
        input_serializer=input_serializer,
        auto_serialize_data=auto_serialize_data,
        content_type=content_type,
        image=image,
        storage_options=storage_options,
        auth=auth,
    )
    wait = endpoint.DEFAULT_TIMEOUT if timeout is None else timeout
    answer = endpoint.predict(endpoint_url, body, kind, auth=auth, timeout=wait)
    try:
        return answer.json()
    except ValueError:
        raise endpoint.PredictError(
            answer.status,
            "InvalidResponse",
            f"the answer is not JSON ({answer.content_type or 'no content type'}): "
            f"{answer.text[:200]!r}",
            url=endpoint.predict_url(endpoint_url),
            request_id=answer.request_id,
            hint="score.py's predict() must return a JSON-serializable value.",
        ) from None
