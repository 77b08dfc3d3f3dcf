"""Conda packs, prepare arguments, a tiny model and artifact-folder checks shared by the unit,
flow and integration tests that prepare artifacts.

Importable from every test module: ``tests/conftest.py`` puts this folder on ``sys.path``.
"""

from __future__ import annotations

import os

# A published pack given by its full path: prepare takes it without reading any pack index.
PACK = "oci://my-bucket@my-namespace/conda/my_pack_p311"
OK_ENV = dict(inference_conda_env=PACK, inference_python_version="3.11")

# Another published pack, in the layout `odsc conda publish` writes.
MY_PACK = "oci://my-packs@myns/conda_environments/cpu/mine/1.0/mine_v1"
PREPARE_ARGS = {"inference_conda_env": MY_PACK, "inference_python_version": "3.10"}

# A service pack slug that the local OCI service's pack index knows.
SLUG = "generalml_p311_cpu_x86_64_v1"


class Doubler:
    """A model that pickles: its predict doubles every item."""

    def predict(self, data):
        return [2 * x for x in data]


def is_empty(folder) -> bool:
    """True when ``folder`` does not exist or holds nothing."""
    return not os.path.exists(folder) or os.listdir(folder) == []


def snapshot(folder) -> dict[str, bytes]:
    """The content of every file below ``folder``, by path relative to it."""
    out = {}
    for root, _dirs, names in os.walk(folder):
        for name in names:
            path = os.path.join(root, name)
            with open(path, "rb") as fh:
                out[os.path.relpath(path, folder)] = fh.read()
    return out
