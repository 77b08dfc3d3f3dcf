"""Runs one ``deploy_model`` (with its wait for ACTIVE) in a child process, so a test can
SIGKILL it while it waits.

    python deploy_child.py MODEL_ID --display-name NAME [--env NAME=VALUE ...]
                           [--poll-interval SECONDS] [--max-wait-time SECONDS]

Auth, compartment and project come from the environment (``LocalOCI.env()``,
``PROJECT_COMPARTMENT_OCID``, ``PROJECT_OCID``). ``--env`` entries become the deployment's
``environment_variables``: part of its spec, so a retry with the same flags is the same deploy.

Prints one JSON object per line on stdout, flushed at once:

- ``{"event": "waiting", "description"}`` when the wait for ACTIVE begins (its progress starts);
- ``{"event": "deployed", "id", "state", "created", "url", "seconds"}`` at the end.
"""

from __future__ import annotations

import argparse
import json
import sys
import time


def emit(**event: object) -> None:
    """Print one event as a JSON line, at once."""
    sys.stdout.write(json.dumps(event) + "\n")
    sys.stdout.flush()


class PrintedProgress:
    """A Progress that prints when the wait begins and does nothing else."""

    def start(self, total: int | None, description: str = "") -> None:
        emit(event="waiting", description=description)

    def advance(self, n: int) -> None:
        pass

    def finish(self) -> None:
        pass


def main(argv: list[str]) -> int:
    """Deploy the model, waiting for ACTIVE, and print the outcome."""
    parser = argparse.ArgumentParser()
    parser.add_argument("model_id")
    parser.add_argument("--display-name", default="killed-deploy")
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE")
    parser.add_argument("--poll-interval", type=float, default=1.0)
    parser.add_argument("--max-wait-time", type=float, default=120.0)
    args = parser.parse_args(argv)

    from ocimodel.deploy import DeploySpec, deploy_model

    variables = dict(item.split("=", 1) for item in args.env)
    spec = DeploySpec(display_name=args.display_name, environment_variables=variables or None)
    t0 = time.perf_counter()
    deployed = deploy_model(
        args.model_id,
        spec,
        max_wait_time=args.max_wait_time,
        poll_interval=args.poll_interval,
        progress=PrintedProgress(),
    )
    emit(
        event="deployed",
        id=deployed.id,
        state=deployed.state,
        created=deployed.created,
        url=deployed.url,
        seconds=time.perf_counter() - t0,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
