"""Every test the docs name exists (docs/security.md: one line per threat naming the test that
covers it; a renamed or deleted test must not leave a line that proves nothing).

A reference is `tests/<dir>/test_x.py`, optionally `::test_name` or `::Class::test_name`;
`test_x.py::test_name` (the file found under tests/); `::test_name` (the file the same line
named last); a `[param]` suffix is checked against the test's parametrize ids when they are
literal. Globs (`tests/http/test_admin_*.py`) must match at least one file.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from tests.support.paths import REPO

DOCS = sorted([*(REPO / "docs").glob("*.md"), REPO / "README.md"])
REFERENCE = re.compile(
    r"(?P<file>(?:tests/)?[A-Za-z0-9_/*-]*test_[A-Za-z0-9_*-]*\.py)?"
    r"(?P<names>(?:::[A-Za-z0-9_]+)+)?(?P<param>\[[^\]\s`]+\])?"
)
# A `::name` with no file before it is a test only when it looks like one (not an ARI's
# `ecosystem::app` nor an IPv6 `::ffff`).
CONTINUATION = re.compile(r"::(?:test_|Test)")


def _test_files() -> dict[str, list[Path]]:
    by_name: dict[str, list[Path]] = {}
    for path in REPO.glob("tests/**/test_*.py"):
        by_name.setdefault(path.name, []).append(path)
    return by_name


FILES = _test_files()


def definitions(path: Path) -> dict[str, ast.AST]:
    """Module-level tests and classes, and `Class::method` for each class's methods."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: dict[str, ast.AST] = {}
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            found[node.name] = node
        if isinstance(node, ast.ClassDef):
            for member in node.body:
                if isinstance(member, ast.FunctionDef | ast.AsyncFunctionDef):
                    found[f"{node.name}::{member.name}"] = member
    return found


def literal_ids(node: ast.AST) -> set[str] | None:
    """The ids a `@pytest.mark.parametrize(..., ids=[...])` or a list of string values gives,
    when they are literal; None when they cannot be told without running pytest."""
    ids: set[str] = set()
    for decorator in getattr(node, "decorator_list", []):
        if not (isinstance(decorator, ast.Call) and "parametrize" in ast.unparse(decorator.func)):
            continue
        keywords = {k.arg: k.value for k in decorator.keywords}
        source = keywords.get("ids") or (decorator.args[1] if len(decorator.args) > 1 else None)
        try:
            values = ast.literal_eval(source) if source is not None else None
        except ValueError:
            return None
        if not isinstance(values, list | tuple) or not all(isinstance(v, str) for v in values):
            return None
        ids |= set(values)
    return ids or None


def broken_references(text: str, where: str) -> list[str]:
    problems: list[str] = []
    for lineno, line in enumerate(text.splitlines(), 1):
        current: list[Path] = []
        for match in REFERENCE.finditer(line):
            file, names, param = match["file"], match["names"], match["param"]
            if not file and not (names and CONTINUATION.match(names)
                                 and not line[:match.start()][-1:].isalnum()):
                continue
            if file:
                candidates = (sorted(REPO.glob(file)) if file.startswith("tests/")
                              else FILES.get(file, []))
                if not candidates:
                    problems.append(f"{where}:{lineno}: no file {file}")
                current = [] if "*" in file else candidates
                if not current:
                    continue
            if names is None:
                continue
            if not current:
                problems.append(f"{where}:{lineno}: {names} follows no test file")
                continue
            name = names[2:]
            # A short file name may be in several folders (tests/cli and tests/e2e): any.
            found = [d[name] for d in map(definitions, current) if name in d]
            if not found:
                problems.append(f"{where}:{lineno}: no {name} in "
                                f"{', '.join(str(c.relative_to(REPO)) for c in current)}")
            elif param is not None:
                ids = literal_ids(found[0])
                if ids is not None and param[1:-1] not in ids:
                    problems.append(f"{where}:{lineno}: {name}{param}: no such parameter")
    return problems


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_every_test_a_doc_names_exists(doc: Path) -> None:
    assert broken_references(doc.read_text(encoding="utf-8"), doc.name) == []


def test_the_checker_finds_stale_references() -> None:
    """The check is checked: a missing file, a missing test, a `::name` after no file, a
    missing method of a class and a parameter the test does not take are each reported; a
    real reference, a glob that matches and a continuation `::name` are not."""
    real = "tests/tooling/test_docs_test_references.py"
    text = "\n".join([
        f"- ok — `{real}::test_the_checker_finds_stale_references`, "
        "`::test_every_test_a_doc_names_exists`, `tests/tooling/test_*.py`",
        "- gone — `tests/http/test_no_such_file.py::test_x`",
        f"- renamed — `{real}::test_renamed_away`",
        "- orphan — `::test_with_no_file`",
        "- short name — `test_docs_test_references.py::test_nothing_here`",
        "- glob — `tests/http/test_nothing_*.py`",
    ])
    problems = broken_references(text, "doc.md")
    assert [p.split(":", 2)[1] for p in problems] == ["2", "3", "4", "5", "6"], problems


@pytest.mark.parametrize("case", ["a", "b"])
def test_parameters_are_checked(case: str) -> None:
    real = "tests/tooling/test_docs_test_references.py::test_parameters_are_checked"
    assert broken_references(f"`{real}[{case}]`", "doc.md") == []
    assert len(broken_references(f"`{real}[c]`", "doc.md")) == 1
