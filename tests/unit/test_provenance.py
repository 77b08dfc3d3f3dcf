"""Provenance from real git repositories created in tmp_path: URL, branch, commit, dirty files,
and sensible results outside a repository."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from ocimodel.errors import OcimodelError
from ocimodel.metadata import (
    ChangesNotCommitted,
    InvalidMetadataType,
    InvalidMetadataValue,
    ModelProvenanceMetadata,
)
from ocimodel.metadata.provenance import strip_credentials


def git(cwd: Path, *args: str) -> str:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.com",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.com",
    }
    out = subprocess.run(
        ["git", "-C", str(cwd), *args], check=True, capture_output=True, text=True, env=env
    )
    return out.stdout.strip()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    (root / "train.py").write_text("print('train')\n")
    (root / "pkg").mkdir()
    (root / "pkg" / "util.py").write_text("X = 1\n")
    (root / ".gitignore").write_text("*.log\n")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "first")
    git(root, "remote", "add", "origin", "https://user:s3cret-token@github.com/acme/models.git")
    return root


def test_fetch_reads_repo_branch_commit_and_url(repo: Path):
    p = ModelProvenanceMetadata.fetch_training_code_details(
        training_script_path=str(repo / "train.py"),
        training_id="ocid1.datasciencejob.oc1..x",
        artifact_dir=str(repo / "artifact"),
    )
    assert p.repo == str(repo)
    assert p.git_branch == "main"
    assert p.git_commit == git(repo, "rev-parse", "HEAD")
    assert p.repository_url == "https://github.com/acme/models.git"
    assert "s3cret" not in repr(p) and "s3cret" not in str(p.to_dict())
    assert p.training_script_path == str(repo / "train.py")
    assert p.training_id == "ocid1.datasciencejob.oc1..x"
    assert p.artifact_dir == str(repo / "artifact")


def test_discovery_from_a_subfolder_and_from_cwd(repo: Path, monkeypatch):
    p = ModelProvenanceMetadata.fetch_training_code_details(path=str(repo / "pkg"))
    assert p.repo == str(repo)
    monkeypatch.chdir(repo / "pkg")
    assert ModelProvenanceMetadata.fetch_training_code_details().repo == str(repo)


def test_new_branch_and_second_commit(repo: Path):
    git(repo, "checkout", "-q", "-b", "feature/x")
    (repo / "train.py").write_text("print('v2')\n")
    git(repo, "commit", "-q", "-am", "second")
    p = ModelProvenanceMetadata.fetch_training_code_details(path=str(repo))
    assert p.git_branch == "feature/x"
    assert p.git_commit == git(repo, "rev-parse", "HEAD")


def test_detached_head_has_no_branch(repo: Path):
    commit = git(repo, "rev-parse", "HEAD")
    git(repo, "checkout", "-q", "--detach", commit)
    p = ModelProvenanceMetadata.fetch_training_code_details(path=str(repo))
    assert p.git_branch is None and p.git_commit == commit


def test_repo_without_commits(tmp_path: Path):
    git(tmp_path, "init", "-q", "-b", "trunk")
    p = ModelProvenanceMetadata.fetch_training_code_details(path=str(tmp_path))
    assert p.repo == str(tmp_path)
    assert p.git_branch == "trunk" and p.git_commit is None
    assert p.repository_url == f"file://{tmp_path}"


def test_remote_other_than_origin(tmp_path: Path):
    git(tmp_path, "init", "-q", "-b", "main")
    git(tmp_path, "remote", "add", "upstream", "git@github.com:acme/models.git")
    p = ModelProvenanceMetadata.fetch_training_code_details(path=str(tmp_path))
    assert p.repository_url == "git@github.com:acme/models.git"


def test_outside_a_repository(tmp_path: Path):
    folder = tmp_path / "plain"
    folder.mkdir()
    script = folder / "train.py"
    script.write_text("")
    p = ModelProvenanceMetadata.fetch_training_code_details(
        training_script_path=str(script), training_id="run-1"
    )
    assert (p.repo, p.git_branch, p.git_commit, p.repository_url) == (None, None, None, None)
    assert p.training_script_path == str(script) and p.training_id == "run-1"
    p.assert_path_not_dirty(str(folder), ignore=False)  # nothing to check: no error
    assert p.dirty_files(str(folder)) == []


def test_missing_folder_and_missing_git(tmp_path: Path, monkeypatch, repo: Path):
    p = ModelProvenanceMetadata.fetch_training_code_details(path=str(tmp_path / "nope" / "x"))
    assert p.repo is None
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    p = ModelProvenanceMetadata.fetch_training_code_details(path=str(repo))
    assert p.repo is None and p.git_commit is None


def test_dirty_detection(repo: Path):
    p = ModelProvenanceMetadata.fetch_training_code_details(path=str(repo))
    p.assert_path_not_dirty(str(repo), ignore=False)
    (repo / "train.py").write_text("changed\n")
    (repo / "pkg" / "new file.py").write_text("")
    (repo / "debug.log").write_text("ignored by .gitignore")
    assert sorted(p.dirty_files(str(repo))) == ["pkg/new file.py", "train.py"]
    with pytest.raises(ChangesNotCommitted) as info:
        p.assert_path_not_dirty(str(repo), ignore=False)
    message = str(info.value)
    assert "train.py" in message and "pkg/new file.py" in message
    assert "Commit them" in message and "ignore=True" in message
    assert isinstance(info.value, OcimodelError)
    assert info.value.files and info.value.path == str(repo)
    # only the files under the given path count
    assert p.dirty_files(str(repo / "pkg")) == ["pkg/new file.py"]
    assert p.dirty_files(str(repo / "train.py")) == ["train.py"]
    p.assert_path_not_dirty(str(repo), ignore=True)


def test_staged_deleted_and_renamed_files_are_dirty(repo: Path):
    p = ModelProvenanceMetadata.fetch_training_code_details(path=str(repo))
    git(repo, "mv", "pkg/util.py", "pkg/helpers.py")
    (repo / "train.py").unlink()
    assert sorted(p.dirty_files(str(repo))) == ["pkg/helpers.py", "train.py"]
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "tidy")
    assert p.dirty_files(str(repo)) == []


def test_path_outside_the_repo_is_not_checked(repo: Path, tmp_path: Path):
    p = ModelProvenanceMetadata.fetch_training_code_details(path=str(repo))
    (repo / "train.py").write_text("changed\n")
    outside = tmp_path / "artifact"
    outside.mkdir()
    p.assert_path_not_dirty(str(outside), ignore=False)


def test_bad_inputs(repo: Path):
    with pytest.raises(InvalidMetadataType, match="training_id"):
        ModelProvenanceMetadata.fetch_training_code_details(training_id=123)
    with pytest.raises(InvalidMetadataType, match="training_script_path"):
        ModelProvenanceMetadata.fetch_training_code_details(training_script_path=5)
    p = ModelProvenanceMetadata.fetch_training_code_details(path=str(repo))
    with pytest.raises(InvalidMetadataType, match="path"):
        p.assert_path_not_dirty(None, ignore=False)
    with pytest.raises(InvalidMetadataValue, match="Unknown provenance fields"):
        ModelProvenanceMetadata.from_dict({"repo": None, "colour": "red"})
    with pytest.raises(InvalidMetadataType):
        ModelProvenanceMetadata.from_dict(["repo"])


def test_roundtrip_and_catalog_fields(repo: Path):
    import oci

    p = ModelProvenanceMetadata.fetch_training_code_details(
        training_script_path=str(repo / "train.py"), artifact_dir=str(repo)
    )
    assert ModelProvenanceMetadata.from_dict(p.to_dict()) == p
    fields = p.to_catalog_dict()
    model = oci.data_science.models.ModelProvenance(**fields)
    assert model.git_commit == p.git_commit and model.training_script == str(repo / "train.py")
    assert model.script_dir == str(repo) and model.training_id is None


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://u:p@host/x.git", "https://host/x.git"),
        ("https://token@host:8443/x.git", "https://host:8443/x.git"),
        ("https://host/x.git", "https://host/x.git"),
        ("git@github.com:acme/x.git", "git@github.com:acme/x.git"),
        ("ssh://git@host/x.git", "ssh://git@host/x.git"),
        ("ssh://git:pw@host/x.git", "ssh://git@host/x.git"),
        ("/srv/repos/x.git", "/srv/repos/x.git"),
    ],
)
def test_strip_credentials(url, expected):
    assert strip_credentials(url) == expected
