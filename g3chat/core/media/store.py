"""The content-addressed attachment store: ``<media dir>/<sha[:2]>/<sha><ext>``, written atomically."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path


class MediaStore:
    """Stores normalized attachment bytes once each; the same content attached twice is one file."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def path_for(self, sha256: str, suffix: str) -> Path:
        return self.root / sha256[:2] / f"{sha256}{suffix}"

    def put(self, data: bytes, suffix: str) -> tuple[Path, str]:
        """Store ``data`` (if not already there) and return (its path, its sha256)."""
        sha = hashlib.sha256(data).hexdigest()
        path = self.path_for(sha, suffix)
        if path.is_file() and path.stat().st_size == len(data):
            return path, sha
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
        try:
            tmp.write_bytes(data)
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
        return path, sha

    def files(self) -> list[Path]:
        if not self.root.is_dir():
            return []
        return sorted(p for p in self.root.glob("??/*") if p.is_file() and ".tmp-" not in p.name)
