"""SPEC §3 logs: the line formats, the level, and the rate limit on refusal lines (#18)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from adapters.config import ConfigError, load_settings
from adapters.logs import RefusalLog, event, log_startup, start_logging
from tests.support.log_capture import SteppingClock, captured_log, fresh_refusal_log

log = logging.getLogger("sentry_jira.test")


def test_json_lines_are_one_object_each_with_ts_level_event_and_fields() -> None:
    with captured_log("json") as captured:
        event(log, logging.INFO, "install", "app installed", tenant_id=3, client_key="ck-1")
        logging.getLogger("uvicorn.error").info("Started server process")
    first, second = captured.events()
    assert first["event"] == "install" and first["level"] == "info"
    assert first["tenant_id"] == 3 and first["client_key"] == "ck-1"
    assert first["message"] == "app installed"
    assert first["ts"].endswith("Z")
    assert second["event"] == "uvicorn.error"  # a library line: its logger is the event


def test_text_lines_stay_one_line_whatever_a_field_holds() -> None:
    with captured_log("text") as captured:
        event(log, logging.WARNING, "lifecycle_refused", "refused\ninjected",
              reason="two\nlines", status=401, flag=True, missing=None)
    (line,) = captured.lines
    assert " WARNING lifecycle_refused " in line
    assert 'reason="two\\nlines"' in line and "status=401" in line
    assert "flag=true" in line and "missing=-" in line
    assert "\n" not in line


def test_a_long_field_is_cut() -> None:
    with captured_log("json") as captured:
        event(log, logging.INFO, "x", "m", reason="a" * 10_000)
    assert len(captured.events()[0]["reason"]) < 400


def test_the_level_drops_lines_below_it() -> None:
    with captured_log("json", level="WARNING") as captured:
        event(log, logging.INFO, "quiet", "not written")
        event(log, logging.WARNING, "loud", "written")
    assert [line["event"] for line in captured.events()] == ["loud"]


@pytest.mark.parametrize(
    ("variable", "value"),
    [("SENTRY_JIRA_LOG_FORMAT", "xml"), ("SENTRY_JIRA_LOG_LEVEL", "verbose")],
)
def test_a_bad_log_setting_is_a_configuration_error_naming_the_variable(
    variable: str, value: str
) -> None:
    with pytest.raises(ConfigError) as raised:
        load_settings({variable: value})
    assert raised.value.variable == variable


def test_log_settings_are_read() -> None:
    settings = load_settings({"SENTRY_JIRA_LOG_FORMAT": "JSON", "SENTRY_JIRA_LOG_LEVEL": "debug"})
    assert (settings.log_format, settings.log_level) == ("json", "DEBUG")
    defaults = load_settings({})
    assert (defaults.log_format, defaults.log_level) == ("text", "INFO")


def test_10_000_refusals_write_a_bounded_number_of_lines_and_count_the_rest() -> None:
    with captured_log("json") as captured:
        limiter = fresh_refusal_log()
        written = sum(
            limiter.refused("lifecycle_refused", "refused", reason="the token is malformed")
            for _ in range(10_000)
        )
    lines = captured.named("lifecycle_refused")
    assert len(lines) == written
    assert 20 <= written <= 20 + 10 + 1  # the burst, then 1 a second over 10 s
    suppressed = sum(line.get("suppressed", 0) for line in lines)
    # What was not written is counted on the lines that were (all but the tail after the
    # last written line).
    assert written + suppressed <= 10_000
    assert written + suppressed >= 10_000 - 1_000


def test_each_event_kind_has_its_own_bucket() -> None:
    with captured_log("json") as captured:
        limiter = RefusalLog(log, rate=1.0, burst=2, clock=SteppingClock())
        for _ in range(100):
            limiter.refused("lifecycle_refused", "a")
        limiter.refused("other_refused", "b")
    assert [line["event"] for line in captured.events()].count("other_refused") == 1


def test_startup_line_names_the_setup_without_credentials(tmp_path: Path) -> None:
    settings = load_settings({
        "SENTRY_JIRA_DATABASE": str(tmp_path / "jira.db"),
        "SENTRY_JIRA_SECRET_KEY": "hunter2hunter2hunter2hunter2hunter2hunter2x=",
        "SENTRY_JIRA_ADMIN_TOKEN": "a-long-admin-token-0123456789",
        "SENTRY_JIRA_WORKER": "false",
        "SENTRY_JIRA_METRICS": "token",
    })
    with captured_log("json") as captured:
        log_startup(settings, process="serve", transports=("connect",))
    startup, warning = captured.events()
    assert startup["event"] == "startup"
    assert startup["database"] == "sqlite"
    assert startup["database_location"] == str(tmp_path / "jira.db")
    assert (startup["admin_api"], startup["worker"]) == ("on", "off")
    assert startup["metrics"] == "token"  # opted in: /metrics behind a token (the admin one)
    assert startup["transports"] == "connect"
    assert startup["base_url"] == "http://127.0.0.1:8080"
    assert "hunter2" not in json.dumps(captured.events())
    assert "a-long-admin-token" not in json.dumps(captured.events())
    # http://127.0.0.1 cannot be reached by Jira: said at start-up.
    assert warning["event"] == "config_warning" and warning["level"] == "warning"
    assert warning["variable"] == "SENTRY_JIRA_BASE_URL"


def test_a_public_base_url_gets_no_loopback_warning() -> None:
    settings = load_settings({"SENTRY_JIRA_BASE_URL": "https://jira-app.example.com"})
    with captured_log("json") as captured:
        log_startup(settings, process="worker", transports=())
    assert [line["event"] for line in captured.events()] == ["startup"]


def test_unknown_variables_are_warned_about_with_the_closest_known_name() -> None:
    settings = load_settings({"SENTRY_JIRA_ADMIN_TOKENS": "x", "SENTRY_JIRA_ZZZ": "1",
                              "SENTRY_JIRA_LOG_FORMAT": "json"})
    assert settings.unknown_variables == (
        ("SENTRY_JIRA_ADMIN_TOKENS", "SENTRY_JIRA_ADMIN_TOKEN"),
        ("SENTRY_JIRA_ZZZ", None),
    )
    with captured_log("json") as captured:
        start_logging(settings, stream=captured.stream)
    first, second = captured.named("config_warning")
    assert first["variable"] == "SENTRY_JIRA_ADMIN_TOKENS"
    assert first["closest"] == "SENTRY_JIRA_ADMIN_TOKEN"
    assert "did you mean SENTRY_JIRA_ADMIN_TOKEN?" in first["message"]
    assert second["variable"] == "SENTRY_JIRA_ZZZ" and second["closest"] is None


def test_known_variables_give_no_warning() -> None:
    assert load_settings({"SENTRY_JIRA_LOG_LEVEL": "info", "SENTRY_JIRA_WORKER": "on",
                          "SENTRY_JIRA_SENTRY_TOKEN": "x"}).unknown_variables == ()
