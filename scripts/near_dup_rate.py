"""How often does `mix`'s near-duplicate image rule exclude a *different* image? (issue #13.7)

    python -m scripts.near_dup_rate [--patients 150] [--print strided]

Decontamination used to drop a training image as "near" a test image when their 64-bit dHashes (9x8 grey)
are within 4 bits. This script measures that rule ("old"), and the narrowed rule `mix` uses now ("new":
the dHash match confirmed by the 16x16 grey thumbnails, mean absolute difference <= `CONFIRM` grey
levels), on:

- real medical images shipped offline in the pydicom and nibabel wheels (CT, MR, NM, ultrasound DICOMs;
  the slices of an EPI brain series and of an anatomical MR volume), compared across acquisitions
  (different files), and slice against slice inside one volume (same patient, other level);
- generated phantoms of different "patients" at the same anatomical level: abdominal CT slices at the
  level of liver, kidneys and spine (body habitus, organ size and position, contrast, fat, bowel gas
  and noise drawn per patient, HU windowed like a build does) and chest radiographs (lung fields,
  heart, diaphragm, ribs, clavicles, exposure);
- copies that must still be caught: every image resized to 0.5x, re-encoded as JPEG quality 75, and
  both (what a re-hosting collection does to a benchmark image); real images from 64 px up (halving a
  41 x 33 MR slice leaves too few pixels for either rule), and one real pair: pydicom ships the same
  ultrasound frame as a 640 x 480 JPEG 2000 and a 320 x 240 RGB file.

Prints one table (pairs, how many each rule flags, rate). No network; numbers depend only on the
seed and the wheel versions.

`--print strided` measures the same rules with a cheaper print that `mix` does NOT use: dHash and thumbnail
from every k-th pixel of every k-th row (k = the version 2 reduction factor) instead of the k x k box means.
It skips the full-resolution reduction, the largest cost a JPEG pass-through build adds (issue 19 item 3,
docs/scale.md); this table is what that saving would cost decontamination.
"""

from __future__ import annotations

import io
import itertools
import sys
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from medmo_data.mix import fingerprint
from medmo_data.mix.decontam import DecontamOptions
from medmo_data.mix.fingerprint import image_prints, thumb_distance
from medmo_data.pixels.decode import pixel_view

CONFIRM = DecontamOptions().image_thumb_distance
Print = tuple[int, bytes]


def strided_prints(img: Image.Image) -> Print:
    """(dhash64, thumb16) as version 2 computes them, but from a strided subsample (the centre pixel of each
    k x k block) in place of the k x k box reduction: reads 1/k^2 of the pixels. A diagnostic, not a
    fingerprint version: `--print strided` and the bench's `fingerprints` row measure it."""
    grey = img if img.mode == "L" else img.convert("L")
    w, h = grey.size
    k = min(w, h) // fingerprint.REDUCED_SIDE
    if k < 2:  # version 2 does not reduce such an image either
        return image_prints(grey)
    sub = Image.fromarray(np.ascontiguousarray(pixel_view(grey)[k // 2::k, k // 2::k]))  # no full-size copy
    sub.load()
    box = (0.0, 0.0, float(sub.width), float(sub.height))
    grid = fingerprint._box_resize(sub.im, (9, 8), box)
    return fingerprint._dhash_bits(grid), fingerprint._box_resize(sub.im, (fingerprint.THUMB_SIDE,) * 2, box)


def _u8(a: np.ndarray, lo: float | None = None, hi: float | None = None) -> np.ndarray:
    a = a.astype(np.float32)
    lo = np.percentile(a, 0.5) if lo is None else lo
    hi = np.percentile(a, 99.5) if hi is None else hi
    return (np.clip((a - lo) / max(hi - lo, 1e-6), 0, 1) * 255).round().astype(np.uint8)


# ---- real images -----------------------------------------------------------------------------------

DICOMS = ["693_J2KI.dcm", "CT_small.dcm", "MR_small.dcm", "examples_overlay.dcm", "JPEG2000.dcm",
          "examples_jpeg2k.dcm", "examples_rgb_color.dcm", "examples_palette.dcm", "ExplVR_BigEnd.dcm"]


def real_images() -> dict[str, list[np.ndarray]]:
    """Grey uint8 images per acquisition: single DICOM images, the ultrasound cine's frames, and the
    axial slices of nibabel's EPI series and anatomical volume (slices with tissue only)."""
    import nibabel as nib
    import pydicom
    from pydicom.data import get_testdata_file

    out: dict[str, list[np.ndarray]] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name in DICOMS:
            ds = pydicom.dcmread(get_testdata_file(name))
            a = ds.pixel_array
            if ds.PhotometricInterpretation == "PALETTE COLOR":
                from pydicom.pixels import apply_color_lut
                a = apply_color_lut(a, ds)
            if a.ndim == 3:  # colour: grey as the index does (PIL "L")
                a = np.asarray(Image.fromarray(_u8(a, 0, a.max() or 1)).convert("L"))
            out[f"{ds.Modality} {name}"] = [_u8(a)]
        ds = pydicom.dcmread(get_testdata_file("examples_ybr_color.dcm"))
        frames = pydicom.pixels.convert_color_space(ds.pixel_array, "YBR_FULL_422", "RGB")
        out["US cine examples_ybr_color.dcm"] = [np.asarray(Image.fromarray(f).convert("L")) for f in frames]
    data = Path(nib.__file__).parent / "tests" / "data"
    for name in ("example4d.nii.gz", "anatomical.nii"):
        vol = np.asanyarray(nib.load(data / name).dataobj).astype(np.float32)
        vol = vol[..., 0] if vol.ndim == 4 else vol
        lo, hi = np.percentile(vol, [0.5, 99.5])
        sl = [_u8(vol[:, :, z].T[::-1], lo, hi) for z in range(vol.shape[2])]
        out[f"MR volume {name}"] = [s for s in sl if (s > 20).mean() > 0.05]
    return out


# ---- phantoms ---------------------------------------------------------------------------------------

def _ellipse(yy: np.ndarray, xx: np.ndarray, cy: float, cx: float, ry: float, rx: float,
             ang: float = 0.0) -> np.ndarray:
    c, s = np.cos(ang), np.sin(ang)
    y, x = yy - cy, xx - cx
    return ((x * c + y * s) / rx) ** 2 + ((-x * s + y * c) / ry) ** 2 <= 1.0


def ct_phantom(rng: np.random.Generator, size: int = 512) -> np.ndarray:
    """One patient's axial abdominal CT slice at the level of liver, spleen, kidneys and L1, windowed
    (W 400, L 40) to uint8. Anatomy, habitus, contrast phase and noise vary per patient."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    u = lambda a, b: rng.uniform(a, b) * size  # noqa: E731 - fractions of the field of view
    hu = np.full((size, size), -1000.0, np.float32)
    cy, cx = u(0.45, 0.51), u(0.47, 0.53)
    ry, rx, ang = u(0.26, 0.33), u(0.33, 0.43), rng.uniform(-0.06, 0.06)
    top = cy + ry + u(0.01, 0.03)
    hu[(yy > top) & (yy < top + u(0.015, 0.03))] = 150.0  # table
    hu[_ellipse(yy, xx, cy, cx, ry, rx, ang)] = -100.0 + rng.normal(0, 10)  # subcutaneous fat
    fat = rng.uniform(0.03, 0.09) * size
    hu[_ellipse(yy, xx, cy, cx, ry - fat, rx - fat, ang)] = 45.0 + rng.normal(0, 8)  # muscle wall
    inner = _ellipse(yy, xx, cy + 0.01 * size, cx, ry - fat - u(0.015, 0.03), rx - fat - u(0.015, 0.03), ang)
    hu[inner] = -80.0 + rng.normal(0, 15)  # visceral fat
    phase = rng.uniform(0, 1)  # contrast: unenhanced .. portal venous
    organs = [  # (cy, cx, ry, rx, HU): liver (image left = patient right), spleen, kidneys, aorta, IVC
        (cy - u(0.02, 0.08), cx - u(0.14, 0.2), u(0.1, 0.16), u(0.09, 0.14), 55 + 60 * phase),
        (cy - u(0.0, 0.06), cx + u(0.18, 0.24), u(0.05, 0.08), u(0.03, 0.05), 45 + 70 * phase),
        (cy + u(0.08, 0.12), cx - u(0.1, 0.14), u(0.035, 0.05), u(0.025, 0.04), 30 + 150 * phase),
        (cy + u(0.08, 0.12), cx + u(0.1, 0.14), u(0.035, 0.05), u(0.025, 0.04), 30 + 150 * phase),
        (cy + u(0.05, 0.08), cx + u(0.01, 0.03), u(0.012, 0.018), u(0.012, 0.018), 40 + 200 * phase),
        (cy + u(0.03, 0.06), cx - u(0.03, 0.05), u(0.012, 0.02), u(0.015, 0.025), 35 + 120 * phase),
    ]
    for oy, ox, oy_r, ox_r, v in organs:
        hu[_ellipse(yy, xx, oy, ox, oy_r, ox_r, rng.uniform(-0.4, 0.4)) & inner] = v
    for _ in range(rng.integers(4, 14)):  # bowel loops: gas or fluid
        by, bx = cy + u(-0.12, 0.06), cx + u(-0.1, 0.15)
        hu[_ellipse(yy, xx, by, bx, u(0.01, 0.035), u(0.01, 0.035)) & inner] = rng.choice([-900.0, 10.0, 80.0])
    vr = u(0.04, 0.052)
    vy = cy + ry - fat - vr * rng.uniform(3.3, 3.8)  # vertebral body, canal, posterior elements
    hu[_ellipse(yy, xx, vy, cx, vr, vr * 1.1)] = 700.0
    hu[_ellipse(yy, xx, vy, cx, vr * 0.8, vr * 0.9)] = 250.0
    hu[_ellipse(yy, xx, vy + vr * 1.5, cx, vr * 0.4, vr * 0.4)] = 10.0
    hu[_ellipse(yy, xx, vy + vr * 2.3, cx, vr * 0.6, vr * 0.25)] = 600.0
    for side in (-1, 1):  # psoas
        hu[_ellipse(yy, xx, vy, cx + side * vr * 1.9, vr * 0.8, vr * 0.6)] = 50.0
    hu += rng.normal(0, rng.uniform(8, 20), hu.shape).astype(np.float32)
    return _u8(hu, 40 - 200, 40 + 200)


def cxr_phantom(rng: np.random.Generator, size: int = 512) -> np.ndarray:
    """One patient's PA chest radiograph (bright = attenuating): thorax, lung fields, heart, domes of the
    diaphragm, ribs, clavicles, spine; size, position, inspiration, heart size and exposure vary."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    u = lambda a, b: rng.uniform(a, b) * size  # noqa: E731
    img = np.full((size, size), 0.08, np.float32)
    cx, cy = u(0.47, 0.53), u(0.5, 0.56)
    img[_ellipse(yy, xx, cy, cx, u(0.48, 0.56), u(0.4, 0.47))] = 0.62
    lung_ry, lung_rx, gap = u(0.27, 0.34), u(0.14, 0.19), u(0.1, 0.14)
    lungs = np.zeros_like(img, bool)
    for side in (-1, 1):
        lungs |= _ellipse(yy, xx, cy - u(0.04, 0.1), cx + side * (gap + lung_rx * 0.8), lung_ry, lung_rx,
                          side * rng.uniform(0.05, 0.2))
    img[lungs] = 0.22 + rng.uniform(-0.05, 0.05)
    img[_ellipse(yy, xx, cy + u(0.06, 0.12), cx + u(0.02, 0.07), u(0.1, 0.14), u(0.11, 0.17))] = 0.7
    img[(np.abs(xx - cx) < u(0.03, 0.045))] += 0.12  # spine / mediastinum
    dome = cy + u(0.2, 0.28)
    img[yy > dome + 0.002 * (xx - cx) ** 2 / size * rng.uniform(2, 4)] = 0.66  # diaphragm and abdomen
    for k in range(rng.integers(8, 11)):  # posterior ribs: arcs over the lung fields
        ry0 = cy - u(0.3, 0.34) + k * u(0.055, 0.065)
        arc = np.abs(yy - (ry0 + 0.0025 * (xx - cx) ** 2 / size * 3)) < u(0.008, 0.014)
        img[arc & lungs] += 0.12
    for side in (-1, 1):  # clavicles
        img[np.abs(yy - (cy - u(0.3, 0.36) + side * 0.15 * (xx - cx))) < 0.01 * size] += 0.1
    img = img * rng.uniform(0.85, 1.15) + rng.normal(0, 0.025, img.shape).astype(np.float32)
    return _u8(img, 0.0, 1.0)


# ---- copies and measurement -------------------------------------------------------------------------

def copies(a: np.ndarray) -> dict[str, Image.Image]:
    """What re-hosting does to an image: half size, JPEG q75, both."""
    img = Image.fromarray(a)
    half = img.resize((max(1, img.width // 2), max(1, img.height // 2)), Image.Resampling.LANCZOS)

    def jpeg(x: Image.Image) -> Image.Image:
        buf = io.BytesIO()
        x.save(buf, "JPEG", quality=75)
        return Image.open(io.BytesIO(buf.getvalue())).convert("L")

    return {"resized 0.5x": half, "JPEG q75": jpeg(img), "0.5x + JPEG q75": jpeg(half)}


def near(fa: Print, fb: Print, d64: int = 4, mad: float = CONFIRM) -> tuple[bool, bool]:
    """(old rule flags the pair, new rule flags it)."""
    old = ((fa[0] ^ fb[0]) & (2**64 - 1)).bit_count() <= d64
    return old, old and thumb_distance(fa[1], fb[1]) <= mad


def _count(pairs: list[tuple[Print, Print]]) -> tuple[int, int, int, str]:
    """(pairs, old flags, new flags, range of the thumbnail distance over the old rule's flags)."""
    flags = [near(a, b) for a, b in pairs]
    mads = [thumb_distance(a[1], b[1]) for (a, b), (old, _) in zip(pairs, flags, strict=True) if old]
    span = f"{min(mads):.2f}-{max(mads):.2f}" if mads else "-"
    return len(pairs), sum(o for o, _ in flags), sum(n for _, n in flags), span


SAME_FRAME = ("US examples_jpeg2k.dcm", "US examples_rgb_color.dcm")  # one ultrasound frame, shipped twice
KINDS = ("resized 0.5x", "JPEG q75", "0.5x + JPEG q75")


def measure(patients: int = 150, seed: int = 0,
            image_prints: Callable[[Image.Image], Print] = image_prints) -> list[tuple[str, int, int, int, str]]:
    """Rows (what, pairs, flagged by the old rule, flagged by the new rule, their thumbnail distances);
    `image_prints`: the print under test (version 2's by default)."""
    fp = lambda a: image_prints(Image.fromarray(a))  # noqa: E731
    rows = []
    images = real_images()
    real = {k: [fp(a) for a in v] for k, v in images.items()}
    mids = [v[len(v) // 2] for k, v in real.items() if k != SAME_FRAME[1]]
    rows.append(("real: different acquisitions (one image each)", *_count(list(itertools.combinations(mids, 2)))))
    within = [(v[i], v[j]) for v in real.values() for i, j in itertools.combinations(range(len(v)), 2) if j - i >= 3]
    rows.append(("real: same series, slices/frames >= 3 apart", *_count(within)))
    adj = [(v[i], v[i + 1]) for v in real.values() for i in range(len(v) - 1)]
    rows.append(("real: same series, adjacent slices/frames", *_count(adj)))
    rows.append(("real copy: one US frame as 640x480 J2K and 320x240 RGB",
                 *_count([(real[SAME_FRAME[0]][0], real[SAME_FRAME[1]][0])])))
    usable = [a for v in images.values() for a in v if min(a.shape) >= 64]
    for kind in KINDS:
        rows.append((f"real copy: {kind} ({len(usable)} images >= 64 px)",
                     *_count([(fp(a), image_prints(copies(a)[kind])) for a in usable])))
    rng = np.random.default_rng(seed)
    for name, gen in (("abdominal CT", ct_phantom), ("chest X-ray", cxr_phantom)):
        imgs = [gen(rng) for _ in range(patients)]
        fps = [fp(a) for a in imgs]
        rows.append((f"phantom {name}: different patients, same level", *_count(list(itertools.combinations(fps, 2)))))
        for kind in KINDS:
            cp = [(f, image_prints(copies(a)[kind])) for a, f in zip(imgs[:50], fps[:50], strict=True)]
            rows.append((f"phantom {name} copy: {kind}", *_count(cp)))
    return rows


def main(argv: list[str]) -> None:
    import os

    patients = int(argv[argv.index("--patients") + 1]) if "--patients" in argv else 150
    kind = argv[argv.index("--print") + 1] if "--print" in argv else "v2"
    prints = {"v2": image_prints, "strided": strided_prints}.get(kind)
    if prints is None:
        raise SystemExit(f"--print {kind!r}: must be v2 or strided")
    print(f"uptime: {os.popen('uptime').read().strip()}")
    print(f"print: {'version 2 (box reduction)' if kind == 'v2' else 'strided subsample (diagnostic, not used by mix)'}")
    print(f"rules: old = 64-bit dHash within 4 bits; new = old and 16x16 thumbnails within {CONFIRM} grey levels")
    print(f"{'pairs':<62} {'n':>7} {'old':>7} {'rate':>7} {'new':>7} {'rate':>7}  thumb distance of old flags")
    for what, n, old, new, span in measure(patients, image_prints=prints):
        print(f"{what:<62} {n:>7} {old:>7} {old / n:>7.2%} {new:>7} {new / n:>7.2%}  {span}")


if __name__ == "__main__":
    main(sys.argv[1:])
