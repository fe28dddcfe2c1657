"""The benchmark's modules import, and its pure helpers compute what the report relies on.

Nothing here runs a server or times anything: `scripts/bench` measures, these only make
sure an import error or a broken parser shows up in CI rather than on the next bench run.
"""

from __future__ import annotations

import importlib
import json
import os

import jwt
import pytest
from bench.install_latency import install_request
from bench.report import MET, MISSED, NOT_MEASURED, cpu_model, render_table, summary_rows
from bench.scale import link_rows, sending_tenants
from bench.search_overhead import ISSUE_KEY, jira_request
from bench.wrk import (
    lua_string,
    median,
    parse_wrk,
    percentile,
    process_cpu_seconds,
    stat_cpu_seconds,
    wrk_script,
)

from core.connect.qsh import query_string_hash
from core.describe import INSTALLED_PATH
from core.search.search import text_search_jql
from tests.support.connect_tokens import signing_key

WRK_OUTPUT = """Running 8s test @ http://127.0.0.1:18765/extensions/jira/issue-updated/
  1 threads and 32 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     4.39ms  583.17us  24.80ms   70.13%
    Req/Sec     7.38k    71.69     7.53k    80.00%
  Latency Distribution
     50%    4.28ms
     75%    4.69ms
     90%    6.06ms
     99%   10.12ms
  53696 requests in 8.00s, 4.14MB read
  Non-2xx or 3xx responses: 3
Requests/sec:   6712.00
Transfer/sec:    530.12KB
"""


# Each module with the name the runner, `scripts/bench` or a subprocess command line uses.
BENCH_ENTRIES = [
    ("bench.run", "main"),
    ("bench.wrk", "parse_wrk"),
    ("bench.ack", "measure_ack"),
    ("bench.pg_ack", "measure_pg_ack"),
    ("bench.pg_e2e", "measure_pg_e2e"),
    ("bench.webhook_ack", "measure_webhook_ack"),
    ("bench.forge_ack", "measure_forge_ack"),
    ("bench.scale", "measure_scale"),
    ("bench.install_latency", "measure_install_latency"),
    ("bench.search_overhead", "measure_search_overhead"),
    ("bench.report", "render_table"),
    ("bench.empty_app", "app"),  # the ASGI app bench/ack.py serves as the empty baseline
]


@pytest.mark.parametrize(
    ("module", "entry"), [pytest.param(m, e, id=m) for m, e in BENCH_ENTRIES]
)
def test_every_bench_module_imports(module: str, entry: str) -> None:
    assert callable(getattr(importlib.import_module(module), entry, None))


def test_parse_wrk_reads_rate_count_latencies_and_refusals() -> None:
    figures = parse_wrk(WRK_OUTPUT)
    assert figures == {"rps": 6712.0, "requests": 53696.0, "p50": 4.28, "p99": 10.12, "non2xx": 3.0}


def test_parse_wrk_converts_microseconds_and_seconds_and_refuses_missing_latencies() -> None:
    text = WRK_OUTPUT.replace("4.28ms", "850.00us").replace("10.12ms", "1.50s")
    figures = parse_wrk(text)
    assert figures["p50"] == pytest.approx(0.85)
    assert figures["p99"] == pytest.approx(1500.0)
    with pytest.raises(RuntimeError):
        parse_wrk("Requests/sec: 10\n")


def test_cpu_seconds_are_utime_plus_stime_even_when_the_command_holds_parentheses() -> None:
    fields_after_command = ["S", *["0"] * 10, "250", "50", *["0"] * 30]
    stat = "4242 (python (a) b) " + " ".join(fields_after_command)
    assert stat_cpu_seconds(stat, 100) == pytest.approx(3.0)


def test_cpu_seconds_of_this_process_agree_with_os_times() -> None:
    if not os.path.exists("/proc/self/stat"):
        pytest.skip("no /proc on this system")
    sum(n * n for n in range(200_000))  # some CPU time to read
    times = os.times()
    assert process_cpu_seconds(os.getpid()) == pytest.approx(times.user + times.system, abs=0.05)


def test_wrk_script_escapes_values_and_rotates_every_listed_header() -> None:
    script = wrk_script(
        {"Content-Type": "application/json"},
        b'{"a": "b\\n"}',
        {"Authorization": ["JWT one", 'JWT "two"']},
    )
    assert 'wrk.body = "{\\"a\\": \\"b\\\\n\\"}"' in script
    assert '"JWT one"' in script and '"JWT \\"two\\""' in script
    assert "X-Atlassian-Webhook-Identifier" in script
    assert lua_string("a\nb") == '"a\\nb"'
    with pytest.raises(ValueError):
        wrk_script({}, b"", {"Authorization": []})


def test_percentiles_are_nearest_rank_and_medians_average_the_middle_pair() -> None:
    values = [float(n) for n in range(1, 101)]
    assert percentile(values, 0.5) == 50.0
    assert percentile(values, 0.95) == 95.0
    assert percentile([7.0], 0.95) == 7.0
    assert median([3.0, 1.0, 2.0]) == 2.0
    assert median([4.0, 1.0, 3.0, 2.0]) == 2.5
    with pytest.raises(ValueError):
        percentile([], 0.5)


def test_sending_tenants_are_spread_over_the_whole_table() -> None:
    senders = sending_tenants(100_000, 1_000)
    assert len(set(senders)) == 1_000
    assert senders[0] == 0 and senders[-1] == 99_900
    with pytest.raises(ValueError):
        sending_tenants(10, 11)


def test_link_rows_of_a_tenant_are_distinct_and_include_the_fixture_key() -> None:
    rows = list(link_rows(7, 50))
    assert len(set(rows)) == 50
    assert {row[:2] for row in rows} == {(8, "org-000007")}
    assert rows[0][2] == "APP-123"


def test_the_direct_jira_request_is_the_one_the_search_endpoint_makes() -> None:
    assert jira_request(ISSUE_KEY) == ("/rest/api/3/issue/APP-123", [("fields", "summary")])
    path, params = jira_request("crash on start")
    assert path == "/rest/api/3/search/jql"
    assert ("jql", text_search_jql("crash on start")) in params


def test_install_requests_are_signed_for_the_app_with_the_given_kid() -> None:
    key = signing_key()
    body, headers = install_request(
        app_key="127.0.0.1.jira",
        base_url="http://127.0.0.1:9",
        client_key="bench-cold-1",
        kid="bench-cold-1",
        key=key,
    )
    token = headers["Authorization"].removeprefix("JWT ")
    assert jwt.get_unverified_header(token)["kid"] == "bench-cold-1"
    claims = jwt.decode(token, key.public_pem, algorithms=["RS256"], audience="http://127.0.0.1:9")
    assert claims["iss"] == "bench-cold-1"
    assert claims["qsh"] == query_string_hash("POST", INSTALLED_PATH, "")
    assert b'"clientKey": "bench-cold-1"' in body


def test_the_summary_marks_each_target_met_missed_or_not_measured() -> None:
    assert {row.verdict for row in summary_rows({})} == {NOT_MEASURED}
    results = {
        "ack": {"ratio": 0.55, "ack": {"p99": 9.0}, "empty": {"p99": 5.0}},
        "scale": {"cost": 0.02, "cpu_cost": 0.01},
        "sync": {"p95": 1500.0},
        "install": {
            "installs": 5,
            "cold_p50": 1,
            "cold_p95": 2,
            "warm_p50": 1,
            "warm_p95": 1,
            "cold_fetches": 5,
            "warm_fetches": 2,
        },
    }
    verdicts = {row.figure: row.verdict for row in summary_rows(results)}
    assert verdicts["ack rate / empty handler rate"] == MISSED
    assert verdicts["ack p99 at 32 connections"] == MET
    assert verdicts["ack throughput cost, 100k tenants + 1M links"] == MET
    assert verdicts["ack → Sentry write p95"] == MISSED
    assert verdicts["key fetches, 5 cold installs"] == MET
    assert verdicts["key fetches, 5 warm installs"] == MISSED
    table = render_table(summary_rows(results))
    assert table.splitlines()[0].startswith("figure")


def test_cpu_model_is_read_from_cpuinfo() -> None:
    assert cpu_model("processor\t: 0\nmodel name\t: AMD EPYC\n") == "AMD EPYC"
    assert cpu_model("processor\t: 0\n") == "unknown"


def test_the_webhook_bench_bodies_are_unique_json_deliveries() -> None:
    """The Lua script builds `prefix .. digits .. suffix`: valid JSON with a numeric timestamp."""
    from bench.webhook_ack import body_parts, lua_script

    prefix, suffix = body_parts()
    first = json.loads(prefix + "10000000001" + suffix)
    second = json.loads(prefix + "10000000002" + suffix)
    assert first["timestamp"] == 10000000001 and second["timestamp"] == 10000000002
    assert first["changelog"] == second["changelog"]
    assert first["webhookEvent"] == "jira:issue_updated"
    assert lua_script("a-secret") != lua_script("a-secret")  # a fresh run nonce every script
