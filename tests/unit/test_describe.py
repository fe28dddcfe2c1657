"""D1: the descriptor is built from settings alone."""

from __future__ import annotations

from core.describe import describe
from core.model.settings import AppSettings


def a_describe(**kwargs: object) -> dict[str, object]:
    values: dict[str, object] = {"base_url": "https://app.example.com", "app_key": "app.jira"}
    values.update(kwargs)
    return describe(AppSettings(**values))  # type: ignore[arg-type]


def test_D1_descriptor_has_every_field() -> None:
    descriptor = a_describe(app_name="Sentry Test")
    assert descriptor["name"] == "Sentry Test"
    assert descriptor["key"] == "app.jira"
    assert descriptor["baseUrl"] == "https://app.example.com"
    assert descriptor["authentication"] == {"type": "jwt"}
    assert descriptor["lifecycle"] == {
        "installed": "/extensions/jira/installed/",
        "uninstalled": "/extensions/jira/uninstalled/",
    }
    assert descriptor["apiVersion"] == 1
    assert descriptor["apiMigrations"] == {
        "gdpr": True,
        "context-qsh": True,
        "signed-install": True,
    }
    assert descriptor["modules"]["webhooks"] == [
        {
            "event": "jira:issue_updated",
            "url": "/extensions/jira/issue-updated/",
            "excludeBody": False,
        }
    ]
    # D1: only modules this service serves: the webhook and the §10 pages.
    assert set(descriptor["modules"]) == {
        "webhooks", "postInstallPage", "configurePage", "jiraIssueGlances"}
    assert isinstance(descriptor["description"], str) and descriptor["description"]
    assert isinstance(descriptor["vendor"], dict) and descriptor["vendor"]["name"]


def test_D1_scopes_are_read_only_without_the_email_scope() -> None:
    assert a_describe()["scopes"] == ["read"]


def test_D1_scopes_add_email_addresses_with_the_email_scope() -> None:
    assert a_describe(use_email_scope=True)["scopes"] == ["read", "access_email_addresses"]


def test_D1_section10_configure_and_post_install_pages_are_admin_only() -> None:
    modules = a_describe()["modules"]
    for name in ("postInstallPage", "configurePage"):
        page = modules[name]
        assert page["url"] == "/extensions/jira/configure/"
        assert page["conditions"] == [{"condition": "user_is_admin"}]
        assert page["name"]["value"]


def test_D1_section10_issue_glance_panel_is_the_glance_route_with_the_issue_key() -> None:
    [glance] = a_describe()["modules"]["jiraIssueGlances"]
    assert glance["name"] == {"value": "Sentry"}
    assert glance["target"] == {
        "type": "web_panel",
        "url": "/extensions/jira/issue-glance/?issueKey={issue.key}",
    }
    assert glance["content"]["type"] == "label"
    assert glance["icon"]["url"].startswith("/extensions/jira/static/")


def test_D1_module_keys_are_unique_and_lower_case_dashed() -> None:
    import re

    modules = a_describe()["modules"]
    keys = [modules["postInstallPage"]["key"], modules["configurePage"]["key"]]
    keys += [glance["key"] for glance in modules["jiraIssueGlances"]]
    assert len(set(keys)) == len(keys)
    assert all(re.fullmatch(r"[a-z0-9-]+", key) for key in keys)
