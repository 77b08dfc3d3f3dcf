"""Zipping with .model-ignore (gitignore semantics) and safe extraction of zip/tar archives."""

from __future__ import annotations

import io
import os
import stat
import tarfile
import zipfile

import pytest

from ocimodel.artifact.archive import (
    ArchiveFormatError,
    IgnoreRules,
    iter_included,
    make_zip,
    safe_extract,
)
from ocimodel.errors import ArtifactFileExistsError, UnsafeArchiveError


@pytest.mark.parametrize(
    "patterns, path, is_dir, expected",
    [
        (["*.pyc"], "a/b/c.pyc", False, True),
        (["*.pyc"], "c.py", False, False),
        (["build/"], "build", True, True),
        (["build/"], "build", False, False),  # folder-only pattern does not match a file
        (["build/"], "src/build/x.txt", False, True),  # unanchored folder at any depth
        (["/top.txt"], "top.txt", False, True),
        (["/top.txt"], "sub/top.txt", False, False),  # anchored by the leading slash
        (["doc/*.md"], "doc/a.md", False, True),
        (["doc/*.md"], "doc/sub/a.md", False, False),  # * never crosses /
        (["doc/*.md"], "x/doc/a.md", False, False),  # a middle slash anchors too
        (["**/logs"], "a/b/logs", True, True),
        (["**/logs"], "logs", True, True),
        (["data/**"], "data/x/y.csv", False, True),
        (["data/**"], "data", True, False),
        (["a/**/z.txt"], "a/z.txt", False, True),
        (["a/**/z.txt"], "a/b/c/z.txt", False, True),
        (["file?.txt"], "file1.txt", False, True),
        (["file?.txt"], "file10.txt", False, False),
        (["[ab].txt"], "b.txt", False, True),
        (["[!ab].txt"], "b.txt", False, False),
        (["[!ab].txt"], "c.txt", False, True),
        (["*.log", "!keep.log"], "keep.log", False, False),  # negation, last match wins
        (["!keep.log", "*.log"], "keep.log", False, True),
        (["secret/", "!secret/ok.txt"], "secret/ok.txt", False, True),  # parent stays excluded
        (["# comment", "", "   "], "# comment", False, False),
        (["\\#hash.txt"], "#hash.txt", False, True),
        (["\\!bang.txt"], "!bang.txt", False, True),
        (["trailing.txt   "], "trailing.txt", False, True),
    ],
)
def test_ignore_rules_follow_gitignore(patterns, path, is_dir, expected):
    assert IgnoreRules(patterns).is_ignored(path, is_dir) is expected


def _tree(root, files):
    for rel, text in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)


def test_iter_included_prunes_ignored_folders_and_honours_negation(tmp_path):
    _tree(
        tmp_path,
        {
            ".model-ignore": "*.log\n!important.log\n__pycache__/\nsecret/\n!secret/keep.txt\n",
            "score.py": "",
            "runtime.yaml": "",
            "a.log": "",
            "important.log": "",
            "pkg/__pycache__/x.pyc": "",
            "pkg/mod.py": "",
            "secret/keep.txt": "",
            "secret/key.pem": "",
        },
    )
    assert sorted(iter_included(str(tmp_path))) == [
        ".model-ignore",
        "important.log",
        "pkg/mod.py",
        "runtime.yaml",
        "score.py",
    ]


def test_make_zip_puts_kept_files_at_top_and_skips_itself(tmp_path):
    src = tmp_path / "art"
    _tree(src, {".model-ignore": "*.tmp\n", "score.py": "s", "m/model.pkl": "m", "x.tmp": "t"})
    dest = src / "out.zip"
    make_zip(str(src), str(dest))
    with zipfile.ZipFile(dest) as zf:
        assert sorted(zf.namelist()) == [".model-ignore", "m/model.pkl", "score.py"]
        assert zf.read("m/model.pkl") == b"m"
    with pytest.raises(ArtifactFileExistsError, match="force_overwrite=True"):
        make_zip(str(src), str(dest))
    (src / "new.txt").write_text("n")
    make_zip(str(src), str(dest), force_overwrite=True)
    with zipfile.ZipFile(dest) as zf:
        assert "new.txt" in zf.namelist() and "out.zip" not in zf.namelist()
    assert [p.name for p in src.iterdir() if p.name.startswith(".tmp-")] == []
    with pytest.raises(FileNotFoundError, match="does not exist"):
        make_zip(str(tmp_path / "missing"), str(tmp_path / "x.zip"))


def _zip_with(path, entries):
    """entries: (name, data, unix_mode or None)."""
    with zipfile.ZipFile(path, "w") as zf:
        for name, data, mode in entries:
            info = zipfile.ZipInfo(name)
            if mode is not None:
                info.external_attr = mode << 16
            zf.writestr(info, data)
    return str(path)


def _tar_with(path, members, mode="w:gz"):
    """members: list of TarInfo-configuring callables returning (TarInfo, data or None)."""
    with tarfile.open(path, mode) as tf:
        for info, data in members:
            if data is None:
                tf.addfile(info)
            else:
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
    return str(path)


def _tinfo(name, kind=tarfile.REGTYPE, linkname=""):
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    return info


def _assert_nothing_left(tmp_path, target):
    assert not os.path.exists(target)
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.startswith(".extract-")]
    assert leftovers == []


def test_safe_extract_zip_and_tar_gz(tmp_path):
    good_zip = _zip_with(
        tmp_path / "a.zip",
        [("score.py", b"s", None), ("dir/", b"", None), ("dir/m.pkl", b"m", None)],
    )
    names = safe_extract(good_zip, str(tmp_path / "z"))
    assert names == ["score.py", "dir/m.pkl"]
    assert (tmp_path / "z" / "dir" / "m.pkl").read_bytes() == b"m"
    good_tar = _tar_with(
        tmp_path / "a.tar.gz",
        [(_tinfo("./runtime.yaml"), b"r"), (_tinfo("sub", tarfile.DIRTYPE), None)],
    )
    assert safe_extract(good_tar, str(tmp_path / "t")) == ["runtime.yaml"]
    assert (tmp_path / "t" / "runtime.yaml").read_bytes() == b"r"
    plain_tar = _tar_with(tmp_path / "p.tar", [(_tinfo("x.txt"), b"x")], mode="w")
    assert safe_extract(plain_tar, str(tmp_path / "p")) == ["x.txt"]


@pytest.mark.parametrize(
    "name, message",
    [
        ("../evil.txt", "escapes the target folder"),
        ("ok/../../evil.txt", "escapes the target folder"),
        ("/etc/evil.txt", "absolute path"),
        ("C:/evil.txt", "absolute path"),
        ("..\\evil.txt", "escapes the target folder"),
    ],
)
def test_zip_escaping_entries_are_refused(tmp_path, name, message):
    archive = _zip_with(tmp_path / "bad.zip", [("fine.txt", b"f", None), (name, b"x", None)])
    target = tmp_path / "out"
    with pytest.raises(UnsafeArchiveError, match=message):
        safe_extract(archive, str(target))
    _assert_nothing_left(tmp_path, target)
    assert not (tmp_path / "evil.txt").exists()


def test_zip_symlink_entry_is_refused(tmp_path):
    archive = _zip_with(
        tmp_path / "link.zip",
        [("score.py", b"s", None), ("link", b"/etc/passwd", stat.S_IFLNK | 0o777)],
    )
    with pytest.raises(UnsafeArchiveError, match="holds a link 'link'"):
        safe_extract(archive, str(tmp_path / "out"))
    _assert_nothing_left(tmp_path, tmp_path / "out")


@pytest.mark.parametrize(
    "member, message",
    [
        (_tinfo("../evil.txt"), "escapes the target folder"),
        (_tinfo("/abs/evil.txt"), "absolute path"),
        (_tinfo("sym", tarfile.SYMTYPE, "/etc/passwd"), "holds a link 'sym'"),
        (_tinfo("hard", tarfile.LNKTYPE, "score.py"), "holds a link 'hard'"),
        (_tinfo("fifo", tarfile.FIFOTYPE), "device or fifo"),
        (_tinfo("dev", tarfile.CHRTYPE), "device or fifo"),
    ],
)
def test_tar_unsafe_members_are_refused(tmp_path, member, message):
    data = b"x" if member.type == tarfile.REGTYPE else None
    archive = _tar_with(tmp_path / "bad.tar.gz", [(_tinfo("score.py"), b"s"), (member, data)])
    target = tmp_path / "out"
    with pytest.raises(UnsafeArchiveError, match=message):
        safe_extract(archive, str(target))
    _assert_nothing_left(tmp_path, target)


def test_corrupt_or_unknown_archives_are_typed(tmp_path):
    corrupt = tmp_path / "broken.zip"
    corrupt.write_bytes(b"PK\x03\x04 this is not really a zip")
    with pytest.raises(ArchiveFormatError, match="not a readable zip archive"):
        safe_extract(str(corrupt), str(tmp_path / "o1"))
    _assert_nothing_left(tmp_path, tmp_path / "o1")
    other = tmp_path / "model.bin"
    other.write_bytes(b"plain bytes")
    with pytest.raises(ArchiveFormatError, match="neither a zip nor a tar"):
        safe_extract(str(other), str(tmp_path / "o2"))


def test_extract_into_non_empty_folder_is_refused(tmp_path):
    archive = _zip_with(tmp_path / "a.zip", [("score.py", b"new", None)])
    target = tmp_path / "out"
    target.mkdir()
    (target / "score.py").write_text("old")
    with pytest.raises(ArtifactFileExistsError):
        safe_extract(archive, str(target))
    assert (target / "score.py").read_text() == "old"
