"""SPEC §6: the program in docs/embedding.md runs as written and does what it says."""

from __future__ import annotations

import contextlib
import io
import re

from tests.support.paths import REPO


def test_the_embedding_snippet_runs_and_syncs_without_litestar() -> None:
    text = (REPO / "docs" / "embedding.md").read_text()
    [snippet] = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(snippet, "docs/embedding.md", "exec"), {"__name__": "embedding"})
    assert out.getvalue().splitlines() == [
        "https://jira-app.example.com",
        "accepted",
        "resolved",
        "(APP-123) TypeError in checkout",
    ]
