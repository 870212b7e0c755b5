"""LLaVA-style conversations -> `medmo/v1` chat messages.

LLaVA releases (Quilt-LLaVA, PubMedVision, LLaVA-Med) store a sample as
`{"id", "image": name or [names], "conversations": [{"from": "human"|"gpt", "value": "..."}]}` with
`<image>` placeholders in the human text. Here:
- `human` -> `user`, `gpt` -> `assistant` (`system` kept); turns must alternate, user first, assistant last;
- every `<image>` placeholder (any case, inner spaces, e.g. `< image >`) becomes an image part at its
  position, and the whitespace around it goes (the same pattern MedMO strips: `\\s*<\\s*image\\s*>\\s*`);
- the number of placeholders must equal the number of images listed, else the record is rejected
  (`image_count_mismatch`). Releases whose raw turns carry no placeholder at all (PubMedVision: its
  training code prepends one `<image>` line per image) pass `missing="prepend"`: the images then go, in
  list order, before the first user text.
Failures raise `LlavaError(reason, detail)`; recipes turn it into a counted `Reject`.
"""

from __future__ import annotations

import re
from typing import Any

from medmo_data.schema import image, text

PLACEHOLDER = re.compile(r"\s*<\s*image\s*>\s*", re.IGNORECASE)
ROLES = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant", "system": "system"}


class LlavaError(ValueError):
    def __init__(self, reason: str, detail: str):
        self.reason = reason
        self.detail = detail
        super().__init__(f"{reason}: {detail}")


def image_list(value: Any) -> list[str]:
    """The record's `image` field as a list of relative paths (a bare string is one image)."""
    if value is None:
        return []
    if isinstance(value, str):
        return [value] if value.strip() else []
    if isinstance(value, list) and all(isinstance(v, str) and v.strip() for v in value):
        return list(value)
    raise LlavaError("bad_image_field", f"image must be a path or a list of paths, got {value!r:.80}")


def split_placeholders(value: str) -> list[dict[str, str]]:
    """Text with `<image>` placeholders -> text and image parts in order (empty text pieces dropped)."""
    parts: list[dict[str, str]] = []
    pieces = PLACEHOLDER.split(value)
    for i, piece in enumerate(pieces):
        if i:
            parts.append(image())
        piece = piece.strip()
        if piece:
            parts.append(text(piece))
    return parts


def llava_messages(conversations: Any, n_images: int, missing: str = "reject",
                   system: str | None = None) -> list[dict[str, Any]]:
    """Chat messages from a LLaVA `conversations` list holding exactly `n_images` image placeholders.

    missing="prepend": when the turns hold no placeholder at all, put the n images before the first user
    text instead of rejecting the record.
    """
    if missing not in ("reject", "prepend"):
        raise ValueError(f"missing must be 'reject' or 'prepend', got {missing!r}")
    if not isinstance(conversations, list) or not conversations:
        raise LlavaError("bad_conversation", "conversations must be a non-empty list")
    msgs: list[dict[str, Any]] = [{"role": "system", "content": [text(system)]}] if system else []
    for i, t in enumerate(conversations):
        if not isinstance(t, dict) or not isinstance(t.get("value"), str):
            raise LlavaError("bad_conversation", f"turn {i} is not a {{from, value}} object with a text value")
        role = ROLES.get(str(t.get("from", "")).strip().lower())
        if role is None:
            raise LlavaError("bad_conversation", f"turn {i}: unknown speaker {t.get('from')!r}")
        parts = split_placeholders(t["value"])
        if not any(p["type"] == "text" for p in parts) and role != "user":
            raise LlavaError("empty_text", f"turn {i} ({t.get('from')}) has no text")
        if role == "assistant" and any(p["type"] == "image" for p in parts):
            raise LlavaError("image_in_answer", f"turn {i}: an <image> placeholder in a {t.get('from')} turn")
        if not parts:
            raise LlavaError("empty_text", f"turn {i} ({t.get('from')}) is empty")
        msgs.append({"role": role, "content": parts})
    roles = [m["role"] for m in msgs if m["role"] != "system"]
    if not roles or roles[0] != "user" or roles[-1] != "assistant" or any(a == b for a, b in zip(roles, roles[1:], strict=False)):
        raise LlavaError("bad_turn_order", f"turns must alternate human/gpt, human first and gpt last: {roles}")
    found = sum(p["type"] == "image" for m in msgs for p in m["content"])
    if found == 0 and n_images and missing == "prepend":
        first_user = next(m for m in msgs if m["role"] == "user")
        first_user["content"][:0] = [image() for _ in range(n_images)]
        found = n_images
    if found != n_images:
        raise LlavaError("image_count_mismatch", f"{found} <image> placeholder(s) for {n_images} image(s)")
    return msgs


def final_answer(msgs: list[dict[str, Any]]) -> str:
    """Text of the last assistant turn (what a caption/answer target holds)."""
    last = [m for m in msgs if m["role"] == "assistant"][-1]
    return "\n".join(p["text"] for p in last["content"] if p["type"] == "text")
