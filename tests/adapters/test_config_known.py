"""SPEC §3 / §3.1 (#18): one list of known variables, the README's table agrees with it."""

from __future__ import annotations

import re

from adapters.config import KNOWN_VARIABLES, PREFIX, load_settings
from tests.support.paths import REPO

ROW = re.compile(r"^\| `(SENTRY_JIRA_[A-Z_]+)` \|")


def readme_table_variables() -> list[str]:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text.split("\n## Configuration\n", 1)[1].split("\n## ", 1)[0]
    return [m.group(1) for line in section.splitlines() if (m := ROW.match(line))]


def test_the_readme_configuration_table_lists_exactly_the_known_variables() -> None:
    listed = readme_table_variables()
    assert len(listed) == len(set(listed)), "a variable is listed twice"
    assert sorted(listed) == sorted(KNOWN_VARIABLES)


def test_every_known_variable_is_not_reported_as_unknown() -> None:
    environ = dict.fromkeys(KNOWN_VARIABLES, "")
    assert load_settings(environ).unknown_variables == ()


def test_a_misspelt_variable_names_its_closest_known_one() -> None:
    found = load_settings({PREFIX + "ADMIN_TOKENS": "x", PREFIX + "DATABSE": "y",
                           "OTHER_VARIABLE": "z"}).unknown_variables
    assert found == (
        (PREFIX + "ADMIN_TOKENS", PREFIX + "ADMIN_TOKEN"),
        (PREFIX + "DATABSE", PREFIX + "DATABASE"),
    )
