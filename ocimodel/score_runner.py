"""Runs an artifact's score.py on one request the way a model deployment does.

Used by ``ocimodel.verify`` as a script in a fresh, isolated interpreter (``python -I``), or
in-process; :func:`import_score` is the one way ocimodel imports a score.py (verify, the model
server, ``ModelArtifact.reload``). It needs only the standard library and never imports
ocimodel, so it runs by path where ocimodel is not installed.
"""

import contextlib
import importlib.util
import json
import os
import sys
import traceback
import uuid

_JSON_TYPES = ("application/json",)
LOAD_ONLY = "-"
"""The request file argument that asks only to load the model."""


def parse_body(body, content_type):
    """What the model server hands to predict(): parsed JSON for JSON bodies, else bytes."""
    ctype = (content_type or "").split(";")[0].strip().lower()
    if ctype in _JSON_TYPES or ctype.endswith("+json"):
        return json.loads(body) if body else None
    return body


def _failure(stage, exc):
    return {
        "ok": False,
        "stage": stage,
        "error": f"{type(exc).__name__}: {exc}",
        "traceback": traceback.format_exc(),
    }


def import_score(artifact_dir, module_name="score"):
    """Import ``score.py`` of ``artifact_dir`` as ``module_name`` (registered in sys.modules).

    The caller puts the artifact folder on ``sys.path`` (score.py may import its neighbours).
    """
    score_path = os.path.join(artifact_dir, "score.py")
    spec = importlib.util.spec_from_file_location(module_name, score_path)
    if spec is None or spec.loader is None or not os.path.isfile(score_path):
        raise FileNotFoundError(f"{score_path} does not exist")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(module_name, None)
        raise
    return module


def run(artifact_dir, body, content_type, module_name="score"):
    """Import score.py from ``artifact_dir`` and call predict; return an outcome dict.

    ``body`` None only imports score.py and calls ``load_model()`` (what a save checks).
    """
    stage = "import"
    try:
        module = import_score(artifact_dir, module_name)
        if body is None:
            module.load_model()
            return {"ok": True, "result": "null"}
        stage = "predict"
        result = module.predict(parse_body(body, content_type))
        stage = "response"
        text = json.dumps(result, allow_nan=False)
    except BaseException as exc:  # every failure goes back to the caller
        return _failure(stage, exc)
    return {"ok": True, "result": text}


def run_in_process(artifact_dir, body, content_type):
    """Like :func:`run`, under a unique module name, undoing the sys.path/sys.modules changes."""
    artifact_dir = os.path.abspath(artifact_dir)
    module_name = f"_ocimodel_score_{uuid.uuid4().hex}"
    before = set(sys.modules)
    sys.path.insert(0, artifact_dir)
    try:
        return run(artifact_dir, body, content_type, module_name)
    finally:
        with contextlib.suppress(ValueError):
            sys.path.remove(artifact_dir)
        for name in set(sys.modules) - before:
            module = sys.modules.get(name)
            origin = getattr(module, "__file__", None) or ""
            if name == module_name or os.path.abspath(origin).startswith(artifact_dir + os.sep):
                sys.modules.pop(name, None)


def main(argv):
    """``score_runner.py ARTIFACT_DIR REQUEST_FILE CONTENT_TYPE RESULT_FILE``; a REQUEST_FILE
    of ``-`` only loads the model."""
    artifact_dir, request_path, content_type, result_path = argv[1:5]
    artifact_dir = os.path.abspath(artifact_dir)
    sys.path[:] = [p for p in sys.path if p not in ("", os.getcwd())]
    sys.path.insert(0, artifact_dir)
    body = None
    if request_path != LOAD_ONLY:
        with open(request_path, "rb") as fh:
            body = fh.read()
    outcome = run(artifact_dir, body, content_type)
    with open(result_path, "w", encoding="utf-8") as fh:
        json.dump(outcome, fh)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
