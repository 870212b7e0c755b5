"""Tar archives read in place (formats.tar_stream): every compression, links skipped, truncation kept as a
reject, and the join that gives each record its members whatever the archive order."""

import gzip
import io
import tarfile

import pytest

from medmo_data.formats.tar_stream import Missing, iter_members, join_archives
from medmo_data.recipe import Reject
from tests.fixtures._zips import tar_files


def _files(tmp_path, names):
    out = []
    for n in names:
        p = tmp_path / "src" / n
        p.parent.mkdir(exist_ok=True)
        p.write_bytes(f"bytes of {n}".encode())
        out.append(p)
    return out


@pytest.mark.parametrize("suffix", [".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz", ".tar.zst"])
def test_every_compression_gives_the_same_members(tmp_path, suffix):
    archive = tar_files(_files(tmp_path, ["b.png", "a.png", "notes.txt"]), tmp_path / f"x{suffix}", "images/")
    assert list(iter_members(archive, (".png",))) == [("images/b.png", b"bytes of b.png"),
                                                      ("images/a.png", b"bytes of a.png")]


def test_links_and_folders_are_skipped_never_followed(tmp_path):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for name, kind in (("images", tarfile.DIRTYPE), ("images/evil.png", tarfile.SYMTYPE)):
            info = tarfile.TarInfo(name)
            info.type, info.linkname = kind, "/etc/passwd"
            tf.addfile(info)
        info = tarfile.TarInfo("images/ok.png")
        info.size = 2
        tf.addfile(info, io.BytesIO(b"ok"))
    (tmp_path / "x.tar").write_bytes(buf.getvalue())
    assert list(iter_members(tmp_path / "x.tar")) == [("images/ok.png", b"ok")]


def test_a_truncated_archive_keeps_what_came_before_the_break(tmp_path):
    files = _files(tmp_path, ["a.png", "b.png"])
    files[1].write_bytes(bytes(range(256)) * 400)
    archive = tar_files(files, tmp_path / "x.tar.gz", "")
    archive.write_bytes(archive.read_bytes()[:-200])
    out = list(iter_members(archive))
    assert out[0] == ("a.png", b"bytes of a.png")
    assert isinstance(out[-1], Reject) and out[-1].reason == "truncated_archive" and "x.tar.gz" in out[-1].detail
    assert len(out) == 2  # b.png is cut short: it never comes out half-read


def test_join_gives_records_as_they_complete_and_lists_the_missing(tmp_path):
    one = tar_files(_files(tmp_path, ["c.png", "a1.png"]), tmp_path / "images_001.tar.gz", "images/")
    two = tar_files(_files(tmp_path, ["a2.png", "b.png", "a1.png"]), tmp_path / "images_002.tar.gz", "deep/er/")
    spill = tmp_path / "spill"
    spill.mkdir()
    records = {"A": ["a1.png", "a2.png"], "B": ["b.png"], "C": ["c.png"], "D": ["d.png", "c.png"],
               "E": ["c.png"]}
    out = []
    for item in join_archives([one, two], records, temp_dir=str(spill)):
        out.append(item)
        if isinstance(item, tuple) and item[0] == "A":  # c.png waits for D (never complete), a1.png has just been given to A
            assert len(list(next(spill.iterdir()).iterdir())) == 1
    assert out == [("C", [b"bytes of c.png"]), ("E", [b"bytes of c.png"]),
                   ("A", [b"bytes of a1.png", b"bytes of a2.png"]), ("B", [b"bytes of b.png"]),
                   Missing("D", ("d.png",))]
    assert list(spill.iterdir()) == []  # the waiting folder is gone


def test_ordered_join_keeps_the_records_order(tmp_path):
    archive = tar_files(_files(tmp_path, ["z.png", "y.png", "x.png"]), tmp_path / "a.tar", "")
    out = list(join_archives([archive], {"x": ["x.png"], "q": ["q.png"], "z": ["z.png"]}, ordered=True))
    assert out == [("x", [b"bytes of x.png"]), Missing("q", ("q.png",)), ("z", [b"bytes of z.png"])]


def test_first_member_of_a_name_wins(tmp_path):
    first = tar_files(_files(tmp_path, ["a.png"]), tmp_path / "1.tar", "")
    (tmp_path / "src" / "a.png").write_bytes(b"later copy")
    second = tar_files([tmp_path / "src" / "a.png"], tmp_path / "2.tar", "other/")
    assert list(join_archives([first, second], {"k": ["a.png"]})) == [("k", [b"bytes of a.png"])]


def test_gzip_member_over_the_cap_stops_one_byte_over(tmp_path, monkeypatch):
    import medmo_data.formats.tar_stream as ts

    monkeypatch.setattr(ts, "MAX_MEMBER_BYTES", 10)
    files = _files(tmp_path, ["big.png"])
    files[0].write_bytes(b"x" * 1000)
    archive = tar_files(files, tmp_path / "x.tar.gz", "")
    assert gzip.decompress(archive.read_bytes())  # a real gzip stream
    assert list(iter_members(archive)) == [("big.png", b"x" * 11)]
