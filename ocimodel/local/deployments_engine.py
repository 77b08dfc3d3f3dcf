"""The lifecycle engine of model deployments: state transitions, work requests, servers.

Each long operation (create, update, activate, deactivate, delete) records itself on the
deployment document (``_op``) with its work request, then runs in a background thread. A restart
of the service resumes interrupted operations and restarts the servers of ACTIVE deployments.
"""

from __future__ import annotations

import shutil
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from oci.data_science.models import InstancePoolModelDeploymentSystemData as PoolData
from oci.data_science.models import ModelDeployment as MD
from oci.data_science.models import WorkRequest as WR
from oci.data_science.models import WorkRequestResource as WRR

from . import deployments_validate as dv
from .core import OCIError, incorrect_state, rfc3339
from .deployments_runner import ArtifactError, ModelServers, ServerStartError, unpack_artifact
from .state import WORK_REQUEST, ServiceState

KIND = "modeldeployment"
ENGINE_KEY = "model_deployments"
ENTITY = "modelDeployment"

LIVE_STATES = frozenset(
    {
        MD.LIFECYCLE_STATE_CREATING,
        MD.LIFECYCLE_STATE_ACTIVE,
        MD.LIFECYCLE_STATE_UPDATING,
        MD.LIFECYCLE_STATE_INACTIVE,
        MD.LIFECYCLE_STATE_NEEDS_ATTENTION,
        MD.LIFECYCLE_STATE_DELETING,
    }
)
CAN_UPDATE = frozenset(
    {MD.LIFECYCLE_STATE_ACTIVE, MD.LIFECYCLE_STATE_INACTIVE, MD.LIFECYCLE_STATE_NEEDS_ATTENTION}
)
CAN_ACTIVATE = frozenset({MD.LIFECYCLE_STATE_INACTIVE})
CAN_DEACTIVATE = frozenset({MD.LIFECYCLE_STATE_ACTIVE, MD.LIFECYCLE_STATE_NEEDS_ATTENTION})
CAN_DELETE = frozenset(
    {
        MD.LIFECYCLE_STATE_ACTIVE,
        MD.LIFECYCLE_STATE_INACTIVE,
        MD.LIFECYCLE_STATE_FAILED,
        MD.LIFECYCLE_STATE_NEEDS_ATTENTION,
    }
)

NO_CONTAINER_ENGINE = (
    "No container engine is available to the local service: image {image} is recorded but not "
    "pulled; the artifact's score.py is served with the local Python runtime instead."
)


class ServiceClosing(Exception):
    """The service is shutting down; the interrupted operation resumes on the next start."""


class DeploymentEngine:
    """Runs the model deployments of one local service."""

    def __init__(self, state: ServiceState):
        self.state = state
        self.root = Path(state.data_dir) / "deployments"
        self.servers = ModelServers(self.root)
        self._closed = threading.Event()
        self._threads: set[threading.Thread] = set()
        self._lock = threading.Lock()

    # --- documents -----------------------------------------------------------------------------

    def find(self, dep_id: str, tenancy: str | None) -> dict | None:
        """A deployment document, or None when absent or another tenancy's."""
        return self.state.store.find(KIND, dep_id, tenancy)

    def get(self, dep_id: str, tenancy: str) -> dict:
        """A deployment document or 404 NotAuthorizedOrNotFound."""
        return self.state.store.get(KIND, dep_id, tenancy, "Model deployment")

    def model_in_use(self, model_id: str) -> bool:
        """Whether a deployment that is not FAILED or DELETED uses the model."""
        return any(
            dv.model_id_of(d[dv.CONFIG]) == model_id and d["lifecycleState"] in LIVE_STATES
            for d in self.state.store.list(KIND, None)
        )

    # --- operations ----------------------------------------------------------------------------

    def begin(
        self,
        dep_id: str,
        tenancy: str,
        *,
        allowed: frozenset[str],
        interim: str | None,
        operation: str,
        op: str,
        if_match: str | None = None,
        change: Callable[[dict], None] | None = None,
    ) -> str:
        """Atomically check the state, apply ``change``, open a work request, go to ``interim``.

        ``interim=None`` keeps the state ``change`` leaves.

        Returns the work request id; 409 IncorrectState when the current state forbids it.
        """
        store = self.state.store
        self.get(dep_id, tenancy)
        holder: dict[str, str] = {}

        def fn(doc: dict) -> None:
            store.check_if_match(KIND, dep_id, if_match)
            current = doc["lifecycleState"]
            if current not in allowed:
                raise incorrect_state(
                    f"Model deployment {dep_id} is {current}; {operation} needs one of "
                    f"{', '.join(sorted(allowed))}."
                )
            if change is not None:
                change(doc)
            wr = self.state.work_requests.create(
                tenancy,
                doc["compartmentId"],
                operation,
                [resource_entry(dep_id, WRR.ACTION_TYPE_IN_PROGRESS)],
            )
            holder["wr"] = wr["id"]
            if interim is not None:
                doc["lifecycleState"] = interim
            doc["lifecycleDetails"] = f"{operation} accepted."
            doc["_op"] = {"name": op, "wr": wr["id"]}

        store.modify(KIND, dep_id, fn)
        return holder["wr"]

    def spawn(self, dep_id: str) -> None:
        """Run the deployment's pending operation in a background thread."""
        thread = threading.Thread(
            target=self._run, args=(dep_id,), name=f"deployment-{dep_id[-8:]}", daemon=True
        )
        with self._lock:
            self._threads = {t for t in self._threads if t.is_alive()}
            self._threads.add(thread)
        thread.start()

    def _run(self, dep_id: str) -> None:
        doc = self.find(dep_id, None)
        if doc is None or not doc.get("_op"):
            return
        op, wr_id = doc["_op"]["name"], doc["_op"]["wr"]
        try:
            if op in ("create", "activate", "update", "restart"):
                self._bring_up(dep_id, wr_id, op)
            elif op == "deactivate":
                self._bring_down(dep_id, wr_id)
            elif op == "delete":
                self._remove(dep_id, wr_id)
        except ServiceClosing:
            return
        except Exception as exc:  # any failure ends the operation as FAILED, never silently
            if self._closed.is_set():
                return  # the store may be closing; the operation resumes on the next start
            self._fail(dep_id, wr_id, "InternalServerError", f"{type(exc).__name__}: {exc}")

    def _bring_up(self, dep_id: str, wr_id: str | None, op: str) -> None:
        works = self.state.work_requests
        doc = self.find(dep_id, None)
        tenancy = doc["_tenancy"]
        config = doc[dv.CONFIG]
        if wr_id:
            works.progress(wr_id, 5, f"{_verb(op)} model deployment {dep_id}.")
        forced = _forced_failure(self.state) if op != "restart" else None
        if forced:
            self._fail(dep_id, wr_id, "ModelDeploymentFailed", forced)
            return
        model_id = dv.model_id_of(config)
        try:
            blob = _artifact_blob(self.state, tenancy, model_id)
            artifact_dir = self.root / dep_id / f"artifact-{blob.sha256[:16]}"
            if not (artifact_dir / "score.py").is_file():
                unpack_artifact(blob.path, artifact_dir)
        except (OCIError, ArtifactError) as exc:
            message = exc.message if isinstance(exc, OCIError) else str(exc)
            self._fail(dep_id, wr_id, "ModelArtifactInvalid", f"Model {model_id}: {message}")
            return
        if wr_id:
            works.progress(wr_id, 30, f"Unpacked the artifact of model {model_id}.")
        env = dv.environment_of(config)
        if wr_id and env["environmentConfigurationType"] == dv.OCIR_CONTAINER:
            works.log(wr_id, NO_CONTAINER_ENGINE.format(image=env["image"]))
        elif wr_id:
            works.log(wr_id, f"Serving score.py with the local Python runtime {sys.executable}.")
        count = dv.instance_count(config)
        if self._closed.is_set():
            raise ServiceClosing()
        try:
            servers = self.servers.start(
                dep_id, artifact_dir, count, env.get("environmentVariables") or {}
            )
        except ServerStartError as exc:
            if self._closed.is_set():
                raise ServiceClosing() from exc
            self._fail(dep_id, wr_id, "ModelDeploymentFailed", f"{exc}\n{exc.details}")
            return
        if self._closed.is_set():
            self.servers.stop(dep_id)
            raise ServiceClosing()

        def done(d: dict) -> None:
            d["lifecycleState"] = MD.LIFECYCLE_STATE_ACTIVE
            d["lifecycleDetails"] = f"Serving model {model_id} with {count} instance(s)."
            d["modelDeploymentSystemData"] = system_data(count)
            d.pop("_op", None)

        self.state.store.modify(KIND, dep_id, done)
        _prune_artifacts(self.root / dep_id, keep=artifact_dir)
        if wr_id:
            pids = ", ".join(str(s.pid) for s in servers)
            works.log(wr_id, f"Started {count} model server(s) (pids {pids}); all healthy.")
            created = op == "create"
            action = WRR.ACTION_TYPE_CREATED if created else WRR.ACTION_TYPE_UPDATED
            _mark_resource(self.state, wr_id, action)
            works.succeed(wr_id, f"Model deployment {dep_id} is ACTIVE.")

    def _bring_down(self, dep_id: str, wr_id: str) -> None:
        pids = self.servers.stop(dep_id)

        def done(d: dict) -> None:
            d["lifecycleState"] = MD.LIFECYCLE_STATE_INACTIVE
            d["lifecycleDetails"] = "Model deployment is inactive."
            d["modelDeploymentSystemData"] = system_data(0)
            d.pop("_op", None)

        self.state.store.modify(KIND, dep_id, done)
        self.state.work_requests.log(wr_id, f"Stopped {len(pids)} model server(s).")
        _mark_resource(self.state, wr_id, WRR.ACTION_TYPE_UPDATED)
        self.state.work_requests.succeed(wr_id, f"Model deployment {dep_id} is INACTIVE.")

    def _remove(self, dep_id: str, wr_id: str) -> None:
        pids = self.servers.stop(dep_id)
        shutil.rmtree(self.root / dep_id, ignore_errors=True)

        def done(d: dict) -> None:
            d["lifecycleState"] = MD.LIFECYCLE_STATE_DELETED
            d["lifecycleDetails"] = "Model deployment is deleted."
            d["modelDeploymentSystemData"] = system_data(0)
            d["_timeDeleted"] = rfc3339()
            d.pop("_op", None)

        self.state.store.modify(KIND, dep_id, done)
        self.state.work_requests.log(wr_id, f"Stopped {len(pids)} model server(s).")
        _mark_resource(self.state, wr_id, WRR.ACTION_TYPE_DELETED)
        self.state.work_requests.succeed(wr_id, f"Model deployment {dep_id} is DELETED.")

    def _fail(self, dep_id: str, wr_id: str | None, code: str, message: str) -> None:
        self.servers.stop(dep_id)

        def done(d: dict) -> None:
            d["lifecycleState"] = MD.LIFECYCLE_STATE_FAILED
            d["lifecycleDetails"] = message.splitlines()[0][:400] if message else code
            d["modelDeploymentSystemData"] = system_data(0)
            d.pop("_op", None)

        self.state.store.modify(KIND, dep_id, done)
        if wr_id:
            self.state.work_requests.fail(wr_id, code, message)

    # --- service lifecycle ---------------------------------------------------------------------

    def resume(self) -> None:
        """Bring deployments back after a restart: pending operations rerun, ACTIVE restarts."""
        for doc in self.state.store.list(KIND, None):
            if doc.get("_op"):
                self.spawn(doc["id"])
            elif doc["lifecycleState"] == MD.LIFECYCLE_STATE_ACTIVE:

                def restart(d: dict) -> None:
                    d["_op"] = {"name": "restart", "wr": None}

                self.state.store.modify(KIND, doc["id"], restart)
                self.spawn(doc["id"])

    def close(self, join_timeout: float = 30.0) -> None:
        """Stop every server and let background operations wind down."""
        self._closed.set()
        self.servers.close()
        with self._lock:
            threads = list(self._threads)
        for thread in threads:
            thread.join(join_timeout)
        self.servers.stop_all()


def resource_entry(dep_id: str, action: str) -> dict:
    return {
        "entityType": ENTITY,
        "actionType": action,
        "identifier": dep_id,
        "entityUri": f"/modelDeployments/{dep_id}",
    }


def _mark_resource(state: ServiceState, wr_id: str, action: str) -> None:
    def fn(doc: dict) -> None:
        for res in doc.get("resources", []):
            res["actionType"] = action

    state.store.modify(WORK_REQUEST, wr_id, fn)


def system_data(count: int) -> dict:
    return {
        "systemInfraType": PoolData.SYSTEM_INFRA_TYPE_INSTANCE_POOL,
        "modelType": PoolData.MODEL_TYPE_MANAGED_MODEL,
        "currentInstanceCount": count,
    }


def _verb(op: str) -> str:
    return {
        "create": "Creating",
        "activate": "Activating",
        "update": "Updating",
        "restart": "Restarting",
    }.get(op, op)


def _prune_artifacts(dep_dir: Path, keep: Path) -> None:
    for path in dep_dir.glob("artifact-*"):
        if path != keep:
            shutil.rmtree(path, ignore_errors=True)


def _artifact_blob(state: ServiceState, tenancy: str, model_id: str) -> Any:
    from . import datascience

    return datascience.model_artifact_blob(state, tenancy, model_id)


def _forced_failure(state: ServiceState) -> str | None:
    """A forced deployment failure armed through the fault-injection API, if any."""
    try:
        from .faults import faults_of
    except ImportError:
        return None
    take = getattr(faults_of(state), "take_deployment_failure", None)
    return take() if callable(take) else None


OPERATIONS = {
    "create": WR.OPERATION_TYPE_MODEL_DEPLOYMENT_CREATE,
    "update": WR.OPERATION_TYPE_MODEL_DEPLOYMENT_UPDATE,
    "activate": WR.OPERATION_TYPE_MODEL_DEPLOYMENT_ACTIVATE,
    "deactivate": WR.OPERATION_TYPE_MODEL_DEPLOYMENT_DEACTIVATE,
    "delete": WR.OPERATION_TYPE_MODEL_DEPLOYMENT_DELETE,
}
