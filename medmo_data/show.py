"""`medmo-data show OUT/NAME --out grid.png`: the first n samples' images with their boxes and text.

Shards may come from elsewhere: a sample whose record breaks the schema or whose image is missing,
oversized (checked on its header, before decoding) or undecodable is skipped with a one-line note; a
shard the bounded reader refuses is skipped from that point with a note naming the member.
"""

from __future__ import annotations

import io
import sys
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


def _fit(word: str, font, width: int) -> int:
    """How many leading characters of `word` fit in `width` pixels (at least 1): a binary search, since
    a token of thousands of characters (a URL, base64) would make a linear scan quadratic."""
    lo, hi = 1, min(len(word), width + 1)  # a glyph is at least a pixel wide
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if font.getlength(word[:mid]) <= width:
            lo = mid
        else:
            hi = mid - 1
    return lo


def wrap_text(text: str, font, width: int, max_lines: int) -> list[str]:
    """Lines of at most `width` pixels, broken between words (a word wider than a line is split); when
    the text needs more than `max_lines`, the last line ends at a word with an ellipsis. Stops reading the
    text once it has one line more than it can draw; a glyph is at least a pixel wide, so no more than
    (max_lines + 1) x width characters are ever measured (a 100k-character token took seconds a line)."""
    text = text[: (max_lines + 1) * (width + 1)]
    lines: list[str] = []
    for para in text.split("\n"):
        line = ""
        for word in para.split():
            if len(lines) > max_lines:
                break
            while font.getlength(word[: width + 1]) > width:  # a URL or a long token: split it
                k = _fit(word, font, width)
                if line:
                    lines.append(line)
                    line = ""
                lines.append(word[:k])
                word = word[k:]
                if len(lines) > max_lines:
                    break
            cand = f"{line} {word}" if line else word
            if font.getlength(cand) <= width:
                line = cand
            else:
                lines.append(line)
                line = word
        lines.append(line)
        if len(lines) > max_lines:
            break
    if len(lines) <= max_lines:
        return lines
    words = lines[max_lines - 1].split()
    while words and font.getlength(" ".join(words) + " …") > width:
        words.pop()
    return lines[: max_lines - 1] + [" ".join(words) + " …"]


def draw_sample(rec: dict, members: dict[str, bytes]) -> Image.Image:
    """One tile: the first image scaled to TILE with its boxes, the text beneath; a text-only sample is
    one text panel from the top (no empty image area). Text wraps between words."""
    tile = Image.new("RGB", (TILE, TILE + TEXT_H), "white")
    draw = ImageDraw.Draw(tile)
    font = _font()
    text_top = 4
    if rec["images"]:
        text_top = TILE + 4
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
            label = wrap_text(ob["label"], font, max(40, TILE - round(x1) - 4), 1)[0]
            draw.text((x1 + 2, max(0, y1 - 12)), label, fill=c, font=font)
        if len(rec["images"]) > 1:
            draw.text((4, TILE - 14), f"+{len(rec['images']) - 1} more image(s)", fill="yellow", font=font)
    msgs = render_messages(rec)
    q = " ".join(p["text"] for m in msgs if m["role"] == "user" for p in m["content"] if p["type"] == "text")
    a = " ".join(p["text"] for m in msgs if m["role"] == "assistant" for p in m["content"] if p["type"] == "text")
    line_h = draw.textbbox((0, 0), "A", font=font)[3] + 4  # multiline_text's line pitch at spacing 4
    room = (TILE + TEXT_H - text_top - 4) // line_h
    a_lines = wrap_text(f"A: {a}", font, TILE - 8, max(1, room // 3))
    q_lines = wrap_text(f"[{rec['task']}] Q: {q}", font, TILE - 8, room - len(a_lines))
    draw.multiline_text((4, text_top), "\n".join(q_lines + a_lines), fill="black", font=font, spacing=4)
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
