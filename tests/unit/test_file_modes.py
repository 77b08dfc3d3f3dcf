"""Files and folders written atomically get the umask-derived mode, like any file open() writes."""

from __future__ import annotations

import os
import stat
import zipfile

import pytest

from ocimodel.artifact.archive import make_zip, safe_extract
from ocimodel.files import create_temp_dir, create_temp_file, write_bytes_atomic, write_text_atomic
from ocimodel.pipeline import prepare_artifact
from ocimodel.serde import write_hashed

UMASKS = [0o022, 0o027, 0o002]


@pytest.fixture(params=UMASKS, ids=[f"umask{u:03o}" for u in UMASKS])
def umask(request):
    previous = os.umask(request.param)
    try:
        yield request.param
    finally:
        os.umask(previous)


def mode_of(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_atomic_writers_give_files_the_umask_mode(tmp_path, umask):
    expected = 0o666 & ~umask
    write_bytes_atomic(str(tmp_path / "a.bin"), b"\x00\x01")
    write_text_atomic(str(tmp_path / "b.txt"), "text")
    write_hashed(tmp_path / "c.pkl", lambda fh: fh.write(b"pickled"))
    fd, path = create_temp_file(str(tmp_path), prefix=".x-", suffix=".tmp")
    os.close(fd)
    assert os.path.basename(path).startswith(".x-") and path.endswith(".tmp")
    for name in ("a.bin", "b.txt", "c.pkl", path):
        assert mode_of(tmp_path / name) == expected, name
    assert (tmp_path / "c.pkl").read_bytes() == b"pickled"
    folder = create_temp_dir(str(tmp_path), prefix=".d-")
    assert mode_of(folder) == 0o777 & ~umask
    assert sorted(os.listdir(tmp_path)) == sorted(
        ["a.bin", "b.txt", "c.pkl", os.path.basename(path), os.path.basename(folder)]
    )


def test_replacing_a_private_file_gives_it_the_umask_mode(tmp_path, umask):
    target = tmp_path / "runtime.yaml"
    target.write_text("old")
    target.chmod(0o600)
    write_text_atomic(str(target), "new")
    assert target.read_text() == "new"
    assert mode_of(target) == 0o666 & ~umask


def test_zip_and_extracted_folder_get_the_umask_mode(tmp_path, umask):
    src = tmp_path / "src"
    src.mkdir()
    (src / "score.py").write_text("x = 1\n")
    zipped = make_zip(str(src), str(tmp_path / "out" / "artifact.zip"))
    assert mode_of(zipped) == 0o666 & ~umask
    assert zipfile.ZipFile(zipped).namelist() == ["score.py"]
    safe_extract(zipped, str(tmp_path / "unpacked"))
    assert mode_of(tmp_path / "unpacked") == 0o777 & ~umask
    assert (tmp_path / "unpacked" / "score.py").read_text() == "x = 1\n"


def test_prepared_artifact_files_all_share_one_mode(tmp_path):
    previous = os.umask(0o022)
    try:
        folder = tmp_path / "art"
        prepare_artifact(
            {"w": 1},
            str(folder),
            inference_conda_env="oci://bucket@namespace/conda/pack",
            inference_python_version="3.11",
        )
    finally:
        os.umask(previous)
    modes = {name: mode_of(folder / name) for name in os.listdir(folder)}
    for name in ("score.py", "runtime.yaml", "model.pkl", ".model-ignore"):
        assert name in modes, sorted(modes)
    assert set(modes.values()) == {0o644}, {k: oct(v) for k, v in modes.items()}
