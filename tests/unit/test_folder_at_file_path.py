"""A folder standing where an artifact file goes (score.py, runtime.yaml, the model file) is
refused by the atomic writers, by serialize_model and by prepare, even with force_overwrite:
the error names the path and says to remove the folder, which is left as it was."""

from __future__ import annotations

import os

import pytest
from prepare_support import PREPARE_ARGS, Doubler

from ocimodel.errors import ArtifactFileExistsError
from ocimodel.files import write_bytes_atomic, write_converging
from ocimodel.pipeline import prepare_artifact
from ocimodel.serialize import serialize_model


@pytest.mark.parametrize("writer", [write_bytes_atomic, write_converging])
def test_atomic_writers_refuse_a_folder_at_the_target(tmp_path, writer):
    target = tmp_path / "score.py"
    target.mkdir()
    with pytest.raises(ArtifactFileExistsError, match="Remove that folder") as info:
        writer(str(target), b"x")
    assert str(target) in str(info.value)
    assert target.is_dir() and os.listdir(tmp_path) == ["score.py"]


@pytest.mark.parametrize("name", ["score.py", "runtime.yaml"])
def test_prepare_refuses_a_folder_named_like_an_artifact_file(tmp_path, name):
    (tmp_path / name).mkdir()
    for force in (False, True):
        with pytest.raises(ArtifactFileExistsError, match="Remove that folder"):
            prepare_artifact(Doubler(), str(tmp_path), force_overwrite=force, **PREPARE_ARGS)
        assert os.listdir(tmp_path) == [name] and (tmp_path / name).is_dir()


def test_model_file_folder_is_refused_even_with_force_overwrite(tmp_path):
    (tmp_path / "model.pkl").mkdir()
    for force in (False, True):
        with pytest.raises(ArtifactFileExistsError, match="Remove that folder") as info:
            serialize_model(Doubler(), str(tmp_path), force_overwrite=force)
        assert str(tmp_path / "model.pkl") in str(info.value)
        assert os.listdir(tmp_path) == ["model.pkl"]
    with pytest.raises(ArtifactFileExistsError, match="Remove that folder"):
        prepare_artifact(Doubler(), str(tmp_path), force_overwrite=True, **PREPARE_ARGS)
    assert os.listdir(tmp_path) == ["model.pkl"]
