"""The summary-status table of a flow run: the lifecycle table ``GenericModel.summary_status()``
shows (each stage, its status and the action needed), kept stage by stage as the run goes and
published as a Prefect table artifact, also when the run fails.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from prefect.artifacts import create_table_artifact

from ocimodel.summary import ModelState, SummaryDetail, SummaryStatus

SUMMARY_STATUS_KEY = "summary-status"
PREPARE_DETAILS = (
    SummaryDetail.RUNTIME_YAML,
    SummaryDetail.SCORE_PY,
    SummaryDetail.SERIALIZED,
    SummaryDetail.METADATA,
)
"""The rows the prepare stage fills."""


class RunSummary:
    """What a run has done so far, as the summary-status table."""

    def __init__(self) -> None:
        self.status = SummaryStatus()

    @contextlib.contextmanager
    def stage(self, *details: str) -> Iterator[None]:
        """Marks ``details`` Done when the block ends; when it raises, the first of them Needs
        Action, with what the error says to change."""
        try:
            yield
        except Exception as exc:
            self.status.failed(details[0], exc)
            raise
        for detail in details:
            self.status.mark(detail, ModelState.DONE)

    def mark(self, status: ModelState, *details: str) -> None:
        """Sets the status of ``details`` (e.g. Not Applicable for a stage the run skips)."""
        for detail in details:
            self.status.mark(detail, status)

    def deployment(self, state: str | None) -> None:
        """The deploy and predict rows from the deployment's lifecycle state."""
        self.status.deployment_state(state)

    def publish(self, description: str) -> None:
        """The table as the run's ``summary-status`` artifact."""
        create_table_artifact(
            table=self.status.df.to_dict(orient="records"),
            key=SUMMARY_STATUS_KEY,
            description=description,
        )
