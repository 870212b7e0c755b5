"""DeepCell TissueNet and DynamicNuclearNet: fluorescence microscopy tiles with whole-cell and nuclear
instance labels (Greenwald et al., Nat. Biotechnol. 2022; Van Valen lab).

Get it from `datasets.deepcell.org` (DeepCell API key; access "registered"). Licence: modified Apache
licence, non-commercial academic use only. Files read, one per split (`train`, `val`, `test`):
`tissuenet_v1.1_{train,val,test}.npz` (at the top of `tissuenet_v1.1.zip`) or `{train,val,test}.npz`
(deepcell-tf's zips; `DynamicNuclearNet-segmentation-v1_0.zip` holds them under a folder of that name),
unpacked or left in the download zips (each split is then copied to a temporary file to be read; torch_em's
and other public loaders unzip these exact names). Keys: `X` float `(N, H, W, C)` and `y` int `(N, H, W, C)`:
- TissueNet: `X` channel 0 = nuclear stain, 1 = membrane/cytoplasm stain; `y` channel 0 = WHOLE-CELL,
  channel 1 = NUCLEAR (the swap is intentional upstream; one public script gets it wrong);
- DynamicNuclearNet: one channel each, nuclear only.
Samples: one detection sample per tile, boxes from the instance ids of the chosen target (`target=
whole_cell`, the TissueNet default, or `target=nuclear`); TissueNet tiles are stored as RGB with the
membrane stain in green and the nuclear stain in blue, each channel scaled by its own 0.5-99.5
percentiles; DynamicNuclearNet tiles are grey. Splits are the release's files. Tiles with more than
`max_boxes` (default 100) cells are rejected as `too_many_boxes`, tiles without a cell as `no_objects`.
Arrays are streamed tile by tile (a TissueNet train split is ~5 GB). The `meta` table (`meta.npy`, row 0
= column names) is an object array, which `np.save` writes as a pickle: it is read without unpickling
(`safe_pickle.load_npy_objects` admits only numpy's own array pickle of plain values), so nothing in the
file runs; a table of another shape, or one that does not line up with the tiles (the test split's is
known to be 3 rows off), leaves `experiment`/`specimen` empty.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO

import numpy as np

from medmo_data.families import cells
from medmo_data.formats.archive import copy_member, open_zip
from medmo_data.formats.safe_pickle import load_npy_objects
from medmo_data.formats.tables import MAX_METADATA_BYTES
from medmo_data.recipe import ImageSource, RawSample, Reject, SourceError, SourceInfo

INFO = SourceInfo(
    name="deepcell", title="DeepCell TissueNet / DynamicNuclearNet", stages=(2, 4), tasks=("detection",),
    modality="microscopy", access="registered", license="DeepCell-Modified-Apache-2.0-NonCommercial",
    homepage="https://datasets.deepcell.org",
    citation="Greenwald et al., Whole-cell segmentation of tissue images with human-level performance using "
             "large-scale data annotation and deep learning, Nat. Biotechnol. 2022",
    notes="stage 4 per MedMO's grpo_vlm.py list (deepcell_bbox_grpo; the name is fused with the next one by a "
          "missing comma there)",
)
SPLIT_FILE = re.compile(r"(?:^|_)(train|val|test)\.npz$")
TARGETS = {"whole_cell": (0, "cell"), "nuclear": (1, "nucleus")}
# A split .npz inside a download zip is copied out to be read (TMPDIR needs room for the largest one; the
# TissueNet train split is the big one); a member decompressing past this stops the build.
MAX_NPZ_BYTES = 64 << 30


@dataclass(frozen=True)
class SplitFile:
    """One split's .npz: a file, or a member of a download zip (`member` set)."""
    split: str
    rel: str  # path under the input folder (the zip's folder joined with the member name, if zipped)
    path: Path
    member: str = ""

    @property
    def label(self) -> str:
        return f"{self.path}:{self.member}" if self.member else str(self.path)

    @contextmanager
    def open(self) -> Iterator[Path | IO[bytes]]:
        """The .npz to read: the file itself, or the member copied to a temporary file (an .npz needs random
        access, and X and y are read side by side); the copy is removed when done."""
        if not self.member:
            yield self.path
            return
        with open_zip(self.path) as zf, copy_member(zf, self.member, str(self.path), MAX_NPZ_BYTES) as copy:
            yield copy


def split_files(root: Path) -> list[SplitFile]:
    """Every split .npz under root, unpacked or inside a download zip (`tissuenet_v1.1.zip`,
    `DynamicNuclearNet-segmentation-v1_0.zip`); a zip member whose file is also unpacked is read once."""
    found = {}
    for p in sorted(root.rglob("*.npz")):
        if m := SPLIT_FILE.search(p.name):
            found[p.relative_to(root).as_posix()] = SplitFile(m.group(1), p.relative_to(root).as_posix(), p)
    unpacked = {PurePosixPath(r).name for r in found}
    for z in sorted(root.rglob("*.zip")):
        with open_zip(z) as zf:
            names = zf.namelist()
        folder = z.parent.relative_to(root).as_posix()
        for name in names:
            base = PurePosixPath(name).name
            if (m := SPLIT_FILE.search(base)) and base not in unpacked and not name.startswith("__MACOSX/"):
                rel = name if folder == "." else f"{folder}/{name}"
                found.setdefault(rel, SplitFile(m.group(1), rel, z, name))
    if not found:
        raise SourceError(f"{root}: no {{train,val,test}}.npz (TissueNet / DynamicNuclearNet), unpacked or in "
                          f"a download zip, found")
    return [found[r] for r in sorted(found)]


def _meta_rows(npz: Path | IO[bytes], label: str, n: int) -> list[dict[str, str]]:
    """Per-tile `experiment`/`specimen` from the `meta` table (row 0 = column names), never unpickled."""
    with cells.open_npz(npz, label) as zf:
        if "meta.npy" not in zf.namelist():
            return [{} for _ in range(n)]
        with zf.open("meta.npy") as member:
            data = member.read(MAX_METADATA_BYTES + 1)
    if len(data) > MAX_METADATA_BYTES:
        raise SourceError(f"{label}:meta.npy: over {MAX_METADATA_BYTES} bytes")
    table = load_npy_objects(data, f"{label}:meta.npy")
    if table.ndim != 2 or len(table) < 1:
        return [{} for _ in range(n)]
    header = [str(c) for c in table[0]]
    rows = [dict(zip(header, (str(v) for v in r), strict=False)) for r in table[1:]]
    return rows if len(rows) == n else [{} for _ in range(n)]  # test meta is known to be off by 3 rows


def records(root: Path, options: dict[str, str]) -> Iterator[RawSample | Reject]:
    max_boxes = cells.max_boxes_option(options)
    files = split_files(root)
    shared = {f.split for f in files if sum(g.split == f.split for g in files) > 1}
    for sf in files:
        # TissueNet and DynamicNuclearNet side by side: ids name the file, or both would be `train-00000`
        prefix = sf.rel.removesuffix(".npz") if sf.split in shared else sf.split
        with sf.open() as npz:
            yield from _split_records(sf, npz, options, max_boxes, prefix)


def _split_records(sf: SplitFile, npz: Path | IO[bytes], options: dict[str, str], max_boxes: int,
                   prefix: str) -> Iterator[RawSample | Reject]:
    split, where = sf.split, sf.label
    xs, ys = cells.npz_shape(npz, "X", where), cells.npz_shape(npz, "y", where)
    if xs is None or ys is None:
        raise SourceError(f"{where}: needs arrays X and y")
    (xshape, _), (yshape, _) = xs, ys
    if len(xshape) != 4 or len(yshape) != 4 or xshape[:3] != yshape[:3]:
        raise SourceError(f"{where}: X {xshape} and y {yshape} must both be (N, H, W, C) over the same tiles")
    tissuenet = yshape[3] == 2
    target = options.get("target", "whole_cell" if tissuenet else "nuclear")
    if target not in TARGETS:
        raise SourceError(f"option target must be one of {sorted(TARGETS)}, got {target!r}")
    channel, label = TARGETS[target]
    if not tissuenet:
        if target != "nuclear":
            raise SourceError(f"{where}: y has {yshape[3]} channel(s) (DynamicNuclearNet): only target=nuclear")
        channel = 0
    metas = _meta_rows(npz, where, xshape[0])
    what = ("fluorescence microscopy image (green: membrane/cytoplasm stain, blue: nuclear stain)"
            if xshape[3] >= 2 else "fluorescence microscopy image of stained nuclei")
    prompt = cells.detection_prompt(label, what)
    tiles = zip(cells.iter_npy_rows(npz, "X", where), cells.iter_npy_rows(npz, "y", where), strict=True)
    for i, (x, y) in enumerate(tiles):
        if xshape[3] >= 2:
            src = ImageSource(array=cells.composite([None, x[:, :, 1], x[:, :, 0]]))
        else:
            src = ImageSource(array=np.array(x[:, :, 0]), normalize="percentile")
        objs = cells.mask_objects(np.asarray(y[:, :, channel]), label)
        meta = {"file": PurePosixPath(sf.rel).name, "tile": i, "target": target,
                "experiment": metas[i].get("experiment", ""), "specimen": metas[i].get("specimen", "")}
        yield cells.detection_sample(f"{prefix}-{i:05d}", split, [src], objs, prompt, max_boxes, meta)
