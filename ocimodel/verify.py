"""Runs an artifact's own score.py on a payload before it is saved or deployed.

By default score.py runs in a fresh, isolated Python process with only the artifact directory
on the path ahead of site-packages, fed the request body the input serializer produces, as a
deployment would. ``in_process=True`` imports it here instead, for speed. Neither way writes
bytecode (``__pycache__``) into the artifact, so verifying never changes what gets zipped.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ocimodel import score_runner
from ocimodel.errors import ScoreError
from ocimodel.predict import payload_of
from ocimodel.serde import SERDE

if TYPE_CHECKING:
    from ocimodel.oci.auth import AuthLike

RUNNER_PATH = Path(score_runner.__file__)
_STDERR_TAIL = 4000


class VerifyTimeoutError(ScoreError):
    """score.py did not answer within the timeout."""


request_of = payload_of
"""The request body and content type of ``data``: :func:`ocimodel.predict.payload_of`, the one
payload path verify and predict share."""


def verify_artifact(
    artifact_dir: str | os.PathLike,
    data: Any = None,
    *,
    input_serializer: str | SERDE = "json",
    in_process: bool = False,
    timeout: float = 120.0,
    auto_serialize_data: bool = True,
    content_type: str | None = None,
    image: Any = None,
    storage_options: dict | None = None,
    auth: AuthLike = None,
) -> dict:
    """Run the artifact's score.py on ``data`` and return its result, e.g. ``{"prediction": ...}``.

    The request body is :func:`ocimodel.predict.payload_of`'s (``content_type``, ``image``,
    ``storage_options`` and ``auth`` as there), exactly what a deployment would receive.
    Raises :class:`ScoreError` carrying score.py's traceback when it fails to load or predict,
    and :class:`VerifyTimeoutError` when the subprocess exceeds ``timeout`` seconds.
    """
    root = Path(artifact_dir).resolve()
    if not (root / "score.py").is_file():
        raise ScoreError(
            f"{root / 'score.py'} does not exist; run prepare() first or pass the directory "
            "that holds the artifact's score.py"
        )
    body, content_type = payload_of(
        data,
        input_serializer=input_serializer,
        auto_serialize_data=auto_serialize_data,
        content_type=content_type,
        image=image,
        storage_options=storage_options,
        auth=auth,
    )
    if in_process:
        outcome = _run_in_process(root, body, content_type)
    else:
        outcome = _run_subprocess(root, body, content_type, timeout)
    if not outcome.get("ok"):
        stage = outcome.get("stage", "run")
        what = {
            "import": "while importing score.py (load_model)",
            "predict": "in predict()",
            "response": "while turning the result of predict() into JSON",
        }.get(stage, "")
        raise ScoreError(
            f"score.py of {root} failed {what}: {outcome.get('error', '')}".rstrip(),
            outcome.get("traceback", ""),
        )
    return json.loads(outcome["result"])


def _run_in_process(root: Path, body: bytes, content_type: str) -> dict:
    """Imports and runs score.py here, writing no ``__pycache__`` into the artifact."""
    previous = sys.dont_write_bytecode
    sys.dont_write_bytecode = True
    try:
        return score_runner.run_in_process(str(root), body, content_type)
    finally:
        sys.dont_write_bytecode = previous


def check_load_model(artifact_dir: str | os.PathLike, timeout: float = 120.0) -> None:
    """Imports the artifact's score.py and calls ``load_model()`` in a fresh, isolated Python
    process, as a deployment would; raises ScoreError with its traceback if that fails."""
    root = Path(artifact_dir).resolve()
    outcome = _run_subprocess(root, None, "", timeout)
    if not outcome.get("ok"):
        raise ScoreError(
            f"load_model() of {root / 'score.py'} failed in a fresh Python process: "
            f"{outcome.get('error', '')}; fix score.py or the model file, or pass reload=False.",
            outcome.get("traceback", ""),
        )


def _run_subprocess(root: Path, body: bytes | None, content_type: str, timeout: float) -> dict:
    """Runs score_runner.py on ``body`` (None: only load the model) in a fresh interpreter."""
    with tempfile.TemporaryDirectory(prefix="ocimodel-verify-") as tmp:
        request_path = Path(tmp) / "request.body"
        result_path = Path(tmp) / "result.json"
        if body is not None:
            request_path.write_bytes(body)
        command = [
            sys.executable,
            "-I",
            "-B",
            str(RUNNER_PATH),
            str(root),
            str(request_path) if body is not None else score_runner.LOAD_ONLY,
            content_type,
            str(result_path),
        ]
        try:
            proc = subprocess.run(
                command,
                cwd=root,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=timeout,
            )
        except subprocess.TimeoutExpired as exc:
            raise VerifyTimeoutError(
                f"score.py of {root} did not answer within {timeout} s; raise timeout= "
                "or make load_model()/predict() faster",
                _tail(exc.stderr),
            ) from None
        if not result_path.exists():
            raise ScoreError(
                f"score.py of {root} ended the Python process (exit status {proc.returncode}) "
                "before returning a result",
                _tail(proc.stderr),
            )
        return json.loads(result_path.read_text(encoding="utf-8"))


def _tail(stream: bytes | None) -> str:
    text = (stream or b"").decode("utf-8", errors="replace")
    return text[-_STDERR_TAIL:]
