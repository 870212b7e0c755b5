"""Cell Tracking Challenge (CTC) training sequences: time-lapse microscopy with gold-standard instance
masks for some frames (Maška et al., Nat. Methods 2023; Ulman et al., Nat. Methods 2017).

Get the training datasets from celltrackingchallenge.net (one zip per dataset, e.g. `Fluo-N2DH-SIM+`,
`PhC-C2DH-U373`); CTC terms of use (text UNVERIFIED), cite the papers. Layout read (the input is one
dataset folder, a folder of them, or a folder of the download zips, read in place: `Fluo-N2DH-SIM+.zip`
holds `Fluo-N2DH-SIM+/...`): `<Dataset>/01/t000.tif` raw frames (16-bit TIFF, 3 or 4 digits),
`<Dataset>/01_GT/SEG/man_seg000.tif` gold instance masks (16-bit, 0 = background) for SOME frames, and
for 3-D sets `man_seg_TTT_ZZZ.tif` (one annotated slice z of frame t). `02/`, `02_GT/` = second sequence.
Samples: one detection sample per frame that HAS a segmentation mask (frames without one are never read);
boxes from the SEG ids (touching cells stay apart); raw frames scaled to 8 bit by their own 0.5-99.5
percentiles. `TRA` markers are not used: they are track points, often not the full cell extent.
`truth=silver` reads `01_ST/SEG` instead. Gold SEG masks of some datasets annotate only part of the
cells of a frame; such frames teach under-detection, so prefer `truth=silver` for those datasets.
Splits: all frames are `train` (the challenge's test sequences ship without ground truth); `holdout=02`
moves every frame of sequence 02 to `val` (frames of one sequence never straddle splits). More than
`max_boxes` (default 100) cells: `too_many_boxes`; an empty mask: `no_objects`; full 3-D masks:
`volume_mask` (not sliced here).
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

import numpy as np

from medmo_data.families import cells
from medmo_data.formats.archive import ReleaseTree
from medmo_data.formats.tables import FileRefused
from medmo_data.recipe import ImageSource, RawSample, Reject, SourceError, SourceInfo

INFO = SourceInfo(
    name="ctc", title="Cell Tracking Challenge", stages=(2, 4), tasks=("detection",), modality="microscopy",
    access="open", license="CTC-Terms-of-Use", homepage="https://celltrackingchallenge.net",
    citation="Maška et al., The Cell Tracking Challenge: 10 years of objective benchmarking, Nat. Methods 2023",
)
MASK = re.compile(r"^man_seg_?(\d+)(?:_(\d+))?\.tif$")
KIND = {"Fluo": "fluorescence", "PhC": "phase-contrast", "DIC": "differential interference contrast",
        "BF": "bright-field"}


SEG_MASK = re.compile(r"^(?:(.*)/)?([^/]+)_(GT|ST)/SEG/(man_seg[^/]*\.tif)$")  # <Dataset>/01_GT/SEG/<mask>


def release(root: Path) -> ReleaseTree:
    """The datasets unpacked under `root` (or `root` one dataset folder), else the download zips beside each
    other in `root`, read in place (`Fluo-N2DH-SIM+.zip` holds `Fluo-N2DH-SIM+/01/t000.tif`, ...)."""
    if any(p.is_dir() for p in root.rglob("SEG")):
        return ReleaseTree(root, "")
    return ReleaseTree.in_zips(root, ("*.zip",), flat=False)


def seg_masks(tree: ReleaseTree, root: Path, truth: str) -> list[tuple[str, str, str, str]]:
    """(dataset, sequence, folder of the dataset, mask's name in the tree) of every `<seq>_GT/SEG/man_seg*.tif`
    (`_ST` for silver truth), sorted by folder then name."""
    suffix = "GT" if truth == "gold" else "ST"
    found = []
    for name in tree.names():
        m = SEG_MASK.match(name)
        if m and m.group(3) == suffix:
            folder = m.group(1) or ""
            found.append((PurePosixPath(folder).name or root.name, m.group(2), folder, name))
    if not found:
        raise SourceError(f"{root}: no <sequence>_{suffix}/SEG folder (Cell Tracking Challenge layout, unpacked "
                          "or in the download zips)")
    return found


def _frame_source(raw: Path | bytes, name: str, z: int | None, mask_shape: tuple[int, ...]) -> ImageSource | str:
    """The raw frame (slice z of a 3-D frame; a file, or a zip member's bytes) as an ImageSource, or a reason
    why it cannot be used."""
    import tifffile

    try:
        with tifffile.TiffFile(io.BytesIO(raw) if isinstance(raw, bytes) else raw) as tif:
            if z is None:
                shape = tif.pages[0].shape
                if len(tif.pages) > 1 or tuple(shape) != tuple(mask_shape):
                    return f"raw frame {name} pages {len(tif.pages)} x {shape} vs mask {mask_shape}"
                if isinstance(raw, bytes):
                    return ImageSource(data=raw, normalize="percentile")
                return ImageSource(path=str(raw), normalize="percentile")
            if z >= len(tif.pages):
                return f"slice {z} outside the {len(tif.pages)} pages of {name}"
            plane = tif.pages[z].asarray()
    except Exception as exc:  # noqa: BLE001 - tifffile raises many types on bad files
        return f"unreadable raw frame {name}: {exc}"
    if plane.shape != mask_shape:
        return f"raw slice {plane.shape} vs mask {mask_shape}"
    return ImageSource(array=np.ascontiguousarray(plane), normalize="percentile")


def records(root: Path, options: dict[str, str]) -> Iterator[RawSample | Reject]:
    max_boxes = cells.max_boxes_option(options)
    truth = options.get("truth", "gold")
    if truth not in ("gold", "silver"):
        raise SourceError(f"option truth must be 'gold' or 'silver', got {truth!r}")
    holdout = options.get("holdout", "")
    tree = release(root)
    zipped = bool(tree.members)
    for dataset, seq, folder, mask_rel in seg_masks(tree, root, truth):
        kind = next((v for k, v in KIND.items() if dataset.startswith(k)), "light")
        prompt = cells.detection_prompt("cell", f"{kind} microscopy frame")
        split = "val" if holdout and seq == holdout else "train"
        name = PurePosixPath(mask_rel).name
        m = MASK.match(name)
        sid = f"{dataset}/{seq}/{name.removesuffix('.tif')}"
        if not m:
            yield Reject(sid, "bad_filename", f"{name} is not man_segT.tif or man_seg_T_Z.tif")
            continue
        t, z = m.group(1), (int(m.group(2)) if m.group(2) else None)
        raw_rel = f"{folder}/{seq}/t{t}.tif" if folder else f"{seq}/t{t}.tif"
        if not tree.exists(raw_rel):
            yield Reject(sid, "missing_image", f"{tree.where(raw_rel)} does not exist")
            continue
        try:
            mask = cells.load_mask_2d(Path(tree.where(mask_rel)), sid, "volume_mask", tree.read_bytes(mask_rel))
            raw: Path | bytes = tree.read_bytes(raw_rel) if zipped else tree.dir / raw_rel
        except FileRefused as exc:  # a FIFO or device, or over the cap: this frame only
            yield Reject(sid, exc.reason, str(exc))
            continue
        if isinstance(mask, Reject):
            yield mask
            continue
        src = _frame_source(raw, f"t{t}.tif", z, mask.shape)
        if isinstance(src, str):
            yield Reject(sid, "shape_mismatch", src)
            continue
        meta = {"dataset": dataset, "sequence": seq, "frame": int(t), "slice": -1 if z is None else z,
                "truth": truth}
        yield cells.detection_sample(sid, split, [src], cells.mask_objects(mask, "cell"), prompt, max_boxes,
                                     meta)
