"""Scheduled retraining: train on the latest data, and deploy only a model that does better.

:func:`retrain_and_deploy` reads a CSV data set (a local path or ``oci://``), holds out a
fraction of it, trains a scikit-learn model on the rest and scores it on the holdout. The model
the deployment serves now is scored on the same holdout through its live endpoint, so the two
are compared on the same rows by the same metric, whatever trained the deployed one. Only a
candidate that beats it (by more than ``min_improvement``) is prepared, saved, with both scores
in its custom metadata, and promoted onto the deployment (:func:`ocimodel.flows.operate.
promote_model`, which swaps it in without downtime and records the model it replaced for a
rollback); with no deployment, the first candidate gets a new one, tagged with its name
(``ocimodel-retrain``) so the next runs find it. Each run publishes the
comparison as a table artifact (``retrain-metrics``), deployed or not.

The training is deliberately plain (numeric columns scaled, text columns one-hot encoded, a
linear model or a random forest): a starting point for the nightly job of
``deployments/prefect.yaml``. Running it twice on the same data deploys once: the second
candidate equals the deployed model, which is not an improvement.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pandas as pd
from prefect import flow, get_run_logger, task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run

from ocimodel.artifact.uploader import work_dir
from ocimodel.deploy import (
    ACTIVE,
    DEFAULT_MAX_WAIT_TIME,
    DEFAULT_POLL_INTERVAL,
    DeploymentStateError,
)
from ocimodel.errors import OcimodelError
from ocimodel.files import is_oci_uri, local_path
from ocimodel.flows._blocks import load_target
from ocimodel.flows._runs import Ledger, OperationRun, Wait
from ocimodel.flows.operate import promote_model, served_model
from ocimodel.flows.quickstart import CONDA_SLUG
from ocimodel.metadata.enums import MetadataCustomCategory
from ocimodel.metadata.prepared import new_metadata
from ocimodel.oci import deployment as md
from ocimodel.pipeline import PrepareSpec, run_prepare
from ocimodel.save import SaveSpec, resolve_placement
from ocimodel.tasks._retry import REMOTE_TASK
from ocimodel.tasks.deploy import get_deployment
from ocimodel.tasks.introspect import introspect_artifact
from ocimodel.tasks.predict import predict
from ocimodel.tasks.prepare import run_as_task
from ocimodel.tasks.save import save_model

__all__ = [
    "METRICS",
    "METRICS_ARTIFACT_KEY",
    "Metric",
    "RETRAIN_TAG",
    "RetrainError",
    "retrain_and_deploy",
]

METRICS_ARTIFACT_KEY = "retrain-metrics"
RETRAIN_TAG = "ocimodel-retrain"
"""Freeform tag on a deployment this flow created: its name, by which later runs find it."""
PREDICT_BATCH_ROWS = 1000
"""Holdout rows sent to the live endpoint per request (well under its 10 MB payload limit)."""


class RetrainError(ValueError, OcimodelError):
    """The data or the options cannot make a comparable candidate; nothing was deployed."""


@dataclass(frozen=True)
class Metric:
    """A holdout metric: how to compute it, whether higher is better, and the task it fits."""

    name: str
    kind: str
    """``classification`` or ``regression``: which estimator is trained."""
    higher_is_better: bool
    compute: Callable[[Any, Any], float]

    def improvement(self, candidate: float, current: float) -> float:
        """How much better the candidate is (positive: better)."""
        return candidate - current if self.higher_is_better else current - candidate


def _accuracy(y: Any, p: Any) -> float:
    from sklearn.metrics import accuracy_score

    return float(accuracy_score(y, p))


def _f1_macro(y: Any, p: Any) -> float:
    from sklearn.metrics import f1_score

    return float(f1_score(y, p, average="macro"))


def _r2(y: Any, p: Any) -> float:
    from sklearn.metrics import r2_score

    return float(r2_score(y, p))


def _mae(y: Any, p: Any) -> float:
    from sklearn.metrics import mean_absolute_error

    return float(mean_absolute_error(y, p))


def _rmse(y: Any, p: Any) -> float:
    from sklearn.metrics import mean_squared_error

    return math.sqrt(float(mean_squared_error(y, p)))


METRICS = {
    m.name: m
    for m in (
        Metric("accuracy", "classification", True, _accuracy),
        Metric("f1_macro", "classification", True, _f1_macro),
        Metric("r2", "regression", True, _r2),
        Metric("mae", "regression", False, _mae),
        Metric("rmse", "regression", False, _rmse),
    )
}
"""The metrics a run can compare by, by name."""
ESTIMATORS = ("linear", "random_forest")


def _check_options(metric: str, estimator: str, holdout_fraction: float) -> Metric:
    """The metric, once the cheap options are known to be usable."""
    if metric not in METRICS:
        raise RetrainError(f"metric {metric!r} is not one of {', '.join(METRICS)}.")
    if estimator not in ESTIMATORS:
        raise RetrainError(f"estimator {estimator!r} is not one of {', '.join(ESTIMATORS)}.")
    if not 0 < holdout_fraction < 1:
        raise RetrainError(
            f"holdout_fraction must be between 0 and 1 (e.g. 0.25), not {holdout_fraction!r}."
        )
    return METRICS[metric]


@task(name="load-dataset", **REMOTE_TASK)
def load_dataset(data_uri: str, auth: Any = None) -> pd.DataFrame:
    """Reads the CSV data set at ``data_uri`` (a local path, or ``oci://`` read with the auth's
    storage options)."""
    if is_oci_uri(data_uri):
        options = dict(auth.storage_options()) if auth is not None else None
        frame = pd.read_csv(data_uri, storage_options=options)
    else:
        frame = pd.read_csv(local_path(data_uri))
    get_run_logger().info("Read %d rows x %d columns from %s", *frame.shape, data_uri)
    return frame


@task(name="find-retrained-deployment", **REMOTE_TASK)
def find_retrained_deployment(auth: Any, properties: Any, name: str) -> str | None:
    """The newest ACTIVE deployment an earlier run created under ``name`` (tag
    ``ocimodel-retrain``) in the compartment of the properties or the environment, if any."""
    compartment, _ = resolve_placement(SaveSpec(), properties)
    found = [
        d
        for d in md.find_model_deployments_by_tag(auth, compartment, RETRAIN_TAG, name)
        if d.lifecycle_state == ACTIVE
    ]
    if found:
        get_run_logger().info("Found deployment %s of %s=%s", found[-1].id, RETRAIN_TAG, name)
    return found[-1].id if found else None


def _estimator(kind: str, estimator: str, X: pd.DataFrame, random_state: int) -> Any:
    """A pipeline that scales numeric columns, one-hot encodes the others, then fits."""
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    numeric = [c for c in X.columns if pd.api.types.is_numeric_dtype(X[c])]
    other = [c for c in X.columns if c not in numeric]
    columns = ColumnTransformer(
        [("numeric", StandardScaler(), numeric)]
        + ([("text", OneHotEncoder(handle_unknown="ignore"), other)] if other else [])
    )
    if estimator == "random_forest":
        cls = RandomForestClassifier if kind == "classification" else RandomForestRegressor
        final = cls(n_estimators=100, random_state=random_state)
    elif kind == "classification":
        final = LogisticRegression(max_iter=1000)
    else:
        final = Ridge()
    return make_pipeline(columns, final)


@task(name="train-model", cache_policy=NO_CACHE)
def train_model(X: pd.DataFrame, y: pd.Series, kind: str, estimator: str, random_state: int) -> Any:
    """Fits the candidate on the training rows."""
    model = _estimator(kind, estimator, X, random_state).fit(X, y)
    get_run_logger().info("Trained %s on %d rows", type(model[-1]).__name__, len(X))
    return model


def _deployed_predictions(url: str, X: pd.DataFrame, auth: Any) -> list[Any]:
    """The live endpoint's predictions for the holdout, in batches."""
    out: list[Any] = []
    for start in range(0, len(X), PREDICT_BATCH_ROWS):
        answer = predict(url, X.iloc[start : start + PREDICT_BATCH_ROWS], auth=auth)
        predictions = answer.get("prediction") if isinstance(answer, dict) else None
        if not isinstance(predictions, list):
            raise RetrainError(
                f"The deployment at {url} answered without a 'prediction' list; its score.py "
                "must return {'prediction': [...]} to be compared."
            )
        out.extend(predictions)
    if len(out) != len(X):
        raise RetrainError(
            f"The deployment at {url} returned {len(out)} predictions for {len(X)} rows."
        )
    return out


def _use_case(kind: str, y: pd.Series) -> str:
    if kind == "regression":
        return "regression"
    return "binary_classification" if y.nunique() <= 2 else "multinomial_classification"


def _metrics_metadata(
    metric: Metric, candidate: float, current: float | None, data_uri: str, rows: dict[str, int]
) -> Any:
    """Custom metadata holding the comparison (category Performance) and the data set."""
    metadata = new_metadata()
    perf = MetadataCustomCategory.PERFORMANCE
    metadata.custom.add(
        f"holdout-{metric.name}", round(candidate, 6), "The model's holdout score", perf
    )
    if current is not None:
        metadata.custom.add(
            f"replaced-model-holdout-{metric.name}",
            round(current, 6),
            "The holdout score of the model deployed before it",
            perf,
        )
    metadata.custom.add("holdout-rows", rows["holdout"], "Rows scored", perf)
    metadata.custom.set_training_data(data_uri, f"{rows['train']} rows")
    return metadata


def _publish_metrics(
    metric: Metric,
    candidate: float,
    current: float | None,
    current_model: str | None,
    decision: str,
    rows: dict[str, int],
) -> None:
    """The ``retrain-metrics`` table: both scores on the same holdout, and the decision."""
    table = [
        {"model": "candidate (this run)", "metric": metric.name, "score": round(candidate, 6)},
        {
            "model": f"deployed {current_model}" if current_model else "deployed (none)",
            "metric": metric.name,
            "score": None if current is None else round(current, 6),
        },
    ]
    better = "higher" if metric.higher_is_better else "lower"
    create_table_artifact(
        table=table,
        key=METRICS_ARTIFACT_KEY,
        description=(
            f"{decision} ({metric.name}, {better} is better; {rows['holdout']} holdout rows, "
            f"{rows['train']} training rows)."
        ),
    )


@flow(name="retrain-and-deploy")
def retrain_and_deploy(
    data_uri: str,
    target_column: str,
    deployment_id: str | None = None,
    credentials_block: str | None = None,
    settings_block: str | None = None,
    holdout_fraction: float = 0.25,
    metric: str = "accuracy",
    estimator: str = "linear",
    feature_columns: list[str] | None = None,
    min_improvement: float = 0.0,
    random_state: int = 0,
    inference_conda_env: str | None = None,
    model_display_name: str | None = None,
    deployment_display_name: str | None = None,
    artifact_dir: str | None = None,
    force: bool = False,
    delete_model_on_failure: bool = False,
    max_wait_time: float = DEFAULT_MAX_WAIT_TIME,
    poll_interval: float = DEFAULT_POLL_INTERVAL,
) -> dict[str, Any]:
    """Retrains on the latest data and deploys the new model only if it beats the deployed
    one on a holdout.

    The deployed model is scored through its live endpoint on the same holdout rows. The
    candidate is saved (both scores in its custom metadata) and promoted without downtime
    only when it improves the score by more than min_improvement; the retrain-metrics table
    shows the comparison either way. Returns {"deployed", "model_id", "deployment_id", "url",
    "metric", "candidate_score", "current_score"}.

    Args:
        data_uri: The CSV data set: a path on the worker or oci://bucket@namespace/file.csv.
        target_column: The column to predict.
        deployment_id: OCID of the deployment to compare with and promote onto; unset uses
            the deployment an earlier run created under deployment_display_name, or creates it.
        credentials_block: Name of an OCI Credentials block; unset uses the worker's
            environment.
        settings_block: Name of an OCI Model Deployment Settings block: compartment, project,
            conda environment, shape and other defaults.
        holdout_fraction: Share of the rows held out for scoring (0 to 1).
        metric: accuracy or f1_macro (trains a classifier); r2, mae or rmse (a regressor).
        estimator: linear or random_forest.
        feature_columns: The columns to predict from (default: all but the target).
        min_improvement: How much better than the deployed model the candidate must score.
        random_state: Seed of the holdout split and of the estimator.
        inference_conda_env: Conda environment of the deployment (slug or oci:// URI);
            default: the settings block's, else a general machine learning pack.
        model_display_name: The new model's name in the catalog.
        deployment_display_name: Name of the deployment this flow creates and finds again
            (default: "<target_column>-retrained").
        artifact_dir: Where to prepare the artifact (default: a work folder per run).
        force: Deploy the candidate even when it is not better.
        delete_model_on_failure: Delete the saved model, rather than tag it, when deploying
            it fails.
        max_wait_time: Seconds to wait for each long operation before giving up.
        poll_interval: Longest pause in seconds between two reads of a changing deployment.
    """
    logger = get_run_logger()
    chosen = _check_options(metric, estimator, holdout_fraction)
    wait = Wait(max_wait_time, poll_interval)
    ledger = Ledger("retrain-and-deploy", deployment_id=deployment_id)
    ledger.existing_deployment = deployment_id is not None
    with OperationRun(ledger, wait, delete_model_on_failure) as run:
        target = run.target = load_target(credentials_block, settings_block)
        name = deployment_display_name or f"{target_column}-retrained"
        if deployment_id is None:
            deployment_id = find_retrained_deployment(target.auth, target.properties, name)
            ledger.deployment_id = deployment_id
            ledger.existing_deployment = deployment_id is not None
        frame = load_dataset(data_uri, target.auth)
        if target_column not in frame.columns:
            raise RetrainError(
                f"target_column {target_column!r} is not a column of {data_uri} (columns: "
                f"{', '.join(map(str, frame.columns))})."
            )
        features = list(feature_columns or [c for c in frame.columns if c != target_column])
        missing = [c for c in features if c not in frame.columns]
        if missing:
            raise RetrainError(f"feature_columns {missing} are not columns of {data_uri}.")
        data = frame.dropna(subset=[target_column])
        X, y = data[features], data[target_column]
        X_train, X_hold, y_train, y_hold = _split(X, y, chosen, holdout_fraction, random_state)
        rows = {"train": len(X_train), "holdout": len(X_hold)}

        model = train_model(X_train, y_train, chosen.kind, estimator, random_state)
        candidate = chosen.compute(y_hold, model.predict(X_hold))
        current = current_model = url = None
        if deployment_id is not None:
            deployment = get_deployment(target.auth, deployment_id)
            if deployment.lifecycle_state != ACTIVE:
                raise DeploymentStateError(
                    f"Model deployment {deployment_id} is {deployment.lifecycle_state}, so its "
                    "model cannot be scored: activate it, or run without deployment_id to "
                    "deploy the candidate on a new deployment.",
                    deployment_id=deployment_id,
                    state=deployment.lifecycle_state,
                )
            current_model, url = served_model(deployment), deployment.model_deployment_url
            current = chosen.compute(y_hold, _deployed_predictions(url, X_hold, target.auth))
        logger.info(
            "Holdout %s: candidate %.6f, deployed model %s %s",
            chosen.name,
            candidate,
            current_model or "(none)",
            "n/a" if current is None else f"{current:.6f}",
        )
        gain = None if current is None else chosen.improvement(candidate, current)
        better = gain is None or gain > min_improvement
        if not (better or force):
            decision = (
                f"Kept the deployed model: the candidate is not better by more than "
                f"{min_improvement} ({chosen.name} {candidate:.6f} vs {current:.6f})"
            )
            logger.info("%s", decision)
            _publish_metrics(chosen, candidate, current, current_model, decision, rows)
            return {
                "deployed": False,
                "model_id": None,
                "deployment_id": deployment_id,
                "url": url,
                "metric": chosen.name,
                "candidate_score": candidate,
                "current_score": current,
            }

        folder = artifact_dir or os.path.join(work_dir(), "retrain", str(flow_run.get_id()))
        prepared = run_prepare(
            model,
            PrepareSpec(
                folder,
                inference_conda_env=inference_conda_env
                or target.property("inference_conda_env")
                or CONDA_SLUG,
                use_case_type=_use_case(chosen.kind, y),
                force_overwrite=True,
                properties=target.properties,
            ),
            X_sample=X_train.head(100),
            y_sample=y_train.head(100),
            auth=target.auth,
            metadata=_metrics_metadata(chosen, candidate, current, data_uri, rows),
            execute=run_as_task,
        )
        introspect_artifact(prepared.artifact_dir, auth=target.auth)
        model_id = save_model(
            prepared.artifact_dir,
            properties=target.properties,
            auth=target.auth,
            display_name=model_display_name,
            description=f"Retrained on {data_uri}: holdout {chosen.name} {candidate:.6f}",
            bucket_uri=target.property("bucket_uri"),
        )
        ledger.model_id, ledger.model_saved = model_id, True
        decision = (
            f"Deployed model {model_id}: "
            + (
                f"{chosen.name} {candidate:.6f} vs {current:.6f}"
                if current is not None
                else "no deployed model to compare with"
            )
            + (" (forced)" if not better else "")
        )
        _publish_metrics(chosen, candidate, current, current_model, decision, rows)
        promoted = promote_model(
            model_id,
            deployment_id,
            credentials_block=credentials_block,
            settings_block=settings_block,
            deployment_display_name=name,
            freeform_tags={RETRAIN_TAG: name},
            max_wait_time=max_wait_time,
            poll_interval=poll_interval,
        )
        ledger.active = True
        logger.info("%s", decision)
        return {
            "deployed": True,
            "model_id": model_id,
            "deployment_id": promoted["deployment_id"],
            "url": promoted["url"],
            "metric": chosen.name,
            "candidate_score": candidate,
            "current_score": current,
        }


def _split(
    X: pd.DataFrame, y: pd.Series, metric: Metric, fraction: float, random_state: int
) -> tuple[pd.DataFrame, pd.DataFrame, pd.Series, pd.Series]:
    """The training and holdout rows; classes keep their proportions when each has enough."""
    from sklearn.model_selection import train_test_split

    stratify = None
    if metric.kind == "classification" and y.value_counts().min() >= 2:
        stratify = y
    if len(X) < 4:
        raise RetrainError(f"The data set has {len(X)} usable rows; it needs at least 4.")
    return train_test_split(X, y, test_size=fraction, random_state=random_state, stratify=stratify)
