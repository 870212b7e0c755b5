"""Synthetic raw inputs at bench scale, written in each source's real layout (no network).

Images are CT-like phantoms (a body disk, organs, bone ring, low noise) rather than random noise, so
codec speed and file sizes resemble real slices; every generator is seeded and deterministic.
"""

from __future__ import annotations

import csv
import io
import json
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

DL_HEADER = ["File_name", "Patient_index", "Study_index", "Series_ID", "Key_slice_index",
             "Measurement_coordinates", "Bounding_boxes", "Lesion_diameters_Pixel_", "Normalized_lesion_location",
             "Coarse_lesion_type", "Possibly_noisy", "Slice_range", "Spacing_mm_px_", "Image_size",
             "DICOM_windows", "Patient_gender", "Patient_age", "Train_Val_Test"]
QUESTION = ("A 45-year-old man has crushing chest pain radiating to the left arm for 30 minutes. "
            "Which of the following is the most appropriate initial test?")


def phantom_hu(size: int, seed: int) -> np.ndarray:
    """int16 HU slice: air outside, a soft-tissue body, two organs, a bone ring, noise sigma ~8 HU."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size].astype(np.float32) / size - 0.5
    r = np.hypot(xx, yy * 1.2)
    hu = np.full((size, size), -1000.0, np.float32)
    hu[r < 0.42] = 40.0
    hu[(r > 0.36) & (r < 0.40)] = 700.0
    cx, cy = rng.uniform(-0.15, 0.15, 2)
    hu[np.hypot(xx - cx, yy - cy) < 0.08] = 60.0
    hu[np.hypot(xx + 0.15, yy) < 0.1] = -800.0
    hu += rng.normal(0, 8, hu.shape).astype(np.float32)
    return hu.astype(np.int16)


def unique(blob: bytes, i: int) -> bytes:
    """`blob` made byte-unique for file `i` without touching its pixels or its decoding path: the DICOM
    preamble, a JPEG comment, a PNG text chunk. The generators encode a few images and write them under
    many names (compressing is slow); real files differ, and a build normalizes a file it has met before in
    the same task only once (build/image_memo.py), which repeated bytes would turn into a free ride."""
    tag = f"medmo-bench file {i}".encode()
    if blob[128:132] == b"DICM":
        return tag.ljust(128, b"\0") + blob[128:]
    if blob.startswith(b"\xff\xd8"):
        return blob[:2] + b"\xff\xfe" + struct.pack(">H", len(tag) + 2) + tag + blob[2:]
    if blob.startswith(b"\x89PNG\r\n\x1a\n"):
        body = b"tEXt" + b"Comment\0" + tag
        chunk = struct.pack(">I", len(body) - 4) + body + struct.pack(">I", zlib.crc32(body))
        return blob[:33] + chunk + blob[33:]  # after the signature and IHDR
    raise ValueError("not a DICOM, JPEG or PNG blob")


def grey8(size: int, seed: int) -> np.ndarray:
    return np.clip((phantom_hu(size, seed).astype(np.float32) + 160) * (255 / 400), 0, 255).astype(np.uint8)


def dicom_bytes(hu: np.ndarray, transfer_syntax: str = "explicit") -> bytes:
    """A CT slice as a DICOM file: stored = HU + 1024, RescaleIntercept -1024, window 40/400."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import (
        CTImageStorage,
        ExplicitVRLittleEndian,
        JPEG2000Lossless,
        RLELossless,
        generate_uid,
    )

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CTImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid(entropy_srcs=[str(hu.sum()), transfer_syntax])
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID, ds.Modality = CTImageStorage, meta.MediaStorageSOPInstanceUID, "CT"
    ds.Rows, ds.Columns = hu.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
    ds.RescaleSlope, ds.RescaleIntercept, ds.WindowCenter, ds.WindowWidth = 1, -1024, 40, 400
    ds.PixelData = (hu.astype(np.int32) + 1024).astype(np.int16).tobytes()
    if transfer_syntax == "rle":
        ds.compress(RLELossless)
    elif transfer_syntax == "j2k":
        ds.compress(JPEG2000Lossless)
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


def ct_dicom_folder(root: Path, n: int, transfer_syntax: str = "explicit", size: int = 512,
                    distinct: int = 16) -> Path:
    """`folder` recipe layout: ct/slice_NNNNN.dcm + annotations.jsonl (grounding, one box each).
    `distinct` phantoms are encoded once and written under many names (compressing is slow)."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "ct").mkdir(exist_ok=True)
    blobs = [dicom_bytes(phantom_hu(size, s), transfer_syntax) for s in range(min(distinct, n))]
    with open(root / "annotations.jsonl", "w") as f:
        for i in range(n):
            (root / "ct" / f"slice_{i:05d}.dcm").write_bytes(unique(blobs[i % len(blobs)], i))
            line = {"id": f"ct-{i:05d}", "images": [f"ct/slice_{i:05d}.dcm"], "split": "train",
                    "task": "grounding", "modality": "ct",
                    "boxes": [{"label": "nodule", "bbox": [200, 180, 60, 50]}], "box_format": "xywh"}
            f.write(json.dumps(line) + "\n")
    return root


def deeplesion(root: Path, n: int, size: int = 512, distinct: int = 16) -> Path:
    """DeepLesion layout: DL_info.csv (18 columns) + Images_png/<patient_study_series>/<slice>.png,
    16-bit PNG with stored = HU + 32768."""
    root.mkdir(parents=True, exist_ok=True)
    blobs = []
    for s in range(min(distinct, n)):
        buf = io.BytesIO()
        Image.fromarray((phantom_hu(size, s).astype(np.int32) + 32768).astype(np.uint16)).save(buf, "PNG")
        blobs.append(buf.getvalue())
    with open(root / "DL_info.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(DL_HEADER)
        for i in range(n):
            folder, sl = f"{i // 50 + 1:06d}_01_01", f"{i % 50 + 1:03d}"
            d = root / "Images_png" / folder
            d.mkdir(parents=True, exist_ok=True)
            (d / f"{sl}.png").write_bytes(unique(blobs[i % len(blobs)], i))
            w.writerow([f"{folder}_{sl}.png", i // 50 + 1, 1, 1, int(sl), "1, 2, 3, 4, 5, 6, 7, 8",
                        "132.977, 171.808, 165.939, 214.029", "33.8, 24.7", "0.28, 0.33, 0.54",
                        (i % 9) - 1 if i % 9 else 4, 0, "31, 43", "0.86, 0.86, 5", f"{size}, {size}",
                        "-175, 275", "F", 71, 1 + (i % 10 == 9) + (i % 10 == 8)])
    return root


def vqa_rad(root: Path, n: int, size: int = 512, distinct: int = 16, per_image: int = 1) -> Path:
    """VQA-RAD OSF layout: `VQA_RAD Dataset Public.json` + `VQA_RAD Image Folder/synpicNNNNN.jpg`
    (baseline JPEG q90). `per_image` questions name each file (the release: 2,248 on 315 images, ~7), the
    questions of one image spread over the file as the others go round; 1: every question its own file."""
    root.mkdir(parents=True, exist_ok=True)
    img_dir = root / "VQA_RAD Image Folder"
    img_dir.mkdir(exist_ok=True)
    blobs = []
    for s in range(min(distinct, n)):
        buf = io.BytesIO()
        Image.fromarray(grey8(size, s)).save(buf, "JPEG", quality=90)
        blobs.append(buf.getvalue())
    recs, files = [], -(-n // per_image)
    for f in range(files):
        (img_dir / f"synpic{f:05d}.jpg").write_bytes(unique(blobs[f % len(blobs)], f))
    for i in range(n):
        name = f"synpic{i % files:05d}.jpg"
        recs.append({"qid": i + 1, "image_name": name, "image_organ": "CHEST", "answer": "Yes",
                     "answer_type": "CLOSED", "question_type": "PRES", "question": f"Is there a nodule ({i})?",
                     "phrase_type": "freeform", "qid_linked_id": str(i + 1), "evaluation": "given"})
    (root / "VQA_RAD Dataset Public.json").write_text(json.dumps(recs))
    return root


def _grey_blobs(n: int, size: int, fmt: str, **save: int) -> list[bytes]:
    out = []
    for s in range(n):
        buf = io.BytesIO()
        Image.fromarray(grey8(size, s)).save(buf, fmt, **save)
        out.append(buf.getvalue())
    return out


def jpeg_folder(root: Path, n: int, size: int = 512, distinct: int = 16) -> Path:
    """`folder` layout of user JPEGs (baseline q90, one file per sample) with captions: img/NNNNN.jpg."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "img").mkdir(exist_ok=True)
    blobs = _grey_blobs(min(distinct, n), size, "JPEG", quality=90)
    with open(root / "annotations.jsonl", "w") as f:
        for i in range(n):
            rel = f"img/{i:05d}.jpg"
            (root / rel).write_bytes(unique(blobs[i % len(blobs)], i))
            f.write(json.dumps({"id": f"img-{i:05d}", "images": [rel], "split": "train", "task": "caption",
                                "modality": "ct", "caption": f"An axial CT slice ({i})."}) + "\n")
    return root


def multi_image_reports(root: Path, n: int, size: int = 512, distinct: int = 16) -> Path:
    """`folder` layout of two-view report studies (frontal + lateral 8-bit PNG, IU-Xray-like)."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "img").mkdir(exist_ok=True)
    blobs = _grey_blobs(min(distinct, n), size, "PNG")
    with open(root / "annotations.jsonl", "w") as f:
        for i in range(n):
            views = []
            for v in ("frontal", "lateral"):
                rel = f"img/CXR{i}_{v}.png"
                k = 2 * i + (v == "lateral")
                (root / rel).write_bytes(unique(blobs[k % len(blobs)], k))
                views.append(rel)
            f.write(json.dumps({"id": f"cxr-{i:05d}", "images": views, "split": "train", "task": "report",
                                "modality": "xray",
                                "caption": "The lungs are clear. No pleural effusion or pneumothorax. "
                                           f"Heart size is normal. Study {i}."}) + "\n")
    return root


def medqa(root: Path, n: int) -> Path:
    """MedQA archive layout: data_clean/questions/US/4_options/phrases_no_exclude_train.jsonl."""
    d = root / "data_clean" / "questions" / "US" / "4_options"
    d.mkdir(parents=True, exist_ok=True)
    opts = {"A": "Electrocardiogram", "B": "Chest X-ray", "C": "D-dimer", "D": "CT angiography"}
    with open(d / "phrases_no_exclude_train.jsonl", "w") as f:
        for i in range(n):
            f.write(json.dumps({"question": f"{QUESTION} (case {i})", "answer": "Electrocardiogram",
                                "options": opts, "meta_info": "step2&3", "answer_idx": "A",
                                "metamap_phrases": ["chest pain"]}) + "\n")
    for split in ("dev", "test"):  # the recipe requires all three files; the bench rows are train
        (d / f"phrases_no_exclude_{split}.jsonl").write_text("")
    return root
