"""IU-Xray (Indiana University Chest X-ray Collection, OpenI; Demner-Fushman et al., JAMIA 2016): ~3,955
chest X-ray reports with frontal and lateral views. Report generation (findings + impression).

Three layouts circulate; the first one found is read (the others' files are ignored):
1. OpenI original (https://openi.nlm.nih.gov): `ecgen-radiology/<n>.xml` (from `NLMCXR_reports.tgz`) and the
   PNGs `<parentImage id>.png` (from `NLMCXR_png.tgz`, in `NLMCXR_png/`, `images/` or the root). Report
   sections from `AbstractText Label=FINDINGS|IMPRESSION`, the images from every `<parentImage>`. Either
   archive may stay packed: it is read in place, the reports whole, the PNGs streamed once (members are
   matched by base name; a PNG that streams by before its report's turn waits in a temporary folder, so
   the samples are the unpacked build's, byte for byte).
2. Kaggle `raddar/chest-xrays-indiana-university` (what MedMO's images came from): `indiana_reports.csv`
   (`uid, MeSH, Problems, image, indication, comparison, findings, impression`) + `indiana_projections.csv`
   (`uid, filename, projection`) + `images/images_normalized/<filename>`; frontal views first.
3. R2Gen `annotation.json` (`{"train": [...], "val": [...], "test": [...]}`; entries `id, report,
   image_path, split`, exactly two images `<id>/0.png`, `<id>/1.png` under `images/`). The report is
   findings + impression already merged. One public copy keeps the test list under a key of four spaces:
   any whitespace-only key is read as `test`.
Splits: R2Gen's own splits (MedEvalKit's IU_XRAY test is the R2Gen test list). With layouts 1 and 2, an
`annotation.json` beside them assigns each report (`CXR<uid>`) its R2Gen split, reports absent from it are
train; without one, a stable hash of the report id gives ~70/10/20 (say so when comparing to benchmarks).
Targets: findings, a blank line, impression; an empty findings (or impression) section is left out and a
report with neither is rejected (`empty_report`). `XXXX` de-identification tokens are kept as they are;
R2Gen-style lower-casing belongs in training, not here. Licence: OpenI terms, CC BY-NC-ND 4.0 as commonly
cited (UNVERIFIED on the files).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Any

from medmo_data.families.reports import hash_split, join_report, openi_report, report_messages, tidy
from medmo_data.formats.tables import (
    MAX_RECORD_FILE_BYTES,
    FileRefused,
    clean,
    iter_csv,
    load_json,
    read_small,
)
from medmo_data.formats.tar_stream import Missing, iter_members, join_archives
from medmo_data.recipe import ImageSource, RawSample, Reject, SourceError, SourceInfo

INFO = SourceInfo(
    name="iu_xray", title="IU-Xray (Indiana University Chest X-ray, OpenI)", stages=(2,), tasks=("report",),
    modality="xray", access="open", license="CC-BY-NC-ND-4.0 (OpenI terms; UNVERIFIED)",
    homepage="https://openi.nlm.nih.gov/faq",
    citation="Demner-Fushman et al., Preparing a collection of radiology examinations for distribution and "
             "retrieval, JAMIA 2016",
    image_format="png", images_per_sample=2,
)
R2GEN_SPLITS = {"train": "train", "val": "val", "test": "test"}


def _r2gen_split_map(path: Path) -> dict[str, str]:
    """CXR<n> -> our split, from an R2Gen annotation.json (ids look like CXR2384_IM-0942[-0001])."""
    out: dict[str, str] = {}
    for key, entries in load_json(path).items():
        split = R2GEN_SPLITS.get(key.strip() or "test")
        for e in entries if split and isinstance(entries, list) else []:
            out[str(e.get("id", "")).split("_", 1)[0]] = split
    return out


def _split_for(uid: str, splits: dict[str, str] | None) -> str:
    if splits is None:
        return hash_split(uid, val=0.1, test=0.2)
    return splits.get(uid, "train")


def _sample(sid: str, split: str, findings: str, impression: str, report: str, images: list[ImageSource],
            context: str, meta: dict[str, Any]) -> RawSample | Reject:
    if not report:
        return Reject(sid, "empty_report", "findings and impression are both empty")
    if not images:
        return Reject(sid, "no_image", "the report lists no image")
    return RawSample(id=sid, split=split, task="report", images=images,
                     messages=report_messages(report, sid, len(images), context),
                     target={"report": report, "findings": findings, "impression": impression}, meta=meta)


def _indication(text: str) -> str:
    return f"Indication: {text}" if text else ""


def _report_order(name: str) -> tuple[int, str]:
    stem = PurePosixPath(name).stem
    return int(stem) if stem.isdigit() else 1 << 30, PurePosixPath(name).name


def _report_files(xml_dir: Path) -> Iterator[tuple[str, bytes] | Reject]:
    """(file name, bytes) of `ecgen-radiology/*.xml` in report-number order."""
    for f in sorted(xml_dir.glob("*.xml"), key=lambda p: _report_order(p.name)):
        try:
            yield f.name, read_small(f)
        except FileRefused as exc:  # a FIFO or device among the reports: this report only
            yield Reject(f.name, exc.reason, str(exc))


def _report_members(archive: Path) -> Iterator[tuple[str, bytes] | Reject]:
    """The same from `NLMCXR_reports.tgz` read in place (3,955 small files: held while sorted)."""
    members: list[tuple[str, bytes]] = []
    for item in iter_members(archive, (".xml",), cap=MAX_RECORD_FILE_BYTES):
        if isinstance(item, Reject):
            yield item
        elif len(item[1]) > MAX_RECORD_FILE_BYTES:
            yield Reject(PurePosixPath(item[0]).name, "file_too_large",
                         f"{archive}:{item[0]}: over the {MAX_RECORD_FILE_BYTES}-byte cap of a whole-file read")
        else:
            members.append((PurePosixPath(item[0]).name, item[1]))
    yield from sorted(members, key=lambda m: _report_order(m[0]))


def _openi(root: Path, reports: Iterator[tuple[str, bytes] | Reject], splits: dict[str, str] | None
           ) -> Iterator[RawSample | Reject]:
    image_dirs = [d for d in (root / "NLMCXR_png", root / "images") if d.is_dir()]
    png_archive = root / "NLMCXR_png.tgz"
    packed = not image_dirs and png_archive.is_file() and not any(root.glob("*.png"))
    image_dirs.append(root)
    waiting: dict[int, tuple[RawSample, list[str]]] = {}  # packed: samples whose PNGs are still in the archive

    def find(stem: str) -> ImageSource:
        for d in image_dirs:
            if (d / f"{stem}.png").exists():
                return ImageSource(path=str(d / f"{stem}.png"))
        return ImageSource(path=str(image_dirs[0] / f"{stem}.png"))  # missing: the library rejects it

    for item in reports:
        if isinstance(item, Reject):
            yield item
            continue
        name, data = item
        try:
            rep = openi_report(data)
        except ValueError as exc:
            yield Reject(name, "malformed_xml", f"{name}: {exc}")
            continue
        f_, i_ = rep.findings, rep.impression
        sample = _sample(rep.uid, _split_for(rep.uid, splits), f_, i_, join_report(f_, i_),
                         [find(s) for s in rep.images], _indication(rep.indication),
                         {"uid": rep.uid, "layout": "openi", "views": rep.captions, "mesh": "; ".join(rep.mesh)})
        if packed and isinstance(sample, RawSample):
            waiting[len(waiting)] = (sample, [f"{s}.png" for s in rep.images])
        else:
            yield sample
    for got in join_archives([png_archive] if packed else [], {k: names for k, (_, names) in waiting.items()}, (".png",),
                             ordered=True):
        if isinstance(got, Reject):
            yield got
        elif isinstance(got, Missing):
            sid = waiting[got.key][0].id
            yield Reject(sid, "missing_image", f"{png_archive.name}: no {', '.join(got.names)}")
        else:
            sample = waiting.pop(got[0])[0]
            sample.images = [ImageSource(data=b) for b in got[1]]
            yield sample


def _kaggle(root: Path, splits: dict[str, str] | None) -> Iterator[RawSample | Reject]:
    views: dict[str, list[tuple[int, str, str]]] = {}
    for item in iter_csv(root / "indiana_projections.csv", required=["uid", "filename", "projection"]):
        if isinstance(item, Reject):
            yield item
            continue
        _, row = item
        proj = clean(row["projection"])
        views.setdefault(clean(row["uid"]), []).append((0 if proj == "Frontal" else 1, clean(row["filename"]), proj))
    img_dir = root / "images" / "images_normalized"
    for item in iter_csv(root / "indiana_reports.csv", required=["uid", "findings", "impression", "indication"]):
        if isinstance(item, Reject):
            yield item
            continue
        _, row = item
        uid = f"CXR{clean(row['uid'])}"
        f_, i_ = tidy(row["findings"]), tidy(row["impression"])
        vs = sorted(views.get(clean(row["uid"]), []))
        yield _sample(uid, _split_for(uid, splits), f_, i_, join_report(f_, i_),
                      [ImageSource(path=str(img_dir / name)) for _, name, _ in vs], _indication(tidy(row["indication"])),
                      {"uid": uid, "layout": "kaggle", "views": [p for _, _, p in vs], "mesh": clean(row.get("MeSH"))})


def _r2gen(root: Path, path: Path) -> Iterator[RawSample | Reject]:
    img_dir = root / "images"
    for key, entries in load_json(path).items():
        split = R2GEN_SPLITS.get(key.strip() or "test")
        if split is None or not isinstance(entries, list):
            raise SourceError(f"{path}: unexpected top-level key {key!r} (expected train/val/test)")
        for n, e in enumerate(entries):
            sid = clean(e.get("id")) if isinstance(e, dict) else ""
            if not sid or not isinstance(e.get("image_path"), list):
                yield Reject(f"{key.strip() or 'test'}[{n}]", "missing_field", "entry lacks id or image_path list")
                continue
            report = tidy(e.get("report"))
            yield _sample(sid, split, "", "", report, [ImageSource(path=str(img_dir / p)) for p in e["image_path"]],
                          "", {"uid": sid.split("_", 1)[0], "layout": "r2gen",
                               "views": [Path(p).stem for p in e["image_path"]], "mesh": ""})


def records(root: Path, options: dict[str, str]) -> Iterator[RawSample | Reject]:
    ann = root / "annotation.json"
    splits = _r2gen_split_map(ann) if ann.exists() else None
    xml_dir, xml_archive = root / "ecgen-radiology", root / "NLMCXR_reports.tgz"
    if xml_dir.is_dir():
        yield from _openi(root, _report_files(xml_dir), splits)
    elif xml_archive.is_file():
        yield from _openi(root, _report_members(xml_archive), splits)
    elif (root / "indiana_reports.csv").exists():
        yield from _kaggle(root, splits)
    elif ann.exists():
        yield from _r2gen(root, ann)
    else:
        raise SourceError(f"{root}: no ecgen-radiology/*.xml (or NLMCXR_reports.tgz), indiana_reports.csv or R2Gen "
                          "annotation.json")

