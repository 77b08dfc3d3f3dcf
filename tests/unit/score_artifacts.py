"""The smallest artifact a generated score.py runs from: a model saved by its serializer beside
the score.py generated for it. Shared by the tests of score.py, verify and tabular input."""

from __future__ import annotations

from pathlib import Path

from ocimodel.score import generate_score_py
from ocimodel.serde import get_model_save_serializer


def make_toy():
    """The reference's Toy model, defined locally as in a notebook: cloudpickle stores it by
    value."""

    class Toy:
        def predict(self, x):
            return x**2

    return Toy()


def prepare(folder: Path, model, serializer="cloudpickle", file_name=None, **kwargs) -> str:
    """Saves ``model`` into ``folder`` with ``serializer`` and generates its score.py (``kwargs``
    go to generate_score_py); returns the sha256 of the saved model file."""
    saver = get_model_save_serializer(serializer)
    file_name = file_name or saver.file_name
    digest = saver.save(model, folder / file_name)
    generate_score_py(str(folder), model_file_name=file_name, model_save_serializer=saver, **kwargs)
    return digest
