"""Model provenance from the git repository the training code lives in, via the ``git`` CLI.

Two git calls at most (``rev-parse`` and ``config``), so it is cheap on the prepare path.
Outside a repository, or without git installed, the git fields are simply None.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import asdict, dataclass, fields
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from ocimodel.metadata.errors import ChangesNotCommitted, InvalidMetadataType, InvalidMetadataValue

GIT_TIMEOUT_SECONDS = 10.0


def _git(cwd: str, *args: str) -> subprocess.CompletedProcess | None:
    """Run ``git -C cwd args``; None when git is missing or hangs."""
    try:
        return subprocess.run(
            ["git", "-C", cwd, *args],
            capture_output=True,
            text=True,
            timeout=GIT_TIMEOUT_SECONDS,
            env={**os.environ, "GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C"},
        )
    except (OSError, subprocess.TimeoutExpired):
        return None


def strip_credentials(url: str) -> str:
    """``url`` without secrets: no password, and no user for http(s), where tokens go."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if not parts.scheme or "@" not in parts.netloc:
        return url
    userinfo, host = parts.netloc.rsplit("@", 1)
    if parts.scheme not in ("http", "https"):
        host = f"{userinfo.split(':', 1)[0]}@{host}"
    return urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))


def _remote_url(root: str) -> str:
    """URL of ``origin`` (else the first remote), credentials removed; ``file://root`` if none."""
    result = _git(root, "config", "--get-regexp", r"^remote\..*\.url$")
    urls: dict[str, str] = {}
    if result is not None and result.returncode == 0:
        for line in result.stdout.splitlines():
            name, _, url = line.partition(" ")
            urls.setdefault(name[len("remote.") : -len(".url")], url.strip())
    url = urls.get("origin") or next(iter(urls.values()), None)
    return strip_credentials(url) if url else "file://" + root


def _start_dir(path: str | None) -> str:
    """The folder git discovery starts from: ``path`` (or its folder), else the cwd."""
    if not path:
        return os.getcwd()
    path = os.path.abspath(os.path.expanduser(path))
    return path if os.path.isdir(path) else os.path.dirname(path)


def _check_optional_str(name: str, value: Any) -> None:
    if value is not None and not isinstance(value, (str, os.PathLike)):
        raise InvalidMetadataType(
            f"{name} must be a string path or None, got {type(value).__name__} {value!r}."
        )


@dataclass
class ModelProvenanceMetadata:
    """Where the model came from: repository, branch, commit, training script and run.

    ``repo`` is the repository's top-level folder (None outside a repository);
    ``git_branch`` is None on a detached HEAD; ``git_commit`` is None before the first commit.
    """

    repo: str | None = None
    git_branch: str | None = None
    git_commit: str | None = None
    repository_url: str | None = None
    training_script_path: str | None = None
    training_id: str | None = None
    artifact_dir: str | None = None

    @classmethod
    def fetch_training_code_details(
        cls,
        training_script_path: str | None = None,
        training_id: str | None = None,
        artifact_dir: str | None = None,
        *,
        path: str | None = None,
    ) -> ModelProvenanceMetadata:
        """Read repository, branch, commit and remote URL of the repository holding ``path``
        (default: the training script's folder, else the current directory)."""
        _check_optional_str("training_script_path", training_script_path)
        _check_optional_str("artifact_dir", artifact_dir)
        _check_optional_str("path", path)
        if training_id is not None and not isinstance(training_id, str):
            raise InvalidMetadataType(
                f"training_id must be a string (an OCID) or None, got {type(training_id).__name__}."
            )
        script = os.fspath(training_script_path) if training_script_path else None
        start = _start_dir(os.fspath(path) if path else script)
        provenance = cls(
            training_script_path=os.path.abspath(script) if script else None,
            training_id=training_id,
            artifact_dir=os.path.abspath(os.fspath(artifact_dir)) if artifact_dir else None,
        )
        if not os.path.isdir(start):
            return provenance
        result = _git(start, "rev-parse", "--show-toplevel", "HEAD", "--abbrev-ref", "HEAD", "--")
        if result is None:
            return provenance
        lines = result.stdout.splitlines()
        if result.returncode != 0:
            if not lines:
                return provenance
            provenance.repo = os.path.normpath(lines[0])
            branch = _git(start, "symbolic-ref", "--short", "-q", "HEAD")
            if branch is not None and branch.returncode == 0:
                provenance.git_branch = branch.stdout.strip() or None
        else:
            provenance.repo = os.path.normpath(lines[0])
            provenance.git_commit = lines[1]
            provenance.git_branch = None if lines[2] == "HEAD" else lines[2]
        provenance.repository_url = _remote_url(provenance.repo)
        return provenance

    def dirty_files(self, path: str) -> list[str]:
        """Files under ``path`` that are modified, staged, deleted or untracked (repo-relative);
        empty when there is no repository or ``path`` lies outside it."""
        if not isinstance(path, (str, os.PathLike)) or not os.fspath(path):
            raise InvalidMetadataType(f"path must be a non-empty string path, got {path!r}.")
        if self.repo is None:
            return []
        target = os.path.realpath(os.path.abspath(os.fspath(path)))
        root = os.path.realpath(self.repo)
        if os.path.commonpath([target, root]) != root:
            return []
        result = _git(root, "status", "--porcelain=v1", "-z", "--untracked-files=all", "--", target)
        if result is None or result.returncode != 0:
            detail = result.stderr.strip() if result is not None else "git did not answer"
            raise InvalidMetadataValue(
                f"Cannot read the git status of {target}: {detail}. Check that the repository "
                f"{root} is readable, or pass ignore=True."
            )
        files, entries = [], iter(result.stdout.split("\0"))
        for entry in entries:
            if not entry:
                continue
            files.append(entry[3:])
            if entry[0] in "RC":
                next(entries, None)
        return files

    def assert_path_not_dirty(self, path: str, ignore: bool) -> None:
        """Raise ChangesNotCommitted listing the files under ``path`` that are not committed,
        unless ``ignore`` is True. Paths outside the repository are not checked."""
        if ignore:
            return
        files = self.dirty_files(path)
        if files:
            raise ChangesNotCommitted(os.path.abspath(os.fspath(path)), files)

    def to_dict(self) -> dict[str, str | None]:
        """All fields as a dictionary."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, str]) -> ModelProvenanceMetadata:
        """Build from ``to_dict()`` output; unknown keys are an error."""
        if not isinstance(data, dict):
            raise InvalidMetadataType(
                f"ModelProvenanceMetadata.from_dict expects a dict, got {type(data).__name__}."
            )
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise InvalidMetadataValue(
                f"Unknown provenance fields {unknown}; use only {sorted(known)}."
            )
        return cls(**data)

    def to_catalog_dict(self) -> dict[str, str]:
        """Fields of the catalog's ModelProvenance (repository_url, git_branch, git_commit,
        script_dir, training_script, training_id), None values left out."""
        values = {
            "repository_url": self.repository_url,
            "git_branch": self.git_branch,
            "git_commit": self.git_commit,
            "script_dir": self.artifact_dir,
            "training_script": self.training_script_path,
            "training_id": self.training_id,
        }
        return {k: v for k, v in values.items() if v is not None}
