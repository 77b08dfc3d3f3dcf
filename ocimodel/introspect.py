"""Introspection: checks an artifact folder before it goes to the model catalog.

Checks run in stages (files, then score.py, then runtime.yaml); a check whose prerequisite
failed is Skipped. Every check ends Passed, Failed or Skipped with a message that says how to
fix it. Introspection reads the artifact and never writes into it.
"""

from __future__ import annotations

import ast
import functools
import os
import warnings
from abc import ABC
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ocimodel.errors import IntrospectionNotPassed
from ocimodel.layout import MODEL_ARTIFACT_VERSION, RUNTIME_YAML, SCORE_PY
from ocimodel.metadata.enums import MetadataTaxonomyKeys
from ocimodel.oci.auth import resolve_auth
from ocimodel.runtime import SUPPORTED_PYTHON_VERSIONS, field_problems, python_version_supported

if TYPE_CHECKING:
    import pandas as pd

    from ocimodel.oci.auth import AuthLike

REMOTE_CHECK_TIMEOUT = 10.0
CATALOG_MESSAGE_MAX_CHARS = 300
"""Longest check message kept in the ArtifactTestResults metadata (the table keeps it whole),
so the size of the results in the model catalog has a known upper bound."""


class TEST_STATUS(str):
    """Result of one check."""

    PASSED = "Passed"
    NOT_PASSED = "Failed"
    NOT_TESTED = "Skipped"


class IntrospectionWarning(UserWarning):
    """A check was Skipped because something it needs (object storage) was not reachable."""


@dataclass
class PrintItem:
    """One row of the introspection table."""

    key: str = ""
    case: str = ""
    result: str = ""
    message: str = ""

    def to_list(self) -> list[str]:
        """The row as ``[key, case, result, message]``."""
        return [self.key, self.case, self.result, self.message]


@dataclass(frozen=True)
class CheckResult:
    """Outcome of one check: its key, stage, human name, result and a how-to-fix message."""

    key: str
    stage: str
    case: str
    result: str
    message: str

    @property
    def passed(self) -> bool:
        return self.result == TEST_STATUS.PASSED

    @property
    def failed(self) -> bool:
        return self.result == TEST_STATUS.NOT_PASSED

    def to_print_item(self) -> PrintItem:
        return PrintItem(self.key, self.case, self.result, self.message)


class Introspectable(ABC):  # noqa: B024 - a marker base, as in the reference
    """Anything with an ``artifact_dir`` can be introspected (ModelArtifact, GenericModel)."""

    artifact_dir: str


STAGE_FILES = "Mandatory files"
STAGE_SCORE = "score.py"
STAGE_RUNTIME = "runtime.yaml"

CASES: dict[str, tuple[str, str]] = {
    "score_py": (STAGE_FILES, "score.py is present"),
    "runtime_yaml": (STAGE_FILES, "runtime.yaml is present"),
    "score_syntax": (STAGE_SCORE, "score.py parses"),
    "score_load_model": (STAGE_SCORE, "load_model() is defined at top level"),
    "score_predict": (STAGE_SCORE, "predict() is defined at top level"),
    "score_predict_data": (STAGE_SCORE, "predict()'s first argument is data"),
    "score_predict_arg": (STAGE_SCORE, "predict()'s other arguments have defaults"),
    "runtime_version": (STAGE_RUNTIME, f"MODEL_ARTIFACT_VERSION is {MODEL_ARTIFACT_VERSION}"),
    "runtime_env_python": (STAGE_RUNTIME, "INFERENCE_PYTHON_VERSION is supported"),
    "runtime_env_path": (STAGE_RUNTIME, "INFERENCE_ENV_PATH is set"),
    "runtime_path_exist": (STAGE_RUNTIME, "INFERENCE_ENV_PATH exists in object storage"),
}
"""Every check, in run order: key -> (stage, name)."""


class _Checks:
    """Collects check results in order."""

    def __init__(self) -> None:
        self.results: list[CheckResult] = []

    def add(self, key: str, result: str, message: str) -> None:
        stage, case = CASES[key]
        self.results.append(CheckResult(key, stage, case, result, message))

    def passed(self, key: str, message: str) -> None:
        self.add(key, TEST_STATUS.PASSED, message)

    def failed(self, key: str, message: str) -> None:
        self.add(key, TEST_STATUS.NOT_PASSED, message)

    def skipped(self, keys: list[str] | str, message: str) -> None:
        for key in [keys] if isinstance(keys, str) else keys:
            self.add(key, TEST_STATUS.NOT_TESTED, message)


_SCORE_KEYS = ["score_syntax", "score_load_model", "score_predict", "score_predict_data",
               "score_predict_arg"]  # fmt: skip
_RUNTIME_KEYS = ["runtime_version", "runtime_env_python", "runtime_env_path",
                 "runtime_path_exist"]  # fmt: skip


def _check_files(artifact_dir: str, checks: _Checks) -> tuple[bool, bool]:
    """Stage 1: are score.py and runtime.yaml at the top level of the artifact?"""
    found = []
    for key, name, how in (
        ("score_py", SCORE_PY, "run prepare() or pass score_py_uri= to add one"),
        ("runtime_yaml", RUNTIME_YAML, "run prepare() with inference_conda_env= to write one"),
    ):
        if os.path.isfile(os.path.join(artifact_dir, name)):
            checks.passed(key, f"{name} found.")
            found.append(True)
        else:
            checks.failed(key, f"{name} is missing from {artifact_dir!r}; {how}.")
            found.append(False)
    return found[0], found[1]


def _check_score(path: str, checks: _Checks) -> None:
    """Stage 2: score.py parses and defines load_model() and predict(data, ...)."""
    with open(path, "rb") as fh:
        source = fh.read()
    for key, result, message in _score_findings(source):
        checks.add(key, result, message)


@functools.lru_cache(maxsize=16)
def _score_findings(source: bytes) -> tuple[tuple[str, str, str], ...]:
    """The score.py checks for one source text (cached: generated score.py files repeat)."""
    checks = _Checks()
    _check_score_source(source, checks)
    return tuple((r.key, r.result, r.message) for r in checks.results)


def _check_score_source(source: bytes, checks: _Checks) -> None:
    try:
        tree = ast.parse(source, filename=SCORE_PY)
    except SyntaxError as exc:
        checks.failed(
            "score_syntax",
            f"score.py does not parse: {exc.msg} at line {exc.lineno}. Fix the syntax error.",
        )
        checks.skipped(_SCORE_KEYS[1:], "Skipped because score.py does not parse.")
        return
    except (ValueError, UnicodeDecodeError) as exc:
        checks.failed("score_syntax", f"score.py is not valid Python source ({exc}).")
        checks.skipped(_SCORE_KEYS[1:], "Skipped because score.py does not parse.")
        return
    checks.passed("score_syntax", "score.py parses.")
    functions = {
        node.name: node
        for node in tree.body
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
    }
    if "load_model" in functions:
        checks.passed("score_load_model", "load_model() found.")
    else:
        checks.failed(
            "score_load_model",
            "score.py has no top-level load_model(); define `def load_model():` that returns "
            "the deserialized model.",
        )
    predict = functions.get("predict")
    if predict is None:
        checks.failed(
            "score_predict",
            "score.py has no top-level predict(); define `def predict(data, model=load_model()):`"
            " that returns {'prediction': ...}.",
        )
        checks.skipped(_SCORE_KEYS[3:], "Skipped because score.py has no predict().")
        return
    checks.passed("score_predict", "predict() found.")
    args = predict.args
    positional = [*args.posonlyargs, *args.args]
    if positional and positional[0].arg == "data":
        checks.passed("score_predict_data", "predict()'s first argument is data.")
    else:
        first = repr(positional[0].arg) if positional else "missing"
        checks.failed(
            "score_predict_data",
            f"predict()'s first argument is {first}; make it `data` (the deployment passes the "
            "request payload as data).",
        )
    without_default = [a.arg for a in positional[1 : len(positional) - len(args.defaults)]]
    without_default += [
        a.arg for a, d in zip(args.kwonlyargs, args.kw_defaults, strict=True) if d is None
    ]
    if without_default:
        checks.failed(
            "score_predict_arg",
            f"predict() arguments {', '.join(without_default)} have no default; give every "
            "argument after data a default value (e.g. model=load_model()).",
        )
    else:
        checks.passed("score_predict_arg", "predict()'s other arguments have defaults.")


def _load_runtime(path: str) -> tuple[dict[str, Any] | None, str]:
    """Parses runtime.yaml into a dict, or returns (None, reason)."""
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        with open(path, "rb") as fh:
            data = yaml.load(fh, Loader=loader)
    except yaml.YAMLError as exc:
        return None, f"runtime.yaml is not valid YAML ({str(exc).splitlines()[0]})"
    if not isinstance(data, Mapping):
        return None, "runtime.yaml does not hold a mapping of keys to values"
    return dict(data), ""


def _inference_env(runtime: Mapping[str, Any]) -> Mapping[str, Any]:
    deployment = runtime.get("MODEL_DEPLOYMENT")
    env = deployment.get("INFERENCE_CONDA_ENV") if isinstance(deployment, Mapping) else None
    return env if isinstance(env, Mapping) else {}


RemoteExists = Callable[[str], bool]


def _check_runtime(path: str, checks: _Checks, exists: RemoteExists | None) -> None:
    """Stage 3: runtime.yaml has the version, a supported Python and a reachable env path."""
    runtime, problem = _load_runtime(path)
    if runtime is None:
        checks.failed("runtime_version", f"{problem}. Regenerate it with prepare().")
        checks.skipped(_RUNTIME_KEYS[1:], "Skipped because runtime.yaml could not be read.")
        return
    version = runtime.get("MODEL_ARTIFACT_VERSION")
    if not field_problems("MODEL_ARTIFACT_VERSION", version):
        checks.passed("runtime_version", f"MODEL_ARTIFACT_VERSION is {MODEL_ARTIFACT_VERSION}.")
    else:
        checks.failed(
            "runtime_version",
            f"MODEL_ARTIFACT_VERSION is {version!r}; set it to '{MODEL_ARTIFACT_VERSION}' "
            "(or regenerate runtime.yaml with prepare()).",
        )
    env = _inference_env(runtime)
    python = env.get("INFERENCE_PYTHON_VERSION")
    if python_version_supported(python):
        checks.passed("runtime_env_python", f"INFERENCE_PYTHON_VERSION is {python}.")
    else:
        checks.failed(
            "runtime_env_python",
            f"MODEL_DEPLOYMENT.INFERENCE_CONDA_ENV.INFERENCE_PYTHON_VERSION is {python!r}; set "
            f"it to the conda pack's Python, one of {', '.join(SUPPORTED_PYTHON_VERSIONS)} "
            "(prepare(inference_python_version=...)).",
        )
    env_path = env.get("INFERENCE_ENV_PATH")
    env_path = env_path.strip() if isinstance(env_path, str) else env_path
    path_key = "MODEL_DEPLOYMENT.INFERENCE_CONDA_ENV.INFERENCE_ENV_PATH"
    if env_path and not field_problems(path_key, env_path):
        checks.passed("runtime_env_path", f"INFERENCE_ENV_PATH is {env_path}.")
    else:
        checks.failed(
            "runtime_env_path",
            f"MODEL_DEPLOYMENT.INFERENCE_CONDA_ENV.INFERENCE_ENV_PATH is {env_path!r}; set it "
            "to the conda pack's object storage URI oci://<bucket>@<namespace>/<path> "
            "(prepare(inference_conda_env=...)).",
        )
        checks.skipped("runtime_path_exist", "Skipped because INFERENCE_ENV_PATH is not set.")
        return
    _check_env_path_exists(env_path, checks, exists)


def _check_env_path_exists(uri: str, checks: _Checks, exists: RemoteExists | None) -> None:
    """Looks the conda pack up in object storage; unreachable storage means Skipped."""
    if exists is None:
        checks.skipped("runtime_path_exist", "Skipped: the object storage check was turned off.")
        return
    try:
        found = exists(uri)
    except Exception as exc:
        reason = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}"
        message = (
            f"Object storage could not be reached to look up {uri} ({reason}). "
            "Check your OCI auth and network, then re-run introspection."
        )
        warnings.warn(message, IntrospectionWarning, stacklevel=4)
        checks.skipped("runtime_path_exist", message)
        return
    if found:
        checks.passed("runtime_path_exist", f"{uri} exists in object storage.")
    else:
        checks.failed(
            "runtime_path_exist",
            f"{uri} was not found in object storage; publish the conda pack there or "
            "point INFERENCE_ENV_PATH at an existing pack.",
        )


@functools.lru_cache(maxsize=1)
def _no_retry() -> tuple[Any, Any]:
    """One retry and one circuit-breaker strategy object, so the bounded filesystem of an auth
    is built once and reused (its cache key holds them)."""
    import oci

    return oci.retry.NoneRetryStrategy(), oci.circuit_breaker.NoCircuitBreakerStrategy()


def _bounded_filesystem(auth: AuthLike, timeout: float) -> Any:
    """An ocifs filesystem whose every SDK call gives up after ``timeout`` seconds.

    No retries and no circuit breaker: each call is one request with a connect and a read
    timeout, so an unanswering endpoint costs at most ``timeout`` per request and leaves no
    work running behind the caller.
    """
    retry, breaker = _no_retry()
    return resolve_auth(auth).filesystem(
        timeout=(timeout, timeout), retry_strategy=retry, circuit_breaker_strategy=breaker
    )


def _default_exists(auth: AuthLike, timeout: float) -> RemoteExists:
    """Object (or prefix) lookup bounded by ``timeout`` per request; errors other than
    "not found" propagate so the check is Skipped rather than Failed."""

    def exists(uri: str) -> bool:
        fs = _bounded_filesystem(auth, timeout)
        try:
            fs.info(uri)
        except FileNotFoundError:
            return False
        return True

    return exists


def run_checks(
    artifact_dir: str,
    *,
    auth: AuthLike = None,
    check_remote: bool = True,
    remote_timeout: float = REMOTE_CHECK_TIMEOUT,
    exists: RemoteExists | None = None,
) -> list[CheckResult]:
    """Runs every check over ``artifact_dir`` in stage order and returns their results.

    ``exists(uri) -> bool`` overrides the object storage lookup; ``check_remote=False`` skips it.
    ``remote_timeout`` bounds the connect and the read of each lookup request (no retries).
    """
    if not os.path.isdir(artifact_dir):
        raise FileNotFoundError(
            f"Artifact directory {artifact_dir!r} does not exist; run prepare() first or pass "
            "the folder that holds score.py and runtime.yaml."
        )
    checks = _Checks()
    has_score, has_runtime = _check_files(artifact_dir, checks)
    if has_score:
        _check_score(os.path.join(artifact_dir, SCORE_PY), checks)
    else:
        checks.skipped(_SCORE_KEYS, "Skipped because score.py is missing.")
    if has_runtime:
        lookup = (exists or _default_exists(auth, remote_timeout)) if check_remote else None
        _check_runtime(os.path.join(artifact_dir, RUNTIME_YAML), checks, lookup)
    else:
        checks.skipped(_RUNTIME_KEYS, "Skipped because runtime.yaml is missing.")
    return checks.results


def _artifact_dir_of(artifact: Any) -> str:
    if artifact is None:
        raise ValueError("ModelIntrospect needs an artifact: a ModelArtifact or a folder path.")
    if isinstance(artifact, (str, os.PathLike)):
        return os.fspath(artifact)
    artifact_dir = getattr(artifact, "artifact_dir", None)
    if artifact_dir is None:
        raise TypeError(
            f"ModelIntrospect cannot introspect a {type(artifact).__name__}; pass a "
            "ModelArtifact, a GenericModel or the artifact folder path."
        )
    return os.fspath(artifact_dir)


RESULT_COLUMNS = ("Test key", "Test name", "Result", "Message")
_CATALOG_SAFE = frozenset(chr(c) for c in range(32, 127)) - {'"', "\\"}


def catalog_message(message: str, max_chars: int = CATALOG_MESSAGE_MAX_CHARS) -> str:
    """``message`` as stored in the catalog: printable ASCII without quotes or backslashes
    (each character then costs one byte of the metadata budget), at most ``max_chars`` long."""
    swaps = {'"': "'", "\\": "/"}
    text = "".join(
        ch if ch in _CATALOG_SAFE else swaps.get(ch, " " if ch.isspace() else "?") for ch in message
    )
    return text if len(text) <= max_chars else text[: max_chars - 3] + "..."


def _test_result_entry(result: CheckResult) -> dict[str, Any]:
    """One check as an entry of the ArtifactTestResults value."""
    return {
        "category": result.stage,
        "description": result.case,
        "result": result.result,
        "success": True if result.passed else (False if result.failed else None),
        **({"error_msg": catalog_message(result.message)} if not result.passed else {}),
    }


def worst_case_test_results() -> dict[str, dict[str, Any]]:
    """The largest ArtifactTestResults value introspection can produce: every check of
    :data:`CASES` not passed, with the longest status and a message of the maximum length."""
    longest_status = max((TEST_STATUS.NOT_PASSED, TEST_STATUS.NOT_TESTED), key=len)
    entries = {}
    for key, (stage, case) in CASES.items():
        entry = _test_result_entry(CheckResult(key, stage, case, longest_status, ""))
        entry["success"] = False  # "false" is the longest JSON of True/False/None
        entry["error_msg"] = "x" * CATALOG_MESSAGE_MAX_CHARS
        entries[key] = entry
    return entries


class ModelIntrospect:
    """Introspects a model artifact and keeps the results of the last run.

    ``status`` is Passed (no check failed), Failed (at least one did) or Skipped (not run yet).
    """

    def __init__(
        self,
        artifact: Any,
        *,
        auth: AuthLike = None,
        check_remote: bool = True,
        remote_timeout: float = REMOTE_CHECK_TIMEOUT,
    ) -> None:
        self.artifact_dir = _artifact_dir_of(artifact)
        self.auth = auth
        self.check_remote = check_remote
        self.remote_timeout = remote_timeout
        self.results: list[CheckResult] = []

    def __call__(self) -> pd.DataFrame:
        return self.run()

    def run(self) -> pd.DataFrame:
        """Runs every check and returns the results table."""
        self.results = run_checks(
            self.artifact_dir,
            auth=self.auth,
            check_remote=self.check_remote,
            remote_timeout=self.remote_timeout,
        )
        return self.to_dataframe()

    @property
    def failures(self) -> int:
        """How many checks failed."""
        return sum(1 for r in self.results if r.failed)

    @property
    def status(self) -> str:
        """Passed, Failed, or Skipped when introspection has not run."""
        if not self.results:
            return TEST_STATUS.NOT_TESTED
        return TEST_STATUS.NOT_PASSED if self.failures else TEST_STATUS.PASSED

    def to_dataframe(self) -> pd.DataFrame:
        """The results as a DataFrame: Test key, Test name, Result, Message."""
        import pandas as pd

        return pd.DataFrame(
            [r.to_print_item().to_list() for r in self.results], columns=list(RESULT_COLUMNS)
        )

    def to_dict(self) -> dict[str, dict[str, Any]]:
        """The results as the value of the ``ArtifactTestResults`` taxonomy metadata; messages
        pass through :func:`catalog_message`, so the value never exceeds
        :func:`worst_case_test_results`."""
        return {r.key: _test_result_entry(r) for r in self.results}

    def raise_if_failed(self) -> None:
        """Raises IntrospectionNotPassed naming every failed check and its fix."""
        failed = [r for r in self.results if r.failed]
        if failed:
            lines = "\n".join(f"  - {r.key}: {r.message}" for r in failed)
            raise IntrospectionNotPassed(
                f"Introspection of {self.artifact_dir!r} failed {len(failed)} check(s):\n"
                f"{lines}\nFix them and re-run introspection, or pass ignore_introspection=True."
            )

    def __repr__(self) -> str:
        if not self.results:
            return f"ModelIntrospect({self.artifact_dir!r}, status={self.status})"
        return self.to_dataframe().to_string(index=False)


def introspect_artifact(
    artifact_dir: str,
    *,
    auth: AuthLike = None,
    check_remote: bool = True,
    metadata: Any = None,
) -> ModelIntrospect:
    """Runs introspection; records the results in ``metadata``'s ArtifactTestResults if given."""
    intro = ModelIntrospect(artifact_dir, auth=auth, check_remote=check_remote)
    intro.run()
    if metadata is not None:
        record_test_results(metadata.taxonomy, intro)
    return intro


def record_test_results(taxonomy: Any, intro: ModelIntrospect) -> None:
    """Stores introspection results as the ArtifactTestResults taxonomy value."""
    taxonomy.update_values(**{MetadataTaxonomyKeys.ARTIFACT_TEST_RESULT: intro.to_dict()})
