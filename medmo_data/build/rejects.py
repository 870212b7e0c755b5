"""Recipe-level rejects spilled to disk as they happen, so a source with millions of rejected rows (e.g.
MedTrinity rows whose images were not downloaded) keeps the driver's memory flat. Behaves like the list it
replaces: `append`, iteration (read back from disk, in order), `len`."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import secrets
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any


class RejectLog:
    def __init__(self, folder: Path) -> None:
        self.path = folder / f".recipe-rejects.tmp-{os.getpid()}"
        self._f = open(self.path, "w", encoding="utf-8")  # noqa: SIM115 - closed in close()
        self.reasons: Counter[str] = Counter()
        self._n = 0

    def append(self, row: dict[str, str]) -> None:
        self._f.write(json.dumps(row, sort_keys=True) + "\n")  # ASCII escapes: a lone surrogate survives
        self.reasons[row["reason"]] += 1
        self._n += 1

    def __len__(self) -> int:
        return self._n

    def __iter__(self) -> Iterator[dict[str, str]]:
        self._f.flush()
        with open(self.path, encoding="utf-8") as f:
            for line in f:
                yield json.loads(line)

    def close(self) -> None:
        if not self._f.closed:
            self._f.close()
        self.path.unlink(missing_ok=True)


def utf8_safe(row: dict[str, Any]) -> dict[str, Any]:
    """String values that encode as UTF-8: a lone surrogate (an id like "\\ud800", a surrogate-escaped
    file name) becomes its escape text "\\\\ud800", so the row can always be written as UTF-8 JSON."""
    return {k: v.encode("utf-8", "backslashreplace").decode("utf-8") if isinstance(v, str) else v
            for k, v in row.items()}


REDACT_KEY_ENV = "MEDMO_REDACT_KEY"
REDACT_KEY_FILE = ".redact-key"
_QUOTES = "'\"\n,()"
_HASHED = re.compile(r"path-[0-9a-f]{16}")


def redaction_key(output: Path | None) -> bytes:
    """The HMAC key of `--redact-paths`: $MEDMO_REDACT_KEY, else `<output>/.redact-key` (32 random bytes,
    created once with mode 0600, so one output root hashes a path the same way across builds). Whoever
    holds the key can test guessed file names against the hashes: keep it out of what you share."""
    env = os.environ.get(REDACT_KEY_ENV)
    if env:
        return env.encode()
    if output is None:
        raise ValueError(f"--redact-paths on a URL output needs the key in ${REDACT_KEY_ENV}")
    path = Path(output) / REDACT_KEY_FILE
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_bytes().strip()
    with os.fdopen(fd, "wb") as f:
        f.write(secrets.token_hex(32).encode())
    return path.read_bytes().strip()


class Scrubber:
    """Makes a reject row safe to write: text that cannot be UTF-8 (lone surrogates) is escaped, input paths
    become relative to the input, and with a key every path becomes `path-<HMAC-SHA256, 16 hex>`."""

    def __init__(self, root: Path, key: bytes | None = None) -> None:
        r = os.path.abspath(root)
        self.roots = sorted({r, os.path.realpath(r)}, key=len, reverse=True)
        self.key = key

    def _hash(self, rel: str) -> str:
        return "path-" + hmac.new(self.key or b"", rel.encode("utf-8", "surrogatepass"),
                                  hashlib.sha256).hexdigest()[:16]

    def path(self, p: str) -> str:
        if self.key is not None and _HASHED.fullmatch(p):
            return p  # already hashed (a stats file written under the same option)
        rel = os.path.relpath(p, self.roots[-1]) if os.path.isabs(p) else p
        for r in self.roots:
            if os.path.isabs(p) and (p == r or p.startswith(r.rstrip(os.sep) + os.sep)):
                rel = os.path.relpath(p, r)
                break
        return self._hash(rel) if self.key is not None else rel

    def _redact_in(self, text: str, root: str) -> str:
        """Each `<root>/...` path in free text -> its hash. The path ends at a quote, comma, colon or
        parenthesis; when it then holds spaces, the longest prefix that is a file on disk is taken (else all
        of it: a message word too many is hashed rather than a file name left readable)."""
        out, i = [], 0
        for match in re.finditer(re.escape(root) + r"(?![\w.-])", text):
            j = match.start()
            if j < i:
                continue
            k = j + len(root)
            while k < len(text) and text[k] not in _QUOTES + ":":
                k += 1
            cand = text[j:k].rstrip()
            if " " in cand and not os.path.lexists(cand):
                for m in range(len(cand) - 1, len(root), -1):
                    if cand[m] == " " and os.path.lexists(cand[:m]) and not os.path.isdir(cand[:m]):
                        cand = cand[:m]
                        break
            out += [text[i:j], self._hash(os.path.relpath(cand, root))]
            i = j + len(cand)
        return "".join(out) + text[i:]

    def text(self, s: str) -> str:
        for r in self.roots:
            if r in s:
                s = self._redact_in(s, r) if self.key is not None else \
                    re.sub(re.escape(r) + r"(?![\w.-])", ".", s.replace(r.rstrip(os.sep) + os.sep, ""))
        return s

    def row(self, row: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for k, v in row.items():
            if isinstance(v, str):
                v = self.path(v) if k == "file" else self.text(v)
            out[k] = v
        return utf8_safe(out)
