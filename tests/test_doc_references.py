"""Every reference ``docs/FILE.md §N.M`` in the code and the docs resolves to a numbered heading.

The mathematics the code relies on lives in ``docs/theory/`` (index: ``docs/theory/README.md``).
Code comments, docstrings, tests and the guides cite it as ``docs/theory/attention_ode.md §2.6``;
a list continues with further sections of the same file (``§2-§4``, ``§1, §2.1``, ``§2.3–§2.4``).
This test scans every ``.py`` file under ``src/`` and ``tests/`` and every ``.md`` file of the
repository and checks that each referenced file exists and has a heading that starts with the
referenced number (``## 2 Title``, ``### 2.6 Title`` or ``## 2. Title``). It also checks that the
old notes file outside the repository is no longer cited anywhere.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# The old, out-of-repository notes file. Spelled in two parts so that this file does not cite it.
OLD_NOTES = "MODELS" + ".md"

_NUM = r"\d+(?:\.\d+)*"
# A path under docs/ ending in .md, a section sign and a number, then any continuation
# (comma, semicolon, hyphen, en dash, 'to', 'and', 'or' followed by another section number).
REFERENCE = re.compile(
    rf"(?P<path>docs/[\w./-]*?\w\.md)`?\s*§(?P<first>{_NUM})"
    rf"(?P<rest>(?:`?\s*(?:,|;|-|–|to|and|or)\s*§{_NUM})*)"
)
CONTINUATION = re.compile(rf"§({_NUM})")
HEADING = re.compile(rf"^#{{1,6}}\s+({_NUM})\.?(?:\s|$)")

EXCLUDED_DIRS = {".git", "build", "dist", ".venv", ".ci-venv", "node_modules", "__pycache__", ".pytest_cache"}


@dataclass(frozen=True)
class Problem:
    source: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.source}:{self.line}: {self.message}"


def headings(text: str) -> set[str]:
    """Section numbers that start a Markdown heading of ``text`` (outside fenced code blocks)."""
    numbers: set[str] = set()
    fenced = False
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
            continue
        if not fenced and (m := HEADING.match(line)):
            numbers.add(m.group(1))
    return numbers


def references(text: str) -> list[tuple[int, str, list[str]]]:
    """``(line, path, [section, ...])`` for every reference in ``text``."""
    found = []
    for m in REFERENCE.finditer(text):
        line = text.count("\n", 0, m.start()) + 1
        sections = [m.group("first"), *CONTINUATION.findall(m.group("rest"))]
        found.append((line, m.group("path"), sections))
    return found


def check_text(text: str, source: str, root: Path, cache: dict[str, set[str] | None] | None = None) -> list[Problem]:
    """Problems in ``text``: unresolved references and mentions of the old notes file."""
    cache = {} if cache is None else cache
    problems = []
    for number, line in enumerate(text.splitlines(), start=1):
        if OLD_NOTES in line:
            problems.append(Problem(source, number, f"cites {OLD_NOTES}, which is not in the repository"))
    for line, path, sections in references(text):
        if path not in cache:
            target = root / path
            cache[path] = headings(target.read_text(encoding="utf-8")) if target.is_file() else None
        available = cache[path]
        if available is None:
            problems.append(Problem(source, line, f"{path} does not exist"))
            continue
        for section in sections:
            if section not in available:
                problems.append(Problem(source, line, f"{path} has no heading numbered {section}"))
    return problems


def scanned_files(root: Path) -> list[Path]:
    def excluded(path: Path) -> bool:
        parts = path.relative_to(root).parts[:-1]
        return any(p in EXCLUDED_DIRS or p.endswith(".egg-info") for p in parts)

    files = [p for p in root.rglob("*.md") if not excluded(p)]
    for folder in ("src", "tests"):
        files += [p for p in (root / folder).rglob("*.py") if not excluded(p)]
    return sorted(files)


def test_scanner_finds_bad_references():
    root = ROOT
    good = "see docs/theory/attention_ode.md \u00a72.6 and `docs/theory/random_mlp.md \u00a72-\u00a74`."
    assert check_text(good, "good", root) == []
    bad = "\n".join([
        "first line",
        "the scheme (docs/theory/attention_ode.md \u00a79.9) is wrong",
        "a file that does not exist: docs/theory/nowhere.md \u00a71",
        "a list with one bad member: docs/theory/mean_field.md \u00a71, \u00a72.1, \u00a77.3",
        "an old citation: " + OLD_NOTES + " \u00a71.13",
    ])
    problems = check_text(bad, "synthetic", root)
    messages = [(p.line, p.message) for p in problems]
    assert (2, "docs/theory/attention_ode.md has no heading numbered 9.9") in messages
    assert (3, "docs/theory/nowhere.md does not exist") in messages
    assert (4, "docs/theory/mean_field.md has no heading numbered 7.3") in messages
    assert any(line == 5 and OLD_NOTES in msg for line, msg in messages)
    assert len(problems) == 4


def test_scanner_parses_headings_and_lists():
    text = "# Title\n## 1 One\n### 1.2 Sub\n## 3. Three\n```\n## 9 in a code block\n```\n#### 4.1.2 Deep\n##5 no space\n"
    assert headings(text) == {"1", "1.2", "3", "4.1.2"}
    refs = references("x docs/a/b.md \u00a71.2–\u00a71.4; y `docs/c.md \u00a73`, \u00a74 and docs/d.md \u00a75.")
    assert refs == [(1, "docs/a/b.md", ["1.2", "1.4"]), (1, "docs/c.md", ["3", "4"]), (1, "docs/d.md", ["5"])]


def test_all_references_resolve():
    cache: dict[str, set[str] | None] = {}
    problems: list[Problem] = []
    count = 0
    for path in scanned_files(ROOT):
        text = path.read_text(encoding="utf-8")
        count += len(references(text))
        problems += check_text(text, str(path.relative_to(ROOT)), ROOT, cache)
    assert not problems, "unresolved documentation references:\n" + "\n".join(map(str, problems))
    assert count > 100  # the scan really sees the code's references


@pytest.mark.parametrize("name", sorted(p.name for p in (ROOT / "docs" / "theory").glob("*.md") if p.name != "README.md"))
def test_theory_file_is_numbered_and_indexed(name):
    text = (ROOT / "docs" / "theory" / name).read_text(encoding="utf-8")
    assert {"1", "2"} <= headings(text), f"{name} lacks numbered sections"
    index = (ROOT / "docs" / "theory" / "README.md").read_text(encoding="utf-8")
    assert f"({name})" in index, f"docs/theory/README.md does not list {name}"
