"""Files of a release either unpacked (`<root>/<folder>/...`) or still inside `<root>/<folder>.zip`
(members `<folder>/...`, as hub re-hosts ship them, e.g. SLAKE's `imgs.zip`). Recipes ask for a relative
name and get the same bytes either way; images from a zip travel as bytes, so nothing is extracted."""

from __future__ import annotations

import zipfile
from pathlib import Path

from medmo_data.recipe import ImageSource


class ReleaseTree:
    def __init__(self, root: Path, folder: str) -> None:
        self.dir = root / folder
        self.prefix = f"{folder}/"
        self.zip: zipfile.ZipFile | None = None
        self._names: set[str] = set()
        if not self.dir.is_dir() and (root / f"{folder}.zip").exists():
            self.zip = zipfile.ZipFile(root / f"{folder}.zip")
            self._names = set(self.zip.namelist())

    @property
    def found(self) -> bool:
        return self.dir.is_dir() or self.zip is not None

    def exists(self, rel: str) -> bool:
        return (self.prefix + rel) in self._names if self.zip else (self.dir / rel).exists()

    def read_bytes(self, rel: str) -> bytes:
        if self.zip is None:
            return (self.dir / rel).read_bytes()
        try:
            return self.zip.read(self.prefix + rel)
        except KeyError as exc:
            raise FileNotFoundError(f"{self.prefix}{rel} is not in the zip") from exc

    def where(self, rel: str) -> str:
        return f"{self.dir}.zip:{self.prefix}{rel}" if self.zip else str(self.dir / rel)

    def image(self, rel: str) -> ImageSource:
        """Path-based for an unpacked tree; bytes for a zip member (missing member -> an empty source that
        the decoder rejects as `missing_image`)."""
        if self.zip is None:
            return ImageSource(path=str(self.dir / rel))
        try:
            return ImageSource(data=self.zip.read(self.prefix + rel))
        except KeyError:
            return ImageSource(path=str(self.dir / rel))  # does not exist: rejected as missing_image
