"""Recipe-level rejects spilled to disk as they happen, so a source with millions of rejected rows (e.g.
MedTrinity rows whose images were not downloaded) keeps the driver's memory flat. Behaves like the list it
replaces: `append`, iteration (read back from disk, in order), `len`."""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterator
from pathlib import Path


class RejectLog:
    def __init__(self, folder: Path) -> None:
        self.path = folder / f".recipe-rejects.tmp-{os.getpid()}"
        self._f = open(self.path, "w", encoding="utf-8")  # noqa: SIM115 - closed in close()
        self.reasons: Counter[str] = Counter()
        self._n = 0

    def append(self, row: dict[str, str]) -> None:
        self._f.write(json.dumps(row, ensure_ascii=False, sort_keys=True) + "\n")
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
