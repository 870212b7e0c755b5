"""Prompt token budgets: image tokens at a stage's processor bounds plus templated text tokens.

Qwen3-VL feeds an image as (H/32)*(W/32) tokens after `smart_resize` (patch 16 x merge 2; training.md
section 3.4). The text side is counted exactly with a tokenizer and its chat template when `mix` gets
`--tokenizer PATH`, else estimated from the character count (3.5 characters per token plus the
template's fixed tokens). Only index columns are read: widths, heights, prompt, system.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

FACTOR = 32
CHARS_PER_TOKEN = 3.5
TEMPLATE_TOKENS = 10  # <|im_start|>user\n ... <|im_end|>\n<|im_start|>assistant\n (estimate mode)
SYSTEM_TOKENS = 5
IMAGE_WRAP_TOKENS = 3  # <|vision_start|><|image_pad|><|vision_end|>: one placeholder per image
SENTINEL = "\ue000PROMPT\ue000"


def smart_resize(h: int, w: int, min_pixels: int, max_pixels: int, factor: int = FACTOR) -> tuple[int, int]:
    """Qwen2-VL's rule (image_processing_qwen2_vl.py): keep the aspect ratio, sides multiples of factor."""
    hb, wb = round(h / factor) * factor, round(w / factor) * factor
    if hb * wb > max_pixels:
        beta = math.sqrt(h * w / max_pixels)
        hb = max(factor, math.floor(h / beta / factor) * factor)
        wb = max(factor, math.floor(w / beta / factor) * factor)
    elif hb * wb < min_pixels:
        beta = math.sqrt(min_pixels / (h * w))
        hb, wb = math.ceil(h * beta / factor) * factor, math.ceil(w * beta / factor) * factor
    return hb, wb


def image_tokens(widths: np.ndarray, heights: np.ndarray, min_pixels: int, max_pixels: int,
                 factor: int = FACTOR) -> np.ndarray:
    """Vectorised smart_resize token counts, one per image (numpy rounds half to even, as Python does)."""
    h = np.asarray(heights, dtype=np.float64)
    w = np.asarray(widths, dtype=np.float64)
    if h.size == 0:
        return np.zeros(0, np.int64)
    hb, wb = np.round(h / factor) * factor, np.round(w / factor) * factor
    big = hb * wb > max_pixels
    small = ~big & (hb * wb < min_pixels)
    beta = np.sqrt(h * w / max_pixels)
    hb = np.where(big, np.maximum(factor, np.floor(h / beta / factor) * factor), hb)
    wb = np.where(big, np.maximum(factor, np.floor(w / beta / factor) * factor), wb)
    beta = np.sqrt(min_pixels / np.maximum(h * w, 1))
    hb = np.where(small, np.ceil(h * beta / factor) * factor, hb)
    wb = np.where(small, np.ceil(w * beta / factor) * factor, wb)
    return ((hb // factor) * (wb // factor)).astype(np.int64)


class TextCounter:
    """Tokens of the templated prompt with one placeholder per image (the processor expands each
    placeholder to the image's tokens, so total = this + sum(image tokens - 1))."""

    def __init__(self, tokenizer: str | None = None, system_prompt: str | None = None) -> None:
        self.system_prompt = system_prompt
        self.tok = None
        self.template: str | None = None
        self.factor = FACTOR
        self.name = "estimate"
        if tokenizer:
            self._load(Path(tokenizer))

    def _load(self, path: Path) -> None:
        from transformers import AutoTokenizer

        self.tok = AutoTokenizer.from_pretrained(path, local_files_only=True)
        self.template = getattr(self.tok, "chat_template", None)
        for name in ("chat_template.jinja", "chat_template.json", "processor_config.json"):
            if self.template or not (path / name).exists():
                continue
            text = (path / name).read_text(encoding="utf-8")
            self.template = text if name.endswith(".jinja") else json.loads(text).get("chat_template")
        for name in ("preprocessor_config.json", "processor_config.json"):
            if (path / name).exists():
                cfg = json.loads((path / name).read_text(encoding="utf-8"))
                cfg = cfg.get("image_processor", cfg)
                if "patch_size" in cfg and "merge_size" in cfg:
                    self.factor = int(cfg["patch_size"]) * int(cfg["merge_size"])
                    break
        if not self.template:
            raise ValueError(f"{path}: the tokenizer has no chat template")
        self.name = str(path)
        self._frames: dict[tuple[int, bool], tuple[str, str]] = {}

    def _frame(self, n_images: int, system: bool) -> tuple[str, str]:
        key = (n_images, system)
        if key not in self._frames:
            msgs = [{"role": "system", "content": [{"type": "text", "text": SENTINEL + "S"}]}] if system else []
            msgs.append({"role": "user", "content": [{"type": "image"}] * n_images
                         + [{"type": "text", "text": SENTINEL}]})
            text = self.tok.apply_chat_template(msgs, chat_template=self.template, tokenize=False,
                                                add_generation_prompt=True)
            self._frames[key] = tuple(text.split(SENTINEL, 1)) if not system else (text, "")
        return self._frames[key]

    def count(self, prompts: list[str], systems: list[str], n_images: list[int], chars: np.ndarray) -> np.ndarray:
        """Text-side tokens of each prompt (system turn included)."""
        if not prompts:  # an index file whose rows all left by an earlier rule (e.g. the task filter)
            return np.zeros(0, dtype=np.int64)
        sys_texts = [self.system_prompt or s or "" for s in systems]
        if self.tok is None:
            sys_chars = np.array([len(s) for s in sys_texts], dtype=np.int64)
            n = np.asarray(n_images, dtype=np.int64)
            return (np.ceil((np.asarray(chars) + sys_chars) / CHARS_PER_TOKEN).astype(np.int64) + TEMPLATE_TOKENS
                    + np.where(sys_chars > 0, SYSTEM_TOKENS, 0) + IMAGE_WRAP_TOKENS * n)
        texts = []
        for p, s, n in zip(prompts, sys_texts, n_images, strict=True):
            if s:
                whole = self._frame(n, True)[0]
                texts.append(whole.replace(SENTINEL + "S", s, 1).replace(SENTINEL, p, 1))
            else:
                pre, post = self._frame(n, False)
                texts.append(pre + p + post)
        ids = self.tok(texts, add_special_tokens=False)["input_ids"]
        # The index keeps the first 4000 characters of a prompt: estimate the cut tail.
        tail = np.maximum(0, np.asarray(chars) - np.array([len(p) for p in prompts]))
        return np.array([len(x) for x in ids], dtype=np.int64) + np.ceil(tail / CHARS_PER_TOKEN).astype(np.int64)
