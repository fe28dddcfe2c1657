"""docs/deploy.md (#18): the systemd unit it gives runs the installed console script as a
dedicated user, reads an environment file and restarts on failure; the proxy snippets pass
no X-Forwarded-* header."""

from __future__ import annotations

import configparser
import re

from tests.support.paths import REPO

DEPLOY = REPO / "docs" / "deploy.md"


def fenced(language: str) -> list[str]:
    text = DEPLOY.read_text(encoding="utf-8")
    return re.findall(rf"```{language}\n(.*?)```", text, flags=re.DOTALL)


def the_unit() -> configparser.ConfigParser:
    (unit,) = fenced("ini")
    parser = configparser.ConfigParser(strict=True, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(unit)
    return parser


def test_the_systemd_unit_runs_the_installed_console_script() -> None:
    service = the_unit()["Service"]
    command = service["ExecStart"].split()
    assert command[0].startswith("/") and command[0].endswith("/bin/sentry-jira")
    assert command[1] == "serve"
    assert "127.0.0.1" in command  # behind the proxy, loopback only


def test_the_systemd_unit_runs_as_a_dedicated_user_with_an_environment_file() -> None:
    unit = the_unit()
    service = unit["Service"]
    assert service["User"] not in ("", "root")
    assert service["EnvironmentFile"].startswith("/")
    assert service["Restart"] == "on-failure"
    assert unit["Install"]["WantedBy"] == "multi-user.target"


def test_the_install_in_the_doc_uses_the_pinned_runtime_install() -> None:
    text = DEPLOY.read_text(encoding="utf-8")
    assert "pip install -c constraints.txt ." in text
    assert "[dev]" not in text


def test_the_proxy_snippets_forward_no_x_forwarded_headers() -> None:
    snippets = [*fenced("nginx"), DEPLOY.read_text().split("Caddy (", 1)[1].split("nginx:")[0]]
    assert len(snippets) == 2
    for snippet in snippets:
        assert "X-Forwarded" not in snippet and "Forwarded" not in snippet
    (nginx,) = fenced("nginx")
    assert "proxy_pass http://127.0.0.1:8080" in nginx
