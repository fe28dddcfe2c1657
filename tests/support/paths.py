"""Where test data lives: the repository's fixtures and the shared/ folder beside the repo."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures"
# beside the repository, or beside the folder of git worktrees (`<root>/wt/<name>`)
SHARED = next(
    (p / "shared" for p in (REPO.parent, REPO.parent.parent) if (p / "shared").is_dir()),
    REPO.parent / "shared",
)


def fixture_json(name: str) -> Any:
    """A JSON fixture from tests/fixtures (copies and variants of shared/fixtures)."""
    return json.loads((FIXTURES / name).read_text())
