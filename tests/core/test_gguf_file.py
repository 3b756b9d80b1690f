from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from g3chat.core.errors import ModelFileError
from g3chat.core.gguf_file import inspect_gguf
from tests.fixtures.gguf_edit import truncated, with_metadata


def test_reads_the_test_model(test_model_path: Path) -> None:
    s = inspect_gguf(test_model_path)
    assert s.architecture == "gemma3"
    assert s.context_length == 32768
    assert s.quantization == "Q4_K_M"
    assert s.chat_template is None
    assert len(s.tensors) == 236
    # The tensor table accounts for the file exactly: data offset + the last tensor's end = file size.
    assert max(s.data_offset + t.offset + (t.nbytes or 0) for t in s.tensors) == s.file_size


def test_every_file_type_gguf_py_knows_is_named(test_model_path: Path, tmp_path: Path) -> None:
    # The names come from gguf-py's LlamaFileType, so a type added there (NVFP4, 39) is named, not "type 39".
    out = with_metadata(test_model_path, tmp_path / "t.gguf", {"general.file_type": 39})
    assert inspect_gguf(out).quantization == "NVFP4"
    out = with_metadata(test_model_path, tmp_path / "u.gguf", {"general.file_type": 9999})
    assert inspect_gguf(out).quantization == "type 9999"


def test_tables_come_without_the_gguf_package(test_model_path: Path) -> None:
    # gguf-py's __init__ imports its reader, writer, numpy and yaml (~0.3 s): only its tables are loaded.
    code = (
        "import sys; from g3chat.core.gguf_file import inspect_gguf; "
        f"s = inspect_gguf({str(test_model_path)!r}); "
        "assert s.quantization == 'Q4_K_M' and all(t.nbytes for t in s.tensors); "
        "print(sorted(m for m in ('gguf', 'numpy', 'yaml') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_added_metadata_is_read_back(test_model_path: Path, tmp_path: Path) -> None:
    out = with_metadata(test_model_path, tmp_path / "t.gguf", {"tokenizer.chat_template": "{{ x }}"})
    s = inspect_gguf(out)
    assert s.chat_template == "{{ x }}"
    assert max(s.data_offset + t.offset + (t.nbytes or 0) for t in s.tensors) == s.file_size


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda d, m: d / "missing.gguf", "no such file"),
        (lambda d, m: d, "is a directory"),
        (
            lambda d, m: _write(d / "notes.gguf", b"just some text\n"),
            "not a GGUF model file (it starts with b'just'",
        ),
        (lambda d, m: _write(d / "empty.gguf", b""), "not a GGUF model file (it is empty)"),
        (lambda d, m: truncated(m, d / "head.gguf", 5000), "truncated GGUF file (the header ends early)"),
        (lambda d, m: truncated(m, d / "data.gguf", 100_000_000), "truncated GGUF file (100,000,000 bytes"),
    ],
)
def test_bad_files_get_one_line_reasons(tmp_path: Path, test_model_path: Path, make, expected: str) -> None:
    path = make(tmp_path, test_model_path)
    with pytest.raises(ModelFileError) as info:
        inspect_gguf(path)
    assert expected in str(info.value)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path
