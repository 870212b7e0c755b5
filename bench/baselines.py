"""Baselines: the least work a conversion cannot avoid, per source kind, with the build's libraries and
settings (pydicom + pylibjpeg, Pillow, PNG zlib level, GNU tar). Each reads the raw layout that
`bench.gen` wrote, decodes, transforms the pixels, encodes, and appends `json` + image members to a tar.

What the baselines leave out is exactly the build's overhead: recipe parsing beyond the file list,
schema validation, fingerprints for the mix index (pixel sha256 + dHash), the index parquet, stats,
fsync and the manifest. They never import medmo_data: the window is the script's own float32 code.
"""

from __future__ import annotations

import csv
import io
import json
import tarfile
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
from PIL import Image

PNG_LEVEL = 4  # NormalizeOptions' default


class _Tar:
    def __init__(self, path: Path) -> None:
        self.tar = tarfile.open(path, "w", format=tarfile.GNU_FORMAT)

    def add(self, key: str, members: dict[str, bytes]) -> None:
        for name, data in members.items():
            ti = tarfile.TarInfo(f"{key}.{name}")
            ti.size = len(data)
            self.tar.addfile(ti, io.BytesIO(data))

    def close(self) -> None:
        self.tar.close()


def window(values: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """The window a minimal script writes: float32, clip, scale, round half up."""
    v = np.clip(values.astype(np.float32), lo, hi)
    v -= lo
    v *= np.float32(255.0 / (hi - lo))
    v += 0.5
    return v.astype(np.uint8)  # truncation of non-negative values = floor


def _png(arr: np.ndarray, level: int = PNG_LEVEL) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG", compress_level=level)
    return buf.getvalue()


def _rec(sid: str, text: str) -> bytes:
    return json.dumps({"id": sid, "messages": [{"role": "user", "content": text}]}).encode()


def _jsonl(path: Path) -> Iterator[dict]:
    with open(path, "rb") as f:
        for raw in f:
            if raw.strip():
                yield json.loads(raw)


def ct_dicom(root: Path, out: Path) -> int:
    import pydicom
    from pydicom.pixels import apply_modality_lut

    tar, n = _Tar(out), 0
    for line in _jsonl(root / "annotations.jsonl"):
        ds = pydicom.dcmread(root / line["images"][0])
        hu = apply_modality_lut(ds.pixel_array, ds)
        c, w = float(ds.WindowCenter), float(ds.WindowWidth)
        px = window(hu, c - 0.5 - (w - 1) / 2, c - 0.5 + (w - 1) / 2)
        tar.add(line["id"], {"json": _rec(line["id"], "grounding"), "0.png": _png(px)})
        n += 1
    tar.close()
    return n


def deeplesion(root: Path, out: Path) -> int:
    tar, n = _Tar(out), 0
    with open(root / "DL_info.csv", newline="") as f:
        for row in csv.DictReader(f):
            folder, _, sl = row["File_name"].rpartition("_")
            lo, hi = (float(v) for v in row["DICOM_windows"].split(","))
            with Image.open(root / "Images_png" / folder / sl) as im:
                stored = np.asarray(im, dtype=np.uint16)
            px = window(stored.astype(np.float32) - 32768.0, lo, hi)
            tar.add(row["File_name"][:-4], {"json": _rec(row["File_name"], "grounding"), "0.png": _png(px)})
            n += 1
    tar.close()
    return n


def jpeg_passthrough(root: Path, out: Path, validate: bool = True) -> int:
    """Bytes copied as they are; `validate` also decodes each JPEG once (a truncated file must fail at
    build time, which the build guarantees), the least a checked pass-through can do."""
    tar, n = _Tar(out), 0
    recs = json.loads((root / "VQA_RAD Dataset Public.json").read_bytes())
    for r in recs:
        data = (root / "VQA_RAD Image Folder" / r["image_name"]).read_bytes()
        if validate:
            with Image.open(io.BytesIO(data)) as im:
                im.load()
        tar.add(str(r["qid"]), {"json": _rec(str(r["qid"]), r["question"]), "0.jpg": data})
        n += 1
    tar.close()
    return n


def jpeg_bytes_only(root: Path, out: Path) -> int:
    return jpeg_passthrough(root, out, validate=False)


def folder_jpeg(root: Path, out: Path) -> int:
    """A JPEG folder with captions: each file read, fully decoded once (validation), tarred as it is."""
    tar, n = _Tar(out), 0
    for line in _jsonl(root / "annotations.jsonl"):
        data = (root / line["images"][0]).read_bytes()
        with Image.open(io.BytesIO(data)) as im:
            im.load()
        tar.add(line["id"], {"json": _rec(line["id"], line["caption"]), "0.jpg": data})
        n += 1
    tar.close()
    return n


def multi_image(root: Path, out: Path) -> int:
    tar, n = _Tar(out), 0
    for line in _jsonl(root / "annotations.jsonl"):
        members = {"json": _rec(line["id"], line["caption"])}
        for i, rel in enumerate(line["images"]):  # 8-bit PNGs need no change: validated, stored as they are
            data = (root / rel).read_bytes()
            with Image.open(io.BytesIO(data)) as im:
                im.load()
            members[f"{i}.png"] = data
        tar.add(line["id"], members)
        n += 1
    tar.close()
    return n


def text_only(root: Path, out: Path) -> int:
    tar, n = _Tar(out), 0
    path = root / "data_clean" / "questions" / "US" / "4_options" / "phrases_no_exclude_train.jsonl"
    for i, row in enumerate(_jsonl(path)):
        opts = "\n".join(f"{k}. {v}" for k, v in sorted(row["options"].items()))
        rec = {"id": str(i), "messages": [
            {"role": "user", "content": [{"type": "text", "text": f"{row['question']}\n{opts}"}]},
            {"role": "assistant", "content": [{"type": "text", "text": row["answer_idx"]}]}]}
        tar.add(f"us4-train-{i}", {"json": json.dumps(rec).encode()})
        n += 1
    tar.close()
    return n


BASELINES: dict[str, Callable[[Path, Path], int]] = {
    "ct_dicom": ct_dicom, "deeplesion": deeplesion, "jpeg": jpeg_passthrough, "jpeg_bytes": jpeg_bytes_only,
    "folder_jpeg": folder_jpeg,
    "multi_image": multi_image, "text": text_only,
}
