"""`medmo-data show OUT/NAME --out grid.png`: the first n samples' images with their boxes and text.

Shards may come from elsewhere: a sample whose record breaks the schema or whose image is missing,
oversized (checked on its header, before decoding) or undecodable is skipped with a one-line note; a
shard the bounded reader refuses is skipped from that point with a note naming the member.
"""

from __future__ import annotations

import io
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from medmo_data.build.manifest import load
from medmo_data.shards.reader import ShardError, check_sample, iter_samples, listed_file

from .render import render_messages

TILE = 320
TEXT_H = 120
PALETTE = ["#ff3b30", "#34c759", "#007aff", "#ffcc00", "#af52de", "#ff9500", "#5ac8fa", "#ff2d55"]


def _font(size: int = 11):
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1
        return ImageFont.load_default()


def draw_sample(rec: dict, members: dict[str, bytes]) -> Image.Image:
    """One tile: first image (or a blank for text-only) scaled to TILE, boxes drawn, text beneath."""
    tile = Image.new("RGB", (TILE, TILE + TEXT_H), "white")
    draw = ImageDraw.Draw(tile)
    if rec["images"]:
        im = rec["images"][0]
        img = Image.open(io.BytesIO(members[im["member"]])).convert("RGB")
        s = min(TILE / img.width, TILE / img.height)
        img = img.resize((max(1, round(img.width * s)), max(1, round(img.height * s))))
        tile.paste(img, (0, 0))
        colors: dict[str, str] = {}
        for ob in rec["objects"]:
            if ob["image"] != 0:
                continue
            c = colors.setdefault(ob["label"], PALETTE[len(colors) % len(PALETTE)])
            x1, y1, x2, y2 = (v * s for v in ob["bbox"])
            draw.rectangle([x1, y1, x2, y2], outline=c, width=2)
            draw.text((x1 + 2, max(0, y1 - 12)), ob["label"][:24], fill=c, font=_font())
        if len(rec["images"]) > 1:
            draw.text((4, TILE - 14), f"+{len(rec['images']) - 1} more image(s)", fill="yellow", font=_font())
    msgs = render_messages(rec)
    q = " ".join(p["text"] for m in msgs if m["role"] == "user" for p in m["content"] if p["type"] == "text")
    a = " ".join(p["text"] for m in msgs if m["role"] == "assistant" for p in m["content"] if p["type"] == "text")
    body = f"[{rec['task']}] Q: {q[:160]}\nA: {a[:200]}"
    lines = []
    for para in body.split("\n"):
        lines += textwrap.wrap(para, 58) or [""]
    draw.multiline_text((4, TILE + 4), "\n".join(lines[:9]), fill="black", font=_font())
    return tile


def _note_stderr(message: str) -> None:
    print(f"show: skipped {message}", file=sys.stderr)


def show(folder: Path, out: Path, n: int = 16, note: Callable[[str], None] = _note_stderr) -> int:
    man = load(folder)
    tiles = []
    for sh in man["shards"]:
        try:
            path = listed_file(folder, sh["path"])
            for sample in iter_samples(path):
                where = f"{path}:{sample['__key__']}"
                try:
                    check_sample(sample, where)  # schema, members, image headers: nothing decoded yet
                    tiles.append(draw_sample(sample["json"], sample))
                except ShardError as exc:
                    note(str(exc))
                except Exception as exc:  # noqa: BLE001 - a corrupt image body: skip the sample, say why
                    note(f"{where}: does not draw ({type(exc).__name__}: {exc})")
                if len(tiles) >= n:
                    break
        except ShardError as exc:
            note(f"the rest of the shard: {exc}")  # or all of it: a path out of the folder
        if len(tiles) >= n:
            break
    if not tiles:
        raise ValueError(f"{folder}: no samples to show")
    cols = min(4, len(tiles))
    rows = (len(tiles) + cols - 1) // cols
    grid = Image.new("RGB", (cols * (TILE + 4), rows * (TILE + TEXT_H + 4)), "#888888")
    for i, t in enumerate(tiles):
        grid.paste(t, ((i % cols) * (TILE + 4), (i // cols) * (TILE + TEXT_H + 4)))
    out.parent.mkdir(parents=True, exist_ok=True)
    grid.save(out)
    return len(tiles)
