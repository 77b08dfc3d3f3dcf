"""A live endpoint watched while it changes, shared by the flow and end-to-end tests.

Importable from every test module: ``tests/conftest.py`` puts this folder on ``sys.path``.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from ocimodel.predict import predict_endpoint


class Predictor(threading.Thread):
    """Predicts on an endpoint without pause until stopped, keeping every answer and error."""

    def __init__(self, url: str, data: Any, auth: Any = None, pause: float = 0.01):
        super().__init__(daemon=True, name="predictor")
        self.url, self.data, self.auth, self.pause = url, data, auth, pause
        self.answers: list[tuple] = []
        self.errors: list[BaseException] = []
        self.halt = threading.Event()

    def run(self) -> None:
        while not self.halt.is_set():
            try:
                answer = predict_endpoint(self.url, self.data, auth=self.auth)
                self.answers.append(tuple(answer["prediction"]))
            except BaseException as exc:  # every failure is a finding, not a crash
                self.errors.append(exc)
            time.sleep(self.pause)

    def stop(self) -> None:
        """Stops predicting and waits for the last call."""
        self.halt.set()
        self.join(30)
