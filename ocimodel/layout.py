"""The artifact's layout: the names of its files and the defaults every stage agrees on.

A leaf module (it imports nothing of ocimodel), so each stage imports a name from here instead
of spelling it again.
"""

from __future__ import annotations

import os

SCORE_PY = "score.py"
RUNTIME_YAML = "runtime.yaml"
REQUIRED_FILES = (SCORE_PY, RUNTIME_YAML)
"""Files every artifact holds at its top level."""

MODEL_ARTIFACT_VERSION = "3.0"
"""The runtime.yaml format ocimodel writes (``MODEL_ARTIFACT_VERSION``)."""

METADATA_FILE = "ocimodel-metadata.json"
"""Metadata prepared for the model catalog, kept beside the model so later stages can read it."""
METADATA_FILE_VERSION = 1

MANIFEST_NAME = "ocimodel-manifest.json"
"""sha256 of the model file and serializer pickles, written when the artifact is zipped."""

MODEL_IGNORE = ".model-ignore"
DEFAULT_MODEL_IGNORE = """\
# Files left out when the artifact is zipped (gitignore syntax).
.ipynb_checkpoints/
__pycache__/
*.pyc
.DS_Store
.git/
.tmp-*
"""

INPUT_SCHEMA_FILE_NAME = "input_schema.json"
OUTPUT_SCHEMA_FILE_NAME = "output_schema.json"
HYPERPARAMETERS_FILE_NAME = "hyperparameters.json"
MODEL_SAVE_SERDE_FILE_NAME = "model_save_serde.pkl"
MODEL_INPUT_SERDE_FILE_NAME = "model_input_serde.pkl"
SERIALIZER_FILES = (MODEL_SAVE_SERDE_FILE_NAME, MODEL_INPUT_SERDE_FILE_NAME)
"""Pickled custom serializers that score.py loads; never a model file."""

REPLACEABLE_FILES = (
    RUNTIME_YAML,
    SCORE_PY,
    METADATA_FILE,
    INPUT_SCHEMA_FILE_NAME,
    OUTPUT_SCHEMA_FILE_NAME,
    HYPERPARAMETERS_FILE_NAME,
    MODEL_INPUT_SERDE_FILE_NAME,
    MODEL_SAVE_SERDE_FILE_NAME,
)
"""The small files a prepare may replace in an existing artifact (never the model file)."""

MODEL_FILE_SUFFIXES = (".pkl", ".joblib", ".onnx", ".pt", ".pth", ".h5", ".keras", ".bin")
"""Suffixes that mark a top-level file as the model when no name was recorded."""

DEFAULT_MODEL_SAVE_SERIALIZER = "cloudpickle"
DEFAULT_MODEL_INPUT_SERIALIZER = "json"

CONDA_DEFAULT_NAMESPACE = "id19sfcrra6z"
"""Object Storage namespace of OCI's service conda packs."""
CONDA_DEFAULT_BUCKET = "service-conda-packs"
"""Bucket of OCI's service conda packs."""

CLIENT_LIBRARY = "ocimodel"
"""The ClientLibrary custom metadata value of models ocimodel prepares."""

TEMPLATES_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "templates")
"""Packaged score.py templates and the runner verify uses."""
