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
    assert descriptor["modules"] == {
        "webhooks": [
            {
                "event": "jira:issue_updated",
                "url": "/extensions/jira/issue-updated/",
                "excludeBody": False,
            }
        ]
    }
    assert isinstance(descriptor["description"], str) and descriptor["description"]
    assert isinstance(descriptor["vendor"], dict) and descriptor["vendor"]["name"]


def test_D1_scopes_are_read_only_without_the_email_scope() -> None:
    assert a_describe()["scopes"] == ["read"]


def test_D1_scopes_add_email_addresses_with_the_email_scope() -> None:
    assert a_describe(use_email_scope=True)["scopes"] == ["read", "access_email_addresses"]
