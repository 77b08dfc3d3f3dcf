"""One change at a time per model deployment, across every run on the Prefect server.

Two runs that change the same deployment (a promote and a rollback started together from the
UI, a nightly retraining meeting a manual promote) would otherwise race: each reads the
deployment, then updates it, and the later update silently undoes the earlier one.
:func:`deployment_lock` holds the slot of a Prefect global concurrency limit named after the
deployment (``ocimodel-deployment-<ocid>``, limit 1) for the whole read-update-wait.

Prefect's ``concurrency(...)`` does nothing when the named limit does not exist (it only warns,
unless ``strict=True``), so the limit is created first when missing, then acquired strictly:
a run either holds the slot or fails, it never runs unguarded. The slot is leased and the lease
renewed while the run holds it, so a killed run frees the deployment when its lease expires.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from prefect import get_client
from prefect.client.schemas.actions import (
    GlobalConcurrencyLimitCreate,
    GlobalConcurrencyLimitUpdate,
)
from prefect.concurrency.sync import concurrency
from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound
from prefect.logging import get_run_logger

LOCK_PREFIX = "ocimodel-deployment-"
"""Name of a deployment's global concurrency limit: this prefix and the deployment's OCID."""
LOCK_LEASE_SECONDS = 300.0
"""How long a killed run keeps the deployment locked (the lease is renewed while it runs)."""


def deployment_lock_name(deployment_id: str) -> str:
    """The name of the global concurrency limit that guards ``deployment_id``."""
    return f"{LOCK_PREFIX}{deployment_id}"


def ensure_limit(name: str, limit: int = 1) -> None:
    """Creates the global concurrency limit ``name`` with ``limit`` slots, or sets an existing
    one back to ``limit`` (so acquiring it strictly never finds it missing)."""
    with get_client(sync_client=True) as client:
        try:
            existing = client.read_global_concurrency_limit_by_name(name)
        except ObjectNotFound:
            existing = None
        if existing is None:
            try:
                client.create_global_concurrency_limit(
                    GlobalConcurrencyLimitCreate(name=name, limit=limit)
                )
            except ObjectAlreadyExists:  # another run created it meanwhile: the same limit
                pass
        elif existing.limit != limit or not existing.active:
            client.update_global_concurrency_limit(
                name, GlobalConcurrencyLimitUpdate(limit=limit, active=True)
            )


@contextlib.contextmanager
def deployment_lock(deployment_id: str, timeout_seconds: float | None = None) -> Iterator[None]:
    """Holds the deployment's one slot for the block; waits while another run holds it.

    ``timeout_seconds`` bounds the wait (None: until the other run is done or its lease
    expires); past it, Prefect raises ``TimeoutError``.
    """
    name = deployment_lock_name(deployment_id)
    ensure_limit(name)
    logger = _logger()
    if logger is not None:
        logger.info("Waiting for the lock %s (one change at a time)", name)
    with concurrency(
        name,
        occupy=1,
        timeout_seconds=timeout_seconds,
        lease_duration=LOCK_LEASE_SECONDS,
        strict=True,
    ):
        if logger is not None:
            logger.info("Holding the lock %s", name)
        yield


def _logger() -> Any:
    """The run logger, or None outside a flow or task run."""
    try:
        return get_run_logger()
    except Exception:
        return None


def forget_lock(deployment_id: str) -> None:
    """Removes the concurrency limit of a deployment that no longer exists (best effort: a
    limit left behind only takes a line in the UI's list)."""
    try:
        with get_client(sync_client=True) as client:
            client.delete_global_concurrency_limit_by_name(deployment_lock_name(deployment_id))
    except Exception as exc:
        logger = _logger()
        if logger is not None:
            logger.debug("Concurrency limit of %s not removed: %s", deployment_id, exc)
