"""README "Install with Forge" (#14, §8.2): the commands deploy and install to production, the
placeholder app id is one the CLI accepts, and every scope a manifest can ask for is
explained there."""

from __future__ import annotations

import re

import attrs

from core.forge_manifest import forge_manifest, is_forge_app_id
from core.model.settings import AppSettings
from tests.support.paths import REPO

APP_ID = "ari:cloud:ecosystem::app/406d303d-0393-4ec4-ad7c-1435be94583a"


def forge_section() -> str:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    return text.split("\n## Install with Forge\n", 1)[1].split("\n## ", 1)[0]


def test_8_2_the_forge_steps_deploy_and_install_to_production() -> None:
    (commands,) = re.findall(r"```sh\n(.*?)```", forge_section(), flags=re.DOTALL)
    lines = [line.strip() for line in commands.splitlines()]
    assert "forge register sentry-jira" in lines
    assert "sentry-jira forge manifest --out manifest.yml" in " ".join(lines)
    assert "forge deploy -e production" in lines
    assert any(line.startswith("forge install -e production ") for line in lines)
    order = [next(i for i, line in enumerate(lines) if line.startswith(prefix))
             for prefix in ("forge register", "forge deploy", "forge install")]
    assert order == sorted(order)
    # the placeholder that `forge register` replaces must be an id the CLI accepts
    placeholder = re.findall(r"SENTRY_JIRA_FORGE_APP_ID=(ari:\S+) ", commands)[0]
    assert is_forge_app_id(placeholder), placeholder


def test_8_2_every_scope_a_manifest_can_ask_for_is_explained() -> None:
    settings = AppSettings(base_url="https://a.example.com", app_key="a.jira",
                           use_email_scope=True)
    manifest = forge_manifest(settings, app_id=APP_ID, connect_modules=True)
    section = forge_section()
    for scope in manifest["permissions"]["scopes"]:
        assert f"`{scope}`" in section, scope
    plain = forge_manifest(attrs.evolve(settings, use_email_scope=False), app_id=APP_ID)
    assert len(plain["permissions"]["scopes"]) == 3
