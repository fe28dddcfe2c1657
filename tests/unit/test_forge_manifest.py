"""SPEC §8.2 (first bullet): the Forge manifest built from settings alone (core, no I/O).

What Atlassian's own validator says about these manifests is tested in
tests/tooling/test_forge_manifest_validator.py; here: the content §8.2 asks for, the keys the
FIT verifier binds routes to, the Connect-on-Forge part derived from describe(), and every
bad input refused.
"""

from __future__ import annotations

from typing import Any

import attrs
import pytest

from core.describe import describe
from core.forge_manifest import (
    FORGE_ENDPOINT_KEYS,
    FORGE_MODULE_KEYS,
    FORGE_REMOTE_KEY,
    FORGE_ROUTE_MODULE_KEYS,
    FORGE_ROUTE_PATHS,
    ForgeManifestError,
    check_unique_module_keys,
    connect_modules_of,
    connect_scopes,
    forge_manifest,
    is_forge_app_id,
    module_keys,
)
from core.model.settings import AppSettings

APP_ID = "ari:cloud:ecosystem::app/406d303d-0393-4ec4-ad7c-1435be94583a"
BASE = AppSettings(base_url="https://sentry-jira.example.com/jira-app", app_key="acme.jira")


def build(settings: AppSettings = BASE, **options: Any) -> dict[str, Any]:
    return forge_manifest(settings, app_id=options.pop("app_id", APP_ID), **options)


def endpoint_of(manifest: dict[str, Any], key: str) -> dict[str, Any]:
    (found,) = [e for e in manifest["modules"]["endpoint"] if e["key"] == key]
    return found


def test_8_2_app_id_runtime_and_one_remote_at_the_base_url_with_its_path() -> None:
    manifest = build()
    assert manifest["app"] == {"id": APP_ID, "runtime": {"name": "nodejs22.x"}}
    (remote,) = manifest["remotes"]
    assert remote["key"] == FORGE_REMOTE_KEY
    assert remote["baseUrl"] == "https://sentry-jira.example.com/jira-app"
    assert "connectModules" not in manifest


@pytest.mark.parametrize(
    ("route", "path"),
    [
        ("issue-updated", "/extensions/jira/forge/issue-updated/"),
        ("lifecycle", "/extensions/jira/forge/lifecycle/"),
        ("uninstall", "/extensions/jira/forge/uninstall/"),
        ("keepalive", "/extensions/jira/forge/keepalive/"),
    ],
)
def test_8_2_each_route_has_an_endpoint_on_the_remote_with_the_app_system_token(
    route: str, path: str
) -> None:
    endpoint = endpoint_of(build(), FORGE_ENDPOINT_KEYS[route])
    assert endpoint == {
        "key": FORGE_ENDPOINT_KEYS[route],
        "remote": FORGE_REMOTE_KEY,
        "route": {"path": path},
        "auth": {"appSystemToken": {"enabled": True}},
    }
    assert FORGE_ROUTE_PATHS[route] == path


def test_8_2_triggers_pre_uninstall_and_hourly_keepalive_point_at_their_routes() -> None:
    modules = build()["modules"]
    assert modules["trigger"] == [
        {"key": FORGE_MODULE_KEYS["issue-updated"],
         "endpoint": FORGE_ENDPOINT_KEYS["issue-updated"],
         "events": ["avi:jira:updated:issue"]},
        {"key": FORGE_MODULE_KEYS["lifecycle"], "endpoint": FORGE_ENDPOINT_KEYS["lifecycle"],
         "events": ["avi:forge:installed:app", "avi:forge:upgraded:app"]},
    ]
    assert modules["preUninstall"] == [
        {"key": FORGE_MODULE_KEYS["uninstall"], "endpoint": FORGE_ENDPOINT_KEYS["uninstall"]}
    ]
    assert modules["scheduledTrigger"] == [
        {"key": FORGE_MODULE_KEYS["keepalive"], "endpoint": FORGE_ENDPOINT_KEYS["keepalive"],
         "interval": "hour"}
    ]
    # Every endpoint is invoked by exactly one module, and nothing points at a missing endpoint.
    invoked = [m["endpoint"] for kind in ("trigger", "preUninstall", "scheduledTrigger")
               for m in modules[kind]]
    assert sorted(invoked) == sorted(e["key"] for e in modules["endpoint"])


def test_8_2_the_route_keys_the_fit_verifier_checks_belong_to_one_route_each() -> None:
    """A FIT minted for one route's module must never pass on another route (replay across
    routes): the accepted `app.module.key` sets are disjoint, and all exist in the manifest."""
    assert set(FORGE_ROUTE_MODULE_KEYS) == set(FORGE_ROUTE_PATHS)
    seen: set[str] = set()
    keys_in_manifest = set(module_keys(build()))
    for route, keys in FORGE_ROUTE_MODULE_KEYS.items():
        assert keys == {FORGE_ENDPOINT_KEYS[route], FORGE_MODULE_KEYS[route]}
        assert not keys & seen, route
        assert keys <= keys_in_manifest
        seen |= keys
    # Forge caps endpoint (and remote) keys at 23 characters.
    assert all(len(key) <= 23 for key in [*FORGE_ENDPOINT_KEYS.values(), FORGE_REMOTE_KEY])


def test_8_2_the_fewest_scopes_and_the_email_scope_only_with_the_email_option() -> None:
    assert build()["permissions"] == {
        "scopes": ["read:app-system-token", "read:jira-work", "read:jira-user"]
    }
    with_email = build(attrs.evolve(BASE, use_email_scope=True))
    assert with_email["permissions"]["scopes"] == [
        "read:app-system-token", "read:jira-work", "read:jira-user", "read:email-address:jira"
    ]


def test_8_2_connect_modules_carry_app_connect_every_descriptor_module_and_connect_scopes() -> None:
    manifest = build(connect_modules=True)
    descriptor = describe(BASE)
    assert manifest["app"]["connect"] == {
        "key": "acme.jira", "remote": FORGE_REMOTE_KEY, "authentication": "jwt"
    }
    connect = manifest["connectModules"]
    assert connect["jira:lifecycle"] == [
        {"key": "connect-lifecycle", **descriptor["lifecycle"]}
    ]
    assert set(connect) == {"jira:lifecycle"} | {f"jira:{t}" for t in descriptor["modules"]}
    (webhook,) = connect["jira:webhooks"]
    assert webhook == {"key": "connect-webhooks-1", **descriptor["modules"]["webhooks"][0]}
    assert manifest["permissions"]["scopes"][-1] == "read:connect-jira"
    with_email = build(attrs.evolve(BASE, use_email_scope=True), connect_modules=True)
    assert with_email["permissions"]["scopes"][-2:] == [
        "read:connect-jira", "access-email-addresses:connect-jira"
    ]


def test_8_2_modules_added_to_the_descriptor_later_flow_into_connect_modules() -> None:
    """§10 pages (a single `configurePage` object, a `jiraIssueGlances` list with keys) are
    converted without changes here: keys kept, single modules become one-entry lists."""
    descriptor = describe(BASE)
    descriptor["modules"]["configurePage"] = {
        "key": "sentry-configure", "url": "/extensions/jira/configure/",
        "name": {"value": "Sentry"}, "conditions": [{"condition": "user_is_admin"}],
    }
    descriptor["modules"]["jiraIssueGlances"] = [
        {"key": "sentry-glance", "name": {"value": "Sentry"},
         "target": {"type": "web_panel",
                    "url": "/extensions/jira/issue-glance/?issueKey={issue.key}"}},
    ]
    connect = connect_modules_of(descriptor)
    assert connect["jira:configurePage"] == [descriptor["modules"]["configurePage"]]
    assert connect["jira:jiraIssueGlances"] == descriptor["modules"]["jiraIssueGlances"]
    # keyless entries are numbered per module type
    descriptor["modules"]["webhooks"].append({"event": "jira:issue_deleted", "url": "/x/"})
    assert [w["key"] for w in connect_modules_of(descriptor)["jira:webhooks"]] == [
        "connect-webhooks-1", "connect-webhooks-2"
    ]


def test_connect_scopes_are_named_as_forge_names_them() -> None:
    assert connect_scopes(["read", "access_email_addresses", "WRITE"]) == [
        "read:connect-jira", "access-email-addresses:connect-jira", "write:connect-jira"
    ]


@pytest.mark.parametrize(
    "app_id",
    [
        None,
        "",
        "406d303d-0393-4ec4-ad7c-1435be94583a",
        "ari:cloud:ecosystem::app/406D303D-0393-4EC4-AD7C-1435BE94583A",
        "ari:cloud:ecosystem::app/406d303d-0393-4ec4-ad7c-1435be94583a\n",
        "ari:cloud:ecosystem::app/406d303d-0393-4ec4-ad7c-1435be94583a/x",
        "ari:cloud:ecosystem::installation/406d303d-0393-4ec4-ad7c-1435be94583a",
        "ari:cloud:ecosystem::app/406d303d0393-4ec4-ad7c-1435be94583a",
    ],
)
def test_8_2_an_app_id_not_shaped_as_the_forge_ari_is_refused(app_id: str | None) -> None:
    with pytest.raises(ForgeManifestError, match="SENTRY_JIRA_FORGE_APP_ID"):
        build(app_id=app_id)
    assert app_id is None or not is_forge_app_id(app_id)


@pytest.mark.parametrize("base_url", ["http://sentry-jira.example.com", "http://127.0.0.1:8080"])
def test_8_2_a_base_url_forge_cannot_call_over_https_is_refused(base_url: str) -> None:
    with pytest.raises(ForgeManifestError, match="SENTRY_JIRA_BASE_URL"):
        build(attrs.evolve(BASE, base_url=base_url))


def test_module_keys_unique_across_modules_and_connect_modules_or_refused() -> None:
    manifest = build(connect_modules=True)
    keys = module_keys(manifest)
    assert len(keys) == len(set(keys))
    manifest["connectModules"]["jira:webhooks"][0]["key"] = FORGE_MODULE_KEYS["uninstall"]
    with pytest.raises(ForgeManifestError, match="used twice"):
        check_unique_module_keys(manifest)
    manifest["connectModules"]["jira:webhooks"][0]["key"] = "issue updated"
    with pytest.raises(ForgeManifestError, match="letters, digits"):
        check_unique_module_keys(manifest)
