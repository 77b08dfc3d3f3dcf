"""The lifecycle summary table: each step of a model's life, its status and what to do next.

``GenericModel.summary_status()`` shows it; every stage (prepare, verify, introspect, save,
deploy, predict) updates the rows it owns.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd


class ModelState(Enum):
    """Status of one row of the summary table."""

    DONE = "Done"
    AVAILABLE = "Available"
    NOTAVAILABLE = "Not Available"
    NEEDSACTION = "Needs Action"
    NOTAPPLICABLE = "Not Applicable"


class SummaryDetail:
    """The ``Details`` text of every row; used as the row key by the update methods."""

    INITIATED = "Initiated the model"
    RUNTIME_YAML = "Generated runtime.yaml"
    SCORE_PY = "Generated score.py"
    SERIALIZED = "Serialized model"
    METADATA = "Populated metadata (Custom, Taxonomy and Provenance)"
    VERIFIED = "Local tested .predict from score.py"
    INTROSPECTED = "Conducted Introspect Test"
    UPLOADED = "Uploaded artifact to model catalog"
    DEPLOYED = "Deployed the model"
    PREDICTED = "Called deployment predict endpoint"


@dataclass
class SummaryRow:
    """One row: the step (method) it belongs to, its status, detail and needed action."""

    step: str
    detail: str
    status: ModelState
    action: str = ""


def _initial_rows() -> list[SummaryRow]:
    """Rows of a freshly created model: initiated, prepare available, the rest not yet."""
    d, s = SummaryDetail, ModelState
    return [
        SummaryRow("initiate", d.INITIATED, s.DONE),
        SummaryRow("prepare()", d.RUNTIME_YAML, s.AVAILABLE),
        SummaryRow("prepare()", d.SCORE_PY, s.AVAILABLE),
        SummaryRow("prepare()", d.SERIALIZED, s.AVAILABLE),
        SummaryRow("prepare()", d.METADATA, s.AVAILABLE),
        SummaryRow("verify()", d.VERIFIED, s.NOTAVAILABLE),
        SummaryRow("save()", d.INTROSPECTED, s.NOTAVAILABLE),
        SummaryRow("save()", d.UPLOADED, s.NOTAVAILABLE),
        SummaryRow("deploy()", d.DEPLOYED, s.NOTAVAILABLE),
        SummaryRow("predict()", d.PREDICTED, s.NOTAVAILABLE),
    ]


COLUMNS = ("Step", "Status", "Details", "Actions Needed")

PREPARE_STEP_DETAILS = {
    "generate-runtime-yaml": SummaryDetail.RUNTIME_YAML,
    "generate-score-py": SummaryDetail.SCORE_PY,
    "populate-metadata": SummaryDetail.METADATA,
    "serialize-model": SummaryDetail.SERIALIZED,
}
"""The row of each prepare pipeline step (:data:`ocimodel.pipeline.PREPARE_STEPS` names)."""

_ACTION_LIMIT = 300

_DEPLOYMENT_ACTIONS = {
    "CREATING": "The deployment is CREATING; wait for ACTIVE (model.model_deployment.sync()).",
    "UPDATING": "The deployment is UPDATING; wait for ACTIVE (model.model_deployment.sync()).",
    "INACTIVE": "The deployment is INACTIVE; activate it: model.model_deployment.activate().",
    "NEEDS_ATTENTION": "The deployment NEEDS_ATTENTION; restart it: model.restart_deployment().",
    "FAILED": "The deployment FAILED; see its work request logs, fix and deploy() again.",
}


def action_of(error: BaseException) -> str:
    """The "Actions Needed" text for a failed step: the first line of the error, which says
    what to change (ocimodel's typed errors do)."""
    text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    if len(text) > _ACTION_LIMIT:
        text = text[: _ACTION_LIMIT - 3] + "..."
    return f"{type(error).__name__}: {text}"


class SummaryStatus:
    """Tracks the status of each lifecycle step of one model and renders it as a table."""

    def __init__(self) -> None:
        self._rows = _initial_rows()

    def _row(self, detail: str) -> SummaryRow:
        for row in self._rows:
            if row.detail == detail:
                return row
        known = ", ".join(repr(r.detail) for r in self._rows)
        raise ValueError(f"Unknown summary detail {detail!r}; use one of: {known}.")

    def update_status(self, detail: str, status: str | ModelState) -> None:
        """Sets the status of the row whose ``Details`` is ``detail``."""
        self._row(detail).status = ModelState(
            status.value if isinstance(status, ModelState) else status
        )

    def update_action(self, detail: str, action: str) -> None:
        """Sets the action the user needs to take for the row whose ``Details`` is ``detail``."""
        self._row(detail).action = action or ""

    def mark(self, detail: str, status: ModelState, action: str = "") -> None:
        """Sets status and action of one row at once (clears the action by default)."""
        row = self._row(detail)
        row.status, row.action = status, action

    def failed(self, detail: str, error: BaseException) -> None:
        """Marks a row Needs Action with what the error says to change."""
        self.mark(detail, ModelState.NEEDSACTION, action_of(error))

    def deployment_state(self, state: str | None) -> None:
        """Sets the deploy and predict rows from the attached deployment's lifecycle state
        (None: no deployment)."""
        d, s = SummaryDetail, ModelState
        predicted = self._row(d.PREDICTED)
        if state == "ACTIVE":
            self.mark(d.DEPLOYED, s.DONE)
            if predicted.status is s.NOTAVAILABLE:
                self.mark(d.PREDICTED, s.AVAILABLE)
            return
        if state in (None, "DELETING", "DELETED"):
            saved = self._row(d.UPLOADED).status is s.DONE
            self.mark(d.DEPLOYED, s.AVAILABLE if saved else s.NOTAVAILABLE)
        else:
            status = s.DONE if state in ("CREATING", "UPDATING") else s.NEEDSACTION
            self.mark(d.DEPLOYED, status, _DEPLOYMENT_ACTIONS.get(state, ""))
        self.mark(d.PREDICTED, s.NOTAVAILABLE)

    @property
    def df(self) -> pd.DataFrame:
        """The table as a DataFrame with columns Step, Status, Details, Actions Needed."""
        import pandas as pd

        return pd.DataFrame(
            [(r.step, r.status.value, r.detail, r.action) for r in self._rows],
            columns=list(COLUMNS),
        )

    def __repr__(self) -> str:
        return self.df.to_string(index=False)
