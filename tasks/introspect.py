"""Prefect task of the introspection stage: check the artifact and publish the results table."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from prefect import get_run_logger, task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE

from ocimodel.errors import IntrospectionNotPassed
from ocimodel.introspect import introspect_artifact as run_introspection

if TYPE_CHECKING:
    from ocimodel.oci.auth import AuthLike

INTROSPECTION_ARTIFACT_KEY = "model-introspection"


def describe_check(result: Any) -> str:
    """One log line for a check: ``key Result: message``, the result said once even when the
    message already starts with it (``Skipped because ...``)."""
    if result.message.startswith(result.result):
        return f"{result.key}: {result.message}"
    return f"{result.key} {result.result}: {result.message}"


@task(name="introspect-artifact", cache_policy=NO_CACHE)
def introspect_artifact(
    artifact_dir: str,
    auth: AuthLike = None,
    check_remote: bool = True,
    artifact_key: str = INTROSPECTION_ARTIFACT_KEY,
) -> dict[str, Any]:
    """Runs every introspection check and publishes them as a Prefect table artifact.

    Reads the artifact only, so re-running it is always safe. Object storage being
    unreachable makes one check Skipped rather than failing the task. Returns
    ``{"status", "failures", "results"}`` where results are the ArtifactTestResults value.
    """
    logger = get_run_logger()
    intro = run_introspection(artifact_dir, auth=auth, check_remote=check_remote)
    table = intro.to_dataframe().to_dict(orient="records")
    create_table_artifact(
        table=table,
        key=artifact_key,
        description=f"Introspection of {artifact_dir}: {intro.status}, "
        f"{intro.failures} failure(s).",
    )
    for result in intro.results:
        if not result.passed:
            logger.warning("%s", describe_check(result))
    logger.info(
        "Introspection %s: %d check(s), %d failed",
        intro.status,
        len(intro.results),
        intro.failures,
    )
    return {"status": intro.status, "failures": intro.failures, "results": intro.to_dict()}


def require_passed(report: dict[str, Any], where: str, ignore: bool = False) -> None:
    """Raises IntrospectionNotPassed naming the failed checks of ``report`` (what
    :func:`introspect_artifact` returned for the artifact ``where``), unless ``ignore``."""
    if not report["failures"] or ignore:
        return
    failed = [key for key, r in report["results"].items() if r["success"] is False]
    raise IntrospectionNotPassed(
        f"The artifact {where} failed introspection checks {failed}; see the "
        "'model-introspection' table artifact for how to fix each one, or pass "
        "ignore_introspection=True."
    )
