"""Zip an artifact folder honouring ``.model-ignore``; extract zip/tar archives safely.

``.model-ignore`` follows gitignore rules: ``#`` comments, ``!`` negation (last match wins),
trailing ``/`` for folders only, a ``/`` inside a pattern anchors it to the folder root,
``*``/``?``/``[...]`` never cross ``/``, and ``**`` spans folders. Files inside an ignored
folder cannot be re-included, as in git.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import stat
import tarfile
import threading
import zipfile
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import IO

from ocimodel.artifact.manifest import ManifestError, manifest_document, manifest_text
from ocimodel.errors import ArtifactFileExistsError, OcimodelError, UnsafeArchiveError
from ocimodel.files import CHUNK_SIZE, create_temp_dir, create_temp_file, refuse_symlink
from ocimodel.layout import MANIFEST_NAME, MODEL_IGNORE

ZIP_SUFFIXES = (".zip",)
TAR_SUFFIXES = (".tar", ".tar.gz", ".tgz")


class ArchiveFormatError(ValueError, OcimodelError):
    """A file given as an archive is not a readable zip or tar archive."""


@dataclass(frozen=True)
class IgnoreRule:
    """One compiled .model-ignore line."""

    pattern: str
    regex: re.Pattern[str]
    negate: bool
    dir_only: bool

    def matches(self, rel_path: str, is_dir: bool) -> bool:
        """True when this rule's pattern covers ``rel_path`` (posix, relative to the root)."""
        if self.dir_only and not is_dir:
            return False
        return self.regex.fullmatch(rel_path) is not None


def _segment_regex(seg: str) -> str:
    """Regex of one path segment: ``*``, ``?`` and ``[...]`` stay inside the segment."""
    out, i, n = [], 0, len(seg)
    while i < n:
        c = seg[i]
        if c == "\\" and i + 1 < n:
            out.append(re.escape(seg[i + 1]))
            i += 2
            continue
        if c == "*":
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[":
            j = i + 1
            if j < n and seg[j] in "!^":
                j += 1
            if j < n and seg[j] == "]":
                j += 1
            while j < n and seg[j] != "]":
                j += 1
            if j >= n:
                out.append(re.escape(c))
            else:
                body = seg[i + 1 : j]
                if body[:1] in ("!", "^"):
                    body = "^" + body[1:]
                out.append("[" + body.replace("\\", "\\\\") + "]")
                i = j
        else:
            out.append(re.escape(c))
        i += 1
    return "".join(out)


def compile_rule(line: str) -> IgnoreRule | None:
    """Compiles one .model-ignore line; None for blanks and comments."""
    text = line.rstrip("\n").rstrip("\r")
    while text.endswith(" ") and not text.endswith("\\ "):
        text = text[:-1]
    if not text or text.startswith("#"):
        return None
    negate = text.startswith("!")
    if negate:
        text = text[1:]
    elif text.startswith("\\!") or text.startswith("\\#"):
        text = text[1:]
    dir_only = text.endswith("/")
    text = text.rstrip("/")
    if not text:
        return None
    anchored = "/" in text
    parts = text.lstrip("/").split("/")
    regex = ""
    for i, seg in enumerate(parts):
        last = i == len(parts) - 1
        if seg == "**":
            regex += ".*" if last else "(?:[^/]+/)*"
        else:
            regex += _segment_regex(seg) + ("" if last else "/")
    if not anchored:
        regex = "(?:.*/)?" + regex
    return IgnoreRule(line.strip(), re.compile(regex, re.DOTALL), negate, dir_only)


class IgnoreRules:
    """An ordered set of .model-ignore rules for one folder."""

    def __init__(self, lines: Iterable[str] = ()):
        self.rules = [r for r in (compile_rule(line) for line in lines) if r is not None]

    @classmethod
    def from_file(cls, path: str) -> IgnoreRules:
        """Rules from a .model-ignore file; none when it does not exist."""
        if not os.path.isfile(path):
            return cls()
        with open(path, encoding="utf-8") as fh:
            return cls(fh.readlines())

    def _own_match(self, rel_path: str, is_dir: bool) -> bool:
        ignored = False
        for rule in self.rules:
            if rule.matches(rel_path, is_dir):
                ignored = not rule.negate
        return ignored

    def is_ignored(self, rel_path: str, is_dir: bool = False) -> bool:
        """True when the path, or any folder above it, is ignored."""
        parts = rel_path.strip("/").split("/")
        for i in range(1, len(parts)):
            if self._own_match("/".join(parts[:i]), True):
                return True
        return self._own_match("/".join(parts), is_dir)


def iter_included(src_dir: str, ignore_file: str = MODEL_IGNORE) -> Iterator[str]:
    """Relative posix paths of the files of ``src_dir`` that .model-ignore keeps.

    A kept symbolic link (to a file or a folder) raises UnsafeArchiveError.
    """
    rules = IgnoreRules.from_file(os.path.join(src_dir, ignore_file))
    for dirpath, dirnames, filenames in os.walk(src_dir):
        rel_dir = os.path.relpath(dirpath, src_dir).replace(os.sep, "/")
        rel_dir = "" if rel_dir == "." else rel_dir + "/"
        dirnames[:] = sorted(d for d in dirnames if not rules._own_match(rel_dir + d, True))
        for name in dirnames:
            refuse_symlink(os.path.join(dirpath, name))
        for name in sorted(filenames):
            if not rules._own_match(rel_dir + name, False):
                refuse_symlink(os.path.join(dirpath, name))
                yield rel_dir + name


def make_zip(
    src_dir: str,
    dest_zip: str,
    *,
    ignore_file: str = MODEL_IGNORE,
    force_overwrite: bool = False,
    manifest_files: Iterable[str] = (),
) -> str:
    """Zips the kept files of ``src_dir`` (at the archive top) into ``dest_zip`` atomically.

    Files named in ``manifest_files`` are hashed as they stream into the zip, and their
    sha256 manifest is added as the last entry (any manifest in the folder is left out).
    """
    if not os.path.isdir(src_dir):
        raise FileNotFoundError(f"Artifact folder {src_dir!r} does not exist; prepare it first.")
    dest_zip = os.path.abspath(dest_zip)
    if os.path.exists(dest_zip) and not force_overwrite:
        raise ArtifactFileExistsError(dest_zip)
    hashed = set(manifest_files)
    included = list(iter_included(src_dir, ignore_file))
    folder = os.path.dirname(dest_zip)
    os.makedirs(folder, exist_ok=True)
    fd, tmp = create_temp_file(folder, suffix=".zip")
    os.close(fd)
    skip = {os.path.realpath(dest_zip), os.path.realpath(tmp)}
    digests: dict[str, tuple[str, int]] = {}
    try:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED, allowZip64=True) as zf:
            for rel in included:
                full = os.path.join(src_dir, *rel.split("/"))
                if os.path.realpath(full) in skip or (hashed and rel == MANIFEST_NAME):
                    continue
                if rel in hashed:
                    digests[rel] = _write_hashed_member(zf, full, rel)
                else:
                    zf.write(full, rel)
            if hashed:
                missing = sorted(hashed - set(digests))
                if missing:
                    raise ManifestError(
                        f"{missing} of {src_dir!r} should be listed in {MANIFEST_NAME} but are "
                        f"not in the zip; create them or remove them from {ignore_file}."
                    )
                zf.writestr(MANIFEST_NAME, manifest_text(manifest_document(digests)))
        os.replace(tmp, dest_zip)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return dest_zip


def _write_hashed_member(zf: zipfile.ZipFile, path: str, name: str) -> tuple[str, int]:
    """Streams one file into the zip; returns (sha256 hex, size) of the bytes written."""
    info = zipfile.ZipInfo.from_file(path, name)
    info.compress_type = zipfile.ZIP_DEFLATED
    digest, size = hashlib.sha256(), 0
    with open(path, "rb") as src, zf.open(info, "w") as dst:
        while chunk := src.read(CHUNK_SIZE):
            digest.update(chunk)
            dst.write(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


# --- streaming zips: written in place, append-only, while an upload reads them ----------------

ZIP_DATE_TIME = (1980, 1, 1, 0, 0, 0)
"""The timestamp of every member of a streamed zip, so the same content gives the same bytes."""
COMPRESSION_SAMPLE = 1024 * 1024
"""Bytes of a file compressed to judge whether deflating it is worth it."""
STORE_RATIO = 0.9
"""A file whose sample deflates to more than this fraction of its size is stored as is."""


def compression_for(path: str, sample_size: int = COMPRESSION_SAMPLE) -> int:
    """``ZIP_STORED`` for a file whose first ``sample_size`` bytes do not deflate below
    :data:`STORE_RATIO` of their size (an already compressed or random model file), else
    ``ZIP_DEFLATED``."""
    with open(path, "rb") as fh:
        sample = fh.read(sample_size)
    if len(sample) < 512:
        return zipfile.ZIP_DEFLATED
    ratio = len(zlib.compress(sample, 6)) / len(sample)
    return zipfile.ZIP_STORED if ratio > STORE_RATIO else zipfile.ZIP_DEFLATED


class _AppendOnly:
    """A write-only stream without ``seek``: zipfile then writes each member's sizes and CRC
    in a data descriptor after its data instead of seeking back, so bytes already written
    never change (a reader may upload them while the zip grows)."""

    def __init__(self, fh: IO[bytes]) -> None:
        self._fh = fh
        self._pos = 0

    def write(self, data: bytes) -> int:
        self._fh.write(data)
        self._pos += len(data)
        return len(data)

    def tell(self) -> int:
        return self._pos

    def flush(self) -> None:
        self._fh.flush()


def _streamed_info(name: str, mode: int, size: int, compress_type: int) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=ZIP_DATE_TIME)
    info.create_system = 3
    info.external_attr = (0o100755 if mode & 0o111 else 0o100644) << 16
    info.compress_type = compress_type
    info.file_size = size  # decides ZIP64 up front
    return info


def _write_streamed_member(
    zf: zipfile.ZipFile, path: str, name: str, hashed: bool
) -> tuple[str, int] | None:
    """Streams one file into the zip with a fixed timestamp and the compression it deserves;
    (sha256 hex, size) of its bytes when ``hashed``."""
    st = os.stat(path)
    info = _streamed_info(name, st.st_mode, st.st_size, compression_for(path))
    digest, size = hashlib.sha256(), 0
    with open(path, "rb") as src, zf.open(info, "w") as dst:
        while chunk := src.read(CHUNK_SIZE):
            if hashed:
                digest.update(chunk)
            dst.write(chunk)
            size += len(chunk)
    return (digest.hexdigest(), size) if hashed else None


@dataclass
class _ZipPlan:
    src_dir: str
    dest: str
    included: list[str]
    hashed: set[str]
    ignore_file: str


def _plan_zip(
    src_dir: str,
    dest_zip: str,
    ignore_file: str,
    force_overwrite: bool,
    manifest_files: Iterable[str],
) -> _ZipPlan:
    if not os.path.isdir(src_dir):
        raise FileNotFoundError(f"Artifact folder {src_dir!r} does not exist; prepare it first.")
    dest = os.path.abspath(dest_zip)
    if os.path.exists(dest) and not force_overwrite:
        raise ArtifactFileExistsError(dest)
    os.makedirs(os.path.dirname(dest), exist_ok=True)
    return _ZipPlan(
        src_dir, dest, list(iter_included(src_dir, ignore_file)), set(manifest_files), ignore_file
    )


def _is_beside_dest(full: str, dest: str) -> bool:
    """True for the zip itself and files named after it in its folder (an upload journal and
    its temporary files), which must not go into the zip when it is written inside src_dir."""
    real, real_dest = os.path.realpath(full), os.path.realpath(dest)
    return real == real_dest or (
        os.path.dirname(real) == os.path.dirname(real_dest)
        and os.path.basename(real_dest) in os.path.basename(real)
    )


def _write_zip(plan: _ZipPlan, fh: IO[bytes]) -> None:
    digests: dict[str, tuple[str, int]] = {}
    with zipfile.ZipFile(_AppendOnly(fh), "w", allowZip64=True) as zf:  # type: ignore[arg-type]
        for rel in plan.included:
            full = os.path.join(plan.src_dir, *rel.split("/"))
            if _is_beside_dest(full, plan.dest) or (plan.hashed and rel == MANIFEST_NAME):
                continue
            entry = _write_streamed_member(zf, full, rel, rel in plan.hashed)
            if entry is not None:
                digests[rel] = entry
            fh.flush()
        if plan.hashed:
            missing = sorted(plan.hashed - set(digests))
            if missing:
                raise ManifestError(
                    f"{missing} of {plan.src_dir!r} should be listed in {MANIFEST_NAME} but are "
                    f"not in the zip; create them or remove them from {plan.ignore_file}."
                )
            text = manifest_text(manifest_document(digests)).encode("utf-8")
            info = _streamed_info(MANIFEST_NAME, 0o644, len(text), zipfile.ZIP_DEFLATED)
            zf.writestr(info, text)
    fh.flush()


def _run_zip(plan: _ZipPlan, fh: IO[bytes], on_done: threading.Event | None) -> str:
    try:
        with fh:
            _write_zip(plan, fh)
    except BaseException:
        # Remove the half zip first: a reader woken by on_done then finds no file and fails.
        with contextlib.suppress(FileNotFoundError):
            os.unlink(plan.dest)
        raise
    finally:
        if on_done is not None:
            on_done.set()
    return plan.dest


def zip_into(
    src_dir: str,
    dest_zip: str,
    *,
    ignore_file: str = MODEL_IGNORE,
    force_overwrite: bool = False,
    manifest_files: Iterable[str] = (),
    on_done: threading.Event | None = None,
) -> str:
    """Zips the kept files of ``src_dir`` into ``dest_zip`` in place, append-only, so another
    thread may read (upload) the bytes already written while the zip grows; sets ``on_done``
    once the central directory is written and the file closed.

    Unlike :func:`make_zip` (a temporary file, then a rename) the zip is written where it
    ends up, and:

    - bytes before the current end never change (sizes and CRCs follow each member's data);
    - the same folder content always gives the same bytes (sorted names, a fixed timestamp,
      normalized permissions), so a re-built zip matches parts an interrupted upload sent;
    - each file gets its own compression: deflated, unless a sample of it does not compress
      (:func:`compression_for`), then stored.

    ``.model-ignore`` and ``manifest_files`` (hashed while they stream in, the manifest added
    last) work as in :func:`make_zip`. On failure the file is removed, then ``on_done`` set,
    and the error raised. Use :func:`start_zip_into` to run it in a thread.
    """
    plan = _plan_zip(src_dir, dest_zip, ignore_file, force_overwrite, manifest_files)
    try:
        fh = open(plan.dest, "wb")
    except BaseException:
        if on_done is not None:
            on_done.set()
        raise
    return _run_zip(plan, fh, on_done)


class ZipJob:
    """A :func:`zip_into` running in a thread: ``path``, ``done`` (set when the zip is
    complete, or failed and removed) and :meth:`result`."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.done = threading.Event()
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None

    def _run(self, plan: _ZipPlan, fh: IO[bytes]) -> None:
        try:
            _run_zip(plan, fh, self.done)
        except BaseException as exc:  # handed to result()
            self._error = exc

    def result(self, timeout: float | None = None) -> str:
        """The zip's path once it is complete; raises the zip's error."""
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                raise TimeoutError(f"Zipping into {self.path!r} did not finish in {timeout} s.")
        if self._error is not None:
            raise self._error
        return self.path


def start_zip_into(
    src_dir: str,
    dest_zip: str,
    *,
    ignore_file: str = MODEL_IGNORE,
    force_overwrite: bool = False,
    manifest_files: Iterable[str] = (),
) -> ZipJob:
    """Starts :func:`zip_into` in a thread and returns its :class:`ZipJob`. The folder is
    checked and ``dest_zip`` created (emptied) before it returns, so a reader started next
    never sees an older file there::

        job = start_zip_into(artifact_dir, zip_path, force_overwrite=True)
        result = upload_file(zip_path, uri, source_done=job.done)
        job.result()  # the zip's own error, if it failed
    """
    plan = _plan_zip(src_dir, dest_zip, ignore_file, force_overwrite, manifest_files)
    fh = open(plan.dest, "wb")
    job = ZipJob(plan.dest)
    job._thread = threading.Thread(
        target=job._run, args=(plan, fh), name="ocimodel-zip", daemon=True
    )
    job._thread.start()
    return job


def archive_kind(path: str) -> str | None:
    """'zip', 'tar' or None, judged by the file name."""
    lower = path.lower()
    if lower.endswith(ZIP_SUFFIXES):
        return "zip"
    if lower.endswith(TAR_SUFFIXES):
        return "tar"
    return None


def member_parts(name: str, archive: str) -> list[str]:
    """The path parts of an archive member, refusing absolute and ``..`` names."""
    norm = name.replace("\\", "/")
    if norm.startswith("/") or re.match(r"^[A-Za-z]:", norm):
        raise UnsafeArchiveError(
            f"Archive {archive!r} holds an absolute path {name!r}; refusing to extract. "
            "Rebuild the archive with paths relative to the artifact folder."
        )
    parts = [p for p in norm.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise UnsafeArchiveError(
            f"Archive {archive!r} holds {name!r}, which escapes the target folder through '..'; "
            "refusing to extract. Rebuild the archive without '..' in member names."
        )
    return parts


def _refuse_link(name: str, archive: str) -> None:
    raise UnsafeArchiveError(
        f"Archive {archive!r} holds a link {name!r}; links could point outside the target "
        "folder, so extraction is refused. Replace the link by the file it points to."
    )


def _write_member(src, dest: str) -> None:
    os.makedirs(os.path.dirname(dest), exist_ok=True)
    with open(dest, "wb") as out:
        shutil.copyfileobj(src, out, CHUNK_SIZE)


def _extract_zip(archive: str, target: str) -> list[str]:
    names = []
    with zipfile.ZipFile(archive) as zf:
        infos = zf.infolist()
        for info in infos:
            parts = member_parts(info.filename, archive)
            if stat.S_ISLNK(info.external_attr >> 16):
                _refuse_link(info.filename, archive)
            if not parts:
                continue
        for info in infos:
            parts = member_parts(info.filename, archive)
            if not parts:
                continue
            dest = os.path.join(target, *parts)
            if info.is_dir():
                os.makedirs(dest, exist_ok=True)
                continue
            with zf.open(info) as src:
                _write_member(src, dest)
            names.append("/".join(parts))
    return names


def _extract_tar(archive: str, target: str) -> list[str]:
    names = []
    with tarfile.open(archive, "r:*") as tf:
        for member in tf:
            parts = member_parts(member.name, archive)
            if member.issym() or member.islnk():
                _refuse_link(member.name, archive)
            if not (member.isfile() or member.isdir()):
                raise UnsafeArchiveError(
                    f"Archive {archive!r} holds {member.name!r}, a device or fifo; refusing "
                    "to extract. An artifact archive may hold only files and folders."
                )
            if not parts:
                continue
            dest = os.path.join(target, *parts)
            if member.isdir():
                os.makedirs(dest, exist_ok=True)
                continue
            src = tf.extractfile(member)
            if src is None:
                continue
            with src:
                _write_member(src, dest)
            names.append("/".join(parts))
    return names


def safe_extract(archive: str, target_dir: str) -> list[str]:
    """Extracts a zip/tar(.gz) into a new or empty ``target_dir``; returns the file names.

    Absolute names, ``..`` and links raise UnsafeArchiveError and leave nothing behind.
    """
    kind = archive_kind(archive)
    if kind is None:
        if zipfile.is_zipfile(archive):
            kind = "zip"
        elif tarfile.is_tarfile(archive):
            kind = "tar"
        else:
            raise ArchiveFormatError(
                f"{archive!r} is neither a zip nor a tar archive; pass a folder, a .zip, a .tar "
                "or a .tar.gz."
            )
    if os.path.exists(target_dir) and (not os.path.isdir(target_dir) or os.listdir(target_dir)):
        raise ArtifactFileExistsError(target_dir)
    parent = os.path.dirname(os.path.abspath(target_dir))
    os.makedirs(parent, exist_ok=True)
    staging = create_temp_dir(parent, prefix=".extract-")
    try:
        try:
            names = (_extract_zip if kind == "zip" else _extract_tar)(archive, staging)
        except (zipfile.BadZipFile, tarfile.TarError, EOFError) as exc:
            raise ArchiveFormatError(
                f"{archive!r} is not a readable {kind} archive ({exc}); re-create the archive."
            ) from None
        if os.path.isdir(target_dir):
            os.rmdir(target_dir)
        os.replace(staging, target_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return names
