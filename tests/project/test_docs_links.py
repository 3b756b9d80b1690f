"""README.md and docs/*.md hold together: every relative link and #anchor resolves, every docs page is
linked from the README, the README's set-up commands are the ones .ci/run runs, the sdist ships what is
linked, and docs/configuration.md lists every setting."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

FENCE = re.compile(r"^(```|~~~).*?^\1[^\n]*$", re.M | re.S)
INLINE_CODE = re.compile(r"`+[^`\n]*`+")
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
HEADING = re.compile(r"^ {0,3}#{1,6}\s+(.*?)\s*#*\s*$", re.M)


def pages() -> list[Path]:
    return [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]


def prose(text: str) -> str:
    """The text without fenced code blocks (where `# ...` is a comment and `[a](b)` is not a link)."""
    return FENCE.sub("", text)


def slug(heading: str) -> str:
    """GitHub's anchor: markup and punctuation (but '-' and '_') dropped, lowercase, spaces to '-'."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link in a heading anchors on its text
    text = re.sub(r"[`*]", "", text).strip().lower()
    text = "".join(c for c in text if c.isalnum() or c in " -_")
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    found: set[str] = set()
    for heading in HEADING.findall(prose(path.read_text(encoding="utf-8"))):
        base = slug(heading)
        name, n = base, 0
        while name in found:  # GitHub numbers repeated headings: x, x-1, x-2
            n += 1
            name = f"{base}-{n}"
        found.add(name)
    return found


def links(path: Path) -> list[str]:
    return LINK.findall(INLINE_CODE.sub("", prose(path.read_text(encoding="utf-8"))))


def broken_links(path: Path) -> list[str]:
    broken = []
    for target in links(path):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # https:, mailto: ...
            continue
        file_part, _, anchor = target.partition("#")
        dest = (path.parent / file_part).resolve() if file_part else path
        if not dest.exists():
            broken.append(f"{target}: no such file")
        elif anchor and (dest.suffix != ".md" or anchor not in anchors(dest)):
            broken.append(f"{target}: no heading with that anchor in {dest.name}")
    return broken


def test_slug_follows_github() -> None:
    server = "use-a-server-instead-llama-server-vllm-ollama"
    assert slug("Use a server instead: llama-server, vLLM, Ollama") == server
    assert slug("Share the local model: `g3chat serve`") == "share-the-local-model-g3chat-serve"
    assert slug("At Gemma 3n scale: E2B-shaped models") == "at-gemma-3n-scale-e2b-shaped-models"
    assert slug("snake_case and **bold**") == "snake_case-and-bold"


def test_a_broken_link_is_found(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text("# Title\n\n## Part two\n\n[ok](#part-two) [bad](#part-three) [gone](missing.md)\n")
    assert broken_links(page) == [
        "#part-three: no heading with that anchor in page.md",
        "missing.md: no such file",
    ]


@pytest.mark.parametrize("page", pages(), ids=lambda p: str(p.relative_to(REPO)))
def test_every_relative_link_and_anchor_resolves(page: Path) -> None:
    assert broken_links(page) == []


def test_every_docs_page_is_linked_from_the_readme() -> None:
    linked = {(REPO / t.partition("#")[0]).resolve() for t in links(REPO / "README.md")}
    docs = sorted((REPO / "docs").glob("*.md"))
    assert docs, "docs/ has no pages"
    assert [p.name for p in docs if p.resolve() not in linked] == []


def test_readme_set_up_commands_are_what_ci_runs() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Set up", 1)[1]
    block = re.search(r"```sh\n(.*?)```", section, re.S)
    assert block is not None
    commands = [line.strip() for line in block.group(1).splitlines() if line.strip()]
    assert commands == ['pip install -e ".[dev]"', "python -m pytest"]
    ci = [line.strip() for line in (REPO / ".ci" / "run").read_text().splitlines()]
    steps = [line for line in ci if line.startswith(("python -m ", "lint-imports"))]
    # The README's two commands first and last (pip run as a module of the same interpreter); the checks
    # in between are the ones the Set up section names.
    assert steps[0] == 'python -m pip install -e ".[dev]"' and steps[-1] == "python -m pytest"
    set_up = section.split("\n## ", 1)[0]
    for check in steps[1:-1]:
        assert f"`{check}`" in set_up, f".ci/run runs {check!r}, which the README's Set up does not mention"


def test_sdist_ships_every_linked_file() -> None:
    targets = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["hatch"]["build"]["targets"]
    include = targets["sdist"]["include"]
    for page in pages():
        assert page.relative_to(REPO).parts[0] in include
        for target in links(page):
            file_part = target.partition("#")[0]
            if file_part and not re.match(r"^[a-z][a-z0-9+.-]*:", file_part):
                top = (page.parent / file_part).resolve().relative_to(REPO).parts[0]
                assert top in include, f"{page.name} links {target}, which the sdist leaves out"


def test_configuration_reference_lists_every_setting() -> None:
    from g3chat.config import documented_fields

    table = (REPO / "docs" / "configuration.md").read_text(encoding="utf-8")
    listed = re.findall(r"^\| `([a-z_.]+)` \|", table, re.M)
    assert sorted(listed) == sorted(name for name, _, _ in documented_fields())
