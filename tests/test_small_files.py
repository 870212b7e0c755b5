"""Files read whole by recipes (reports, XML documents, label files, lists) and zips opened from disk: a
FIFO or device is refused before open() (which would block), a file over its cap before it is read, and
a per-record file becomes that record's reject while the rest of the source is built."""

from __future__ import annotations

import io
import os
import signal
import tarfile
import zipfile
from pathlib import Path

import pytest
from medmo_data.recipes import medtrinity, roco

from medmo_data.build.distributor import BuildOptions, build
from medmo_data.families import yolo
from medmo_data.formats import tar_stream
from medmo_data.formats.archive import ReleaseTree, copy_member, open_zip
from medmo_data.formats.safe_pickle import load_path
from medmo_data.formats.tables import FileRefused, read_small
from medmo_data.formats.tar_stream import iter_members
from medmo_data.recipe import SourceError, get_recipe
from tests.fixtures import make


@pytest.fixture(autouse=True)
def no_hang():
    """A regression that opens a FIFO blocks forever: fail after 60 s instead of hanging the suite."""
    def stop(*_):
        raise TimeoutError("blocked: a FIFO was opened")
    old = signal.signal(signal.SIGALRM, stop)
    signal.alarm(60)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, old)


def test_read_small_refuses_before_reading(tmp_path: Path) -> None:
    (tmp_path / "ok.txt").write_bytes(b"abc")
    assert read_small(tmp_path / "ok.txt") == b"abc"
    os.mkfifo(tmp_path / "pipe.xml")
    cases = {"pipe.xml": "not_a_regular_file", "missing.xml": "missing_file", ".": "not_a_regular_file"}
    for name, reason in cases.items():
        with pytest.raises(FileRefused) as e:
            read_small(tmp_path / name)
        assert e.value.reason == reason and str(tmp_path / name) in str(e.value)
    with pytest.raises(FileRefused) as e:
        read_small(tmp_path / "ok.txt", cap=2)
    assert e.value.reason == "file_too_large" and "3 bytes is over the 2-byte cap" in str(e.value)
    assert isinstance(e.value, SourceError)  # a file the whole source needs still stops the build


def test_zips_on_disk_are_checked_and_nested_copies_capped(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "reports.zip")
    with pytest.raises(FileRefused, match="not a regular file"):
        open_zip(tmp_path / "reports.zip")
    (tmp_path / "fake.zip").write_bytes(b"not a zip")
    with pytest.raises(SourceError, match="fake.zip: not a readable zip"):
        open_zip(tmp_path / "fake.zip")
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w") as z:
        z.writestr("img/a.png", bytes(5000))
    outer = tmp_path / "release.zip"
    with zipfile.ZipFile(outer, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("test/images.zip", inner.getvalue())
    with open_zip(outer) as zf:
        copy = copy_member(zf, "test/images.zip", "release.zip")
        assert zipfile.ZipFile(copy).namelist() == ["img/a.png"]
        with pytest.raises(SourceError, match=r"release.zip:test/images.zip: over 1000 bytes"):
            copy_member(zf, "test/images.zip", "release.zip", cap=1000)


def test_a_fifo_medquad_document_is_one_reject(tmp_path: Path) -> None:
    raw = make("medquad", tmp_path / "raw")
    base = build(get_recipe("medquad"), raw, BuildOptions(output=tmp_path / "base")).manifest["counts"]
    os.mkfifo(raw / "2_GARD_QA" / "0009999.xml")
    res = build(get_recipe("medquad"), raw, BuildOptions(output=tmp_path / "out"))
    counts = res.manifest["counts"]
    assert counts["written"] == base["written"] and counts["read"] == base["read"] + 1
    assert res.manifest["rejects_by_reason"]["not_a_regular_file"] == 1


def test_a_fifo_iu_xray_report_is_one_reject(tmp_path: Path) -> None:
    raw = make("iu_xray", tmp_path / "raw")
    reports = next(p.parent for p in raw.rglob("*.xml"))
    base = build(get_recipe("iu_xray"), raw, BuildOptions(output=tmp_path / "base")).manifest["counts"]
    os.mkfifo(reports / "99999.xml")
    res = build(get_recipe("iu_xray"), raw, BuildOptions(output=tmp_path / "out"))
    assert res.manifest["counts"]["written"] == base["written"]
    assert res.manifest["rejects_by_reason"]["not_a_regular_file"] == 1


def test_a_fifo_yolo_label_file_is_the_images_reject(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "a.txt")
    with pytest.raises(yolo.YoloError) as e:
        yolo.read_labels(tmp_path / "a.txt", 100, 100)
    assert e.value.reason == "not_a_regular_file"
    with pytest.raises(yolo.YoloError) as e:
        yolo.read_labels(tmp_path / "missing.txt", 100, 100)
    assert e.value.reason == "missing_labels"


def test_other_whole_file_and_stream_readers_refuse_a_fifo(tmp_path: Path) -> None:
    (tmp_path / "imgs").mkdir()
    for name in ("imgs/detection.json", "train.pkl", "captions.txt", "images.tar.zst"):
        os.mkfifo(tmp_path / name)
    with pytest.raises(FileRefused, match="not a regular file"):
        ReleaseTree(tmp_path, "imgs").read_bytes("detection.json")  # SLAKE: that sample's reject
    with pytest.raises(SourceError, match="train.pkl: not a regular file"):
        load_path(tmp_path / "train.pkl")
    with pytest.raises(FileRefused, match="captions.txt: not a regular file"):
        list(roco._tab_lines(tmp_path / "captions.txt"))
    with pytest.raises(FileRefused, match="images.tar.zst: not a regular file"):
        list(iter_members(tmp_path / "images.tar.zst"))  # MedTrinity, NIH, IU-Xray tarballs


def test_tar_streams_read_no_member_past_the_cap(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with tarfile.open(tmp_path / "images.tar", "w") as tf:
        for name, size in (("a.jpg", 10), ("b.jpg", 50), ("c.jpg", 5)):
            info = tarfile.TarInfo(name)
            info.size = size
            tf.addfile(info, io.BytesIO(b"x" * size))
    monkeypatch.setattr(tar_stream, "MAX_MEMBER_BYTES", 20)
    got = {name: len(data) for name, data in iter_members(tmp_path / "images.tar", medtrinity.IMAGE_EXTS)}
    assert got == {"a.jpg": 10, "b.jpg": 21, "c.jpg": 5}  # 21: one over, the decoder's file_too_large
