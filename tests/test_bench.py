"""The benchmark's pure parts (bench/): percentiles, the ratio table and its JSON, the no-loss
reconciliation, wrk's output; and, against tiny stdlib servers on 127.0.0.1, the Lua scripts
and the no-loss driver's retries; and, in the test database, the check that the summary rows
are those the stored ratings give."""

import json
import os
import shutil
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from bench.load import measure, phase_duration, wrk_command
from bench.lossless import Driver, Expected, StoredRating, reconcile
from bench.stats import (
    CLIENT_PAGE_BUDGET_BYTES,
    FIRST_VISIT_BUDGET_BYTES,
    REPEAT_VISIT_BUDGET_BYTES,
    SCHEMA,
    Measurement,
    compare_rounds,
    format_table,
    fresh_for,
    missed_targets,
    page_weight,
    parse_wrk,
    percentile,
    ratio_rows,
    repeat_bytes,
    results_document,
    target_verdict,
    visit_weight,
)
from bench.web import header_bytes, loopback

# -- percentiles --------------------------------------------------------------------------------


def test_percentile_interpolates_between_closest_ranks():
    assert percentile([1, 2, 3, 4], 50) == 2.5
    assert percentile(range(1, 101), 95) == pytest.approx(95.05)
    assert percentile([4, 1, 3, 2], 0) == 1
    assert percentile([4, 1, 3, 2], 100) == 4
    assert percentile([7.5], 95) == 7.5


def test_percentile_refuses_nothing_and_out_of_range():
    with pytest.raises(ValueError):
        percentile([], 50)
    with pytest.raises(ValueError):
        percentile([1, 2], 101)


# -- the ratio table and the results document ----------------------------------------------------


def measurement(name, p50, p95, target=None, requests=100, errors=0):
    return Measurement(
        name=name,
        label=name.replace("_", " "),
        method="GET",
        path=f"/{name}/",
        requests=requests,
        duration_s=10.0,
        p50_ms=p50,
        p95_ms=p95,
        errors=errors,
        target_p95_ratio=target,
    )


def rows():
    return ratio_rows(
        [
            measurement("healthz", 2.0, 4.0, requests=5000),
            measurement("rating_submit", 5.0, 10.0, target=3.0),
            measurement("caseload", 10.0, 40.0, target=8.0, errors=2),
            measurement("export", 100.0, 200.0),
        ],
        "healthz",
    )


def test_ratio_rows_divide_by_the_floor_and_judge_targets():
    by_name = {row["name"]: row for row in rows()}
    assert by_name["healthz"]["p50_ratio"] == 1.0 and by_name["healthz"]["p95_ratio"] == 1.0
    assert by_name["rating_submit"]["p50_ratio"] == 2.5
    assert by_name["rating_submit"]["p95_ratio"] == 2.5
    assert by_name["rating_submit"]["meets_target"] is True
    assert by_name["caseload"]["p95_ratio"] == 10.0
    assert by_name["caseload"]["meets_target"] is False
    assert by_name["export"]["meets_target"] is None
    assert by_name["healthz"]["rps"] == 500.0


def test_ratio_rows_need_the_floor():
    with pytest.raises(ValueError):
        ratio_rows([measurement("caseload", 1.0, 2.0)], "healthz")


def test_the_table_shows_ratios_targets_and_misses():
    table = format_table(rows())
    lines = table.splitlines()
    assert lines[0].split()[0] == "endpoint" and set(lines[1]) <= {"-", " "}
    caseload = next(line for line in lines if line.startswith("caseload"))
    assert "10.0" in caseload and "≤ 8×" in caseload and caseload.endswith("MISSED by 1.25×")
    assert next(line for line in lines if line.startswith("rating submit")).endswith("ok")


def test_the_results_document_has_a_fixed_shape():
    lossless = [{"name": "one", "ok": True}, {"name": "kill", "ok": False}]
    weight = page_weight(6000, [{"path": "/static/a.css", "bytes": 2000, "encoding": "gzip"}])
    arguments = {
        "started_at": "2026-11-25T00:00:00+00:00",
        "finished_at": "2026-11-25T00:10:00+00:00",
        "duration_s": 600.04,
        "environment": {"cpus": 2},
        "dataset": {"name": "scale"},
        "personas": {},
        "load": {"tool": "wrk"},
        "floor": "healthz",
        "floor_check": "export",
        "rows": rows(),
        "client_page": weight,
        "lossless": lossless,
    }
    document = results_document(**arguments)
    assert document["expected_response"] is None
    assert json.loads(json.dumps(document)) == document
    assert document["schema"] == SCHEMA and document["duration_s"] == 600.0
    assert document["endpoints"][0]["name"] == "healthz"
    assert {"p50_ratio", "p95_ratio", "p50_ms", "p95_ms", "rps", "errors"} <= set(
        document["endpoints"][1]
    )
    assert document["summary"] == {
        "targets": {"rating_submit": True, "caseload": False},
        "all_targets_met": False,
        "floor_drift_p50": 50.0,
        "signed_in_floor_drift_p50": None,
        "missed_targets": {"caseload": 1.25},
        "page_weights_within_budget": None,
        "client_page_within_budget": True,
        "lossless_ok": False,
        "expected_response_within_targets": None,
    }
    assert weight["total_bytes"] == 8000 and weight["budget_bytes"] == CLIENT_PAGE_BUDGET_BYTES
    fitted = {"version": 3, "within_targets": False}
    document = results_document(**{**arguments, "expected_response": fitted})
    assert document["expected_response"] == fitted
    assert document["summary"]["expected_response_within_targets"] is False


def test_page_weight_over_budget():
    assert not page_weight(90_000, [{"path": "/static/x.js", "bytes": 20_000}])["within_budget"]


# -- two floors: ratios to each, targets against the signed-in one ---------------------------------


def two_floor_rows():
    return ratio_rows(
        [
            measurement("healthz", 2.0, 4.0),
            measurement("client_page", 5.0, 10.0),
            measurement("rating_submit", 10.0, 20.0, target=2.0),
            measurement("caseload", 20.0, 45.0, target=3.0),
            measurement("export", 100.0, 200.0),
        ],
        "healthz",
        "client_page",
    )


def test_every_row_has_its_ratios_to_both_floors():
    by_name = {row["name"]: row for row in two_floor_rows()}
    caseload = by_name["caseload"]
    assert (caseload["p50_ratio"], caseload["p95_ratio"]) == (10.0, 11.25)
    assert (caseload["p50_signed_in_ratio"], caseload["p95_signed_in_ratio"]) == (4.0, 4.5)
    floor = by_name["client_page"]
    assert (floor["p50_ratio"], floor["p95_ratio"]) == (2.5, 2.5)
    assert (floor["p50_signed_in_ratio"], floor["p95_signed_in_ratio"]) == (1.0, 1.0)
    assert by_name["export"]["p95_signed_in_ratio"] == 20.0


def test_targets_are_judged_against_the_signed_in_floor():
    by_name = {row["name"]: row for row in two_floor_rows()}
    # 20 ms is exactly twice the signed-in floor's 10 ms (and five times /healthz's): met.
    submit = by_name["rating_submit"]
    assert submit["meets_target"] is True and submit["missed_by"] is None
    assert submit["target_p95_ms"] == 20.0 and submit["target_floor"] == "client_page"
    caseload = by_name["caseload"]
    assert caseload["meets_target"] is False
    assert caseload["target_p95_ms"] == 30.0 and caseload["missed_by"] == 1.5
    assert by_name["export"]["meets_target"] is None
    assert by_name["export"]["target_floor"] is None


def test_a_target_verdict_says_by_how_much_it_is_missed():
    assert target_verdict(31.0, 10.0, 3.0) == {
        "meets_target": False,
        "target_p95_ms": 30.0,
        "missed_by": 1.03,
    }
    assert target_verdict(30.0, 10.0, 3.0)["meets_target"] is True
    assert target_verdict(99.0, 10.0, None) == {
        "meets_target": None,
        "target_p95_ms": None,
        "missed_by": None,
    }


def test_the_report_names_each_missed_target():
    assert missed_targets(two_floor_rows()) == [
        "caseload: p95 45.0 ms against ≤ 30.0 ms (3× client_page): 15.0 ms over, 1.50× the target"
    ]


def test_the_table_shows_the_signed_in_ratios():
    lines = format_table(two_floor_rows()).splitlines()
    assert "p50 ×signed-in" in lines[0] and "p95 ×signed-in" in lines[0]
    caseload = next(line for line in lines if line.startswith("caseload")).split()
    assert caseload[-9:] == ["10.0", "11.2", "4.0", "4.5", "≤", "3×", "MISSED", "by", "1.50×"]
    # No signed-in floor: the table keeps its old columns.
    assert "signed-in" not in format_table(rows())


def test_the_document_carries_both_floors_drift_and_missed_targets():
    table = two_floor_rows()
    end = ratio_rows(
        [measurement("healthz", 2.0, 4.0), measurement("client_page_end", 6.0, 12.0)], "healthz"
    )[1]
    document = results_document(
        started_at="2026-11-30T00:00:00+00:00",
        finished_at="2026-11-30T00:10:00+00:00",
        duration_s=600,
        environment={},
        dataset={},
        personas={},
        load={},
        floor="healthz",
        signed_in_floor="client_page",
        signed_in_floor_check="client_page_end",
        rows=[*table, end],
        client_page=None,
        lossless=[],
        page_weights={"team": visit_weight("/team/", {"bytes": 70_000}, [])},
        redis={"url": "redis://127.0.0.1:6379/9"},
        extra={"skipped": {"staff": "/staff/ answered 404 to scale-admin"}},
    )
    assert document["signed_in_floor"] == "client_page"
    assert document["redis"] == {"url": "redis://127.0.0.1:6379/9"}
    assert document["skipped"] == {"staff": "/staff/ answered 404 to scale-admin"}
    summary = document["summary"]
    assert summary["signed_in_floor_drift_p50"] == 1.2
    assert summary["missed_targets"] == {"caseload": 1.5}
    # 70,000 bytes again on every visit: over the repeat budget.
    assert summary["page_weights_within_budget"] is False


# -- page weight: first visit, repeat visit --------------------------------------------------------

YEAR_IMMUTABLE = "max-age=315360000, public, immutable"


def test_fresh_for_reads_max_age_and_the_directives_that_forbid_reuse():
    assert fresh_for(YEAR_IMMUTABLE) == 315360000
    assert fresh_for("max-age=60, public") == 60
    assert fresh_for('max-age="600"') == 600
    assert fresh_for("no-cache, max-age=600") == 0
    assert fresh_for("private") == 0
    assert fresh_for("max-age=soon") == 0
    assert fresh_for(None) == 0


def test_a_repeat_visit_sends_nothing_for_a_file_fresh_for_a_week():
    week = f"max-age={7 * 24 * 3600}"
    assert repeat_bytes({"bytes": 1_100_000, "cache_control": YEAR_IMMUTABLE}) == 0
    assert repeat_bytes({"bytes": 1_100_000, "cache_control": week}) == 0
    # A day is shorter than the gap between weekly sessions: asked again, answered 304.
    day = {"bytes": 5_000, "cache_control": "max-age=86400", "revalidated_bytes": 310}
    assert repeat_bytes(day) == 310
    # No validator: all of it again. no-store: never reused, whatever max-age says.
    assert repeat_bytes({"bytes": 5_000, "cache_control": "max-age=60"}) == 5_000
    stored = {"bytes": 9_000, "cache_control": "no-store, max-age=999999999"}
    assert repeat_bytes({**stored, "revalidated_bytes": 200}) == 200
    assert repeat_bytes(stored) == 9_000


def test_visit_weight_adds_first_and_repeat_bytes_exactly():
    html = {"bytes": 31_000, "cache_control": "private", "encoding": "identity"}
    assets = [
        {"path": "/static/plotly/plotly.min.1a2b.js", "bytes": 1_111_400,
         "cache_control": YEAR_IMMUTABLE},
        {"path": "/static/css/alliance.css", "bytes": 4_600,
         "cache_control": "max-age=60, public", "revalidated_bytes": 300},
        {"path": "/static/favicon.svg", "bytes": 900, "cache_control": None},
    ]  # fmt: skip
    weight = visit_weight("/clients/205/", html, assets)
    assert weight["first_visit_bytes"] == 31_000 + 1_111_400 + 4_600 + 900 == 1_147_900
    assert weight["repeat_visit_bytes"] == 31_000 + 0 + 300 + 900 == 32_200
    assert [a["repeat_bytes"] for a in weight["assets"]] == [0, 300, 900]
    assert weight["html"]["path"] == "/clients/205/" and weight["html"]["repeat_bytes"] == 31_000
    assert weight["first_budget_bytes"] == FIRST_VISIT_BUDGET_BYTES == 1_500_000
    assert weight["repeat_budget_bytes"] == REPEAT_VISIT_BUDGET_BYTES == 60_000
    assert weight["first_within_budget"] and weight["repeat_within_budget"]
    # plotly.js in gzip rather than Brotli: 1,467,745 bytes, over the first-visit budget.
    gzipped = [{**assets[0], "bytes": 1_467_745}, *assets[1:]]
    over = visit_weight("/clients/205/", html, gzipped)
    assert over["first_visit_bytes"] == 1_504_245 and not over["first_within_budget"]
    assert visit_weight("/rate/", html, [], first_budget=30_000)["first_within_budget"] is False


def test_the_client_page_keeps_its_own_budget_on_css_and_js_bodies():
    from bench.run import client_page_weight

    visit = visit_weight(
        "/rate/",
        {"bytes": 9_400, "body_bytes": 9_000, "encoding": "identity"},
        [
            {"path": "/static/bootstrap/css/bootstrap.min.1.css", "bytes": 24_500,
             "body_bytes": 24_000, "encoding": "br", "cache_control": YEAR_IMMUTABLE},
            {"path": "/static/js/rate.2.js", "bytes": 1_500, "body_bytes": 1_100,
             "encoding": "br", "cache_control": YEAR_IMMUTABLE},
            {"path": "/static/favicon.3.svg", "bytes": 800, "body_bytes": 500,
             "encoding": "br", "cache_control": YEAR_IMMUTABLE},
        ],
    )  # fmt: skip
    weight = client_page_weight(visit)
    assert weight["total_bytes"] == 9_000 + 24_000 + 1_100
    assert [a["path"] for a in weight["assets"]] == [
        "/static/bootstrap/css/bootstrap.min.1.css",
        "/static/js/rate.2.js",
    ]
    assert weight["html_encoding"] == "identity" and weight["within_budget"]


def test_header_bytes_count_the_status_line_each_header_and_the_blank_line():
    headers = [("Content-Type", "text/html"), ("Content-Length", "5")]
    assert header_bytes(200, "OK", headers) == 17 + 25 + 19 + 2
    assert header_bytes(304, "Not Modified", []) == len("HTTP/1.1 304 Not Modified\r\n\r\n")


def test_compare_rounds_sets_each_page_beside_itself():
    without = two_floor_rows()
    with_redis = ratio_rows(
        [measurement("healthz", 2.0, 4.0), measurement("caseload", 16.0, 54.0)], "healthz"
    )
    assert compare_rounds(without, with_redis) == [
        {
            "name": "healthz",
            "label": "healthz",
            "without_p50_ms": 2.0,
            "with_p50_ms": 2.0,
            "without_p95_ms": 4.0,
            "with_p95_ms": 4.0,
            "p50_with_over_without": 1.0,
            "p95_with_over_without": 1.0,
        },
        {
            "name": "caseload",
            "label": "caseload",
            "without_p50_ms": 20.0,
            "with_p50_ms": 16.0,
            "without_p95_ms": 45.0,
            "with_p95_ms": 54.0,
            "p50_with_over_without": 0.8,
            "p95_with_over_without": 1.2,
        },
    ]


# -- reconciliation ------------------------------------------------------------------------------


def expected(session, items=("1.0", "2.0", "3.0", "4.0")):
    return Expected(slot=(session, "outcome", "client", ""), items=items)


def stored(key, session, items=("1.0", "2.0", "3.0", "4.0")):
    return StoredRating(key=key, slot=(session, "outcome", "client", ""), items=items)


def test_reconcile_exact():
    result = reconcile({"a": expected(1), "b": expected(2)}, [stored("a", 1), stored("b", 2)])
    assert result.ok and result.exact
    assert result.summary()["lost"] == 0 and result.summary()["stored"] == 2


def test_reconcile_reports_lost_duplicated_extra_and_mismatched_exactly():
    acknowledged = {
        "a": expected(1),
        "b": expected(2),
        "c": expected(3),
        "d": expected(4, ("9.0", "9.0", "9.0", "9.0")),
    }
    rows_ = [
        stored("a", 1),
        stored("a", 1),  # the same key twice
        stored("c", 3),
        stored("x", 3),  # a second rating in c's slot, never sent
        stored("d", 4),  # other answers than acknowledged
        stored("y", 5),  # sent, the answer never came: in doubt
    ]
    result = reconcile(acknowledged, rows_, attempted={"y"})
    assert result.lost == ["b"]
    assert result.duplicated == ["a"]
    assert result.duplicated_slots == [(1, "outcome", "client", ""), (3, "outcome", "client", "")]
    assert result.extra == ["x", "y"]
    assert result.in_doubt_stored == ["y"]
    assert result.unexpected == ["x"]
    assert result.mismatched == ["d"]
    assert not result.ok
    summary = result.summary()
    assert (summary["acknowledged"], summary["stored"], summary["lost"]) == (4, 6, 1)
    assert summary["examples"]["lost"] == ["b"]


def test_reconcile_accepts_a_stored_rating_whose_acknowledgement_was_lost():
    result = reconcile({"a": expected(1)}, [stored("a", 1), stored("z", 2)], attempted={"z"})
    assert result.ok and not result.exact
    assert result.in_doubt_stored == ["z"]


# -- wrk ---------------------------------------------------------------------------------------

WRK_OUTPUT = """Running 15s test @ http://127.0.0.1:8000/healthz
  1 threads and 4 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     2.61ms    1.02ms  21.93ms   87.40%
    Req/Sec     1.53k   110.22     1.71k    72.00%
  22843 requests in 15.00s, 5.32MB read
Requests/sec:   1522.74
Transfer/sec:    363.08KB
WRK_JSON {"requests":22843,"duration_us":15001503,"bytes":5578901,"errors":{"connect":0,"read":1,"write":0,"status":3,"timeout":2},"statuses":{"200":22840,"500":3},"unexpected":3,"wrapped":0,"latency_us":{"min":512,"max":21930,"mean":2610.4,"stdev":1020.2,"p50":2460,"p90":3500,"p95":5270,"p99":9100}}
"""  # noqa: E501


def test_parse_wrk_reads_the_json_line_and_requests_per_second():
    parsed = parse_wrk(WRK_OUTPUT)
    assert parsed["requests"] == 22843
    assert parsed["duration_s"] == pytest.approx(15.0015)
    assert (parsed["p50_ms"], parsed["p95_ms"], parsed["p99_ms"]) == (2.46, 5.27, 9.1)
    assert parsed["transport_errors"] == 3 and parsed["status_errors"] == 3
    assert parsed["unexpected"] == 3 and parsed["statuses"] == {"200": 22840, "500": 3}
    assert parsed["rps_reported"] == 1522.74


def test_parse_wrk_without_the_json_line_fails():
    with pytest.raises(ValueError, match="WRK_JSON"):
        parse_wrk("Running 1s test @ http://127.0.0.1:1/\nRequests/sec: 10\n")


def test_slow_endpoints_get_longer_phases_within_a_cap():
    assert phase_duration(3000, 3.0, 15, 40, 45) == 15
    assert phase_duration(5, 3.0, 15, 40, 45) == 24
    assert phase_duration(1, 3.0, 15, 40, 45) == 45
    assert phase_duration(0, 3.0, 15, 40, 45) == 45


def test_only_loopback_is_a_target():
    assert loopback("http://127.0.0.1:8000") == ("127.0.0.1", 8000)
    for url in ("http://10.0.0.1:8000", "http://example.org:80", "https://127.0.0.1:8443"):
        with pytest.raises(ValueError):
            loopback(url)
    with pytest.raises(ValueError):
        wrk_command("http://192.168.1.2:8000/", script="get", duration_s=1, connections=1)


def test_wrk_command_carries_headers_and_script_arguments():
    command = wrk_command(
        "http://127.0.0.1:8000/caseload/",
        script="get",
        duration_s=15,
        connections=4,
        headers={"Cookie": "sessionid=x"},
        args=("200",),
    )
    assert command[command.index("--connections") + 1] == "4"
    assert command[command.index("--duration") + 1] == "15s"
    assert command[command.index("--script") + 1].endswith("bench/lua/get.lua")
    assert "Cookie: sessionid=x" in command
    assert command[-3:] == ["http://127.0.0.1:8000/caseload/", "--", "200"]


# -- against tiny servers on 127.0.0.1 ----------------------------------------------------------


class Store:
    """A stand-in for the app: stores a key once, answers a replay with 200; the first try of
    every key listed in `drop_first` is stored but its answer is never sent (a crash)."""

    def __init__(self, drop_first=()):
        self.lock = threading.Lock()
        self.rows: list[tuple[str, str]] = []
        self.drop_first = set(drop_first)


def serve(store: Store):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            self._answer(200, b"ok")

        def do_POST(self):
            length = int(self.headers.get("Content-Length", 0))
            form = urllib.parse.parse_qs(self.rfile.read(length).decode())
            key = form.get("idempotency_key", [""])[0]
            with store.lock:
                known = any(k == key for k, _ in store.rows)
                if not known:
                    store.rows.append((key, self.path))
                dropped = key in store.drop_first
                store.drop_first.discard(key)
            if dropped:
                self.close_connection = True
                self.connection.close()
                return
            self._answer(200 if known else 201, b'{"status": "stored", "next": "/rate/thanks/"}')

        def _answer(self, status, body):
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd


def slot(n: int) -> dict:
    return {
        "key": f"00000000-0000-4000-8000-{n:012d}",
        "path": f"/rate/submit/token-{n}/",
        "form": {"a": "1.0"},
        "session": n,
        "scale": "outcome",
        "items": ["1.0"],
    }


def test_the_driver_retries_with_the_same_key_and_reconciles_exactly():
    slots = [slot(n) for n in range(30)]
    store = Store(drop_first={s["key"] for s in slots[::5]})
    httpd = serve(store)
    try:
        plan = {
            "targets": [f"http://127.0.0.1:{httpd.server_address[1]}"],
            "duration_s": 5,
            "grace_s": 5,
            "request_timeout_s": 2,
            "retry_fraction": 0.5,
            "max_requests": 500,
            "cookie": "sessionid=x",
            "csrf": "t",
            "workers": [slots[0::3], slots[1::3], slots[2::3]],
        }
        report = Driver(plan).run()
    finally:
        httpd.shutdown()
    assert report["acknowledged"] == report["sent"] == 30
    assert report["acknowledged_as_replay"] == 6  # the dropped answers, acknowledged on retry
    assert report["retried"] == 6 and report["in_doubt"] == 0 and report["server_errors"] == 0
    assert report["replays_sent"] == report["replays_answered_stored_200"] > 0
    assert report["requests"] <= plan["max_requests"]
    acknowledged = {
        s["key"]: Expected(slot=(s["session"],), items=()) for s in report["submissions"]
    }
    sessions = {s["key"]: s["session"] for s in slots}
    rows_ = [StoredRating(key=k, slot=(sessions[k],), items=()) for k, _path in store.rows]
    assert reconcile(acknowledged, rows_).exact


def test_the_driver_stops_at_its_request_budget():
    store = Store()
    httpd = serve(store)
    try:
        plan = {
            "targets": [f"http://127.0.0.1:{httpd.server_address[1]}"],
            "duration_s": 5,
            "retry_fraction": 0.0,
            "max_requests": 7,
            "cookie": "",
            "csrf": "",
            "workers": [[slot(n) for n in range(20)]],
        }
        report = Driver(plan).run()
    finally:
        httpd.shutdown()
    assert report["requests"] == 7 and report["sent"] == 7 and len(store.rows) == 7


# CI installs wrk (.ci/run), so there this test always runs; elsewhere it may be missing.
needs_wrk = pytest.mark.skipif(
    shutil.which("wrk") is None and not os.environ.get("CI"), reason="wrk is not installed"
)


@needs_wrk
def test_the_lua_scripts_report_what_parse_wrk_reads(tmp_path):
    store = Store()
    httpd = serve(store)
    base = f"http://127.0.0.1:{httpd.server_address[1]}"
    lines = [f"/rate/submit/t{n}/\tidempotency_key=k{n}&a=1.0" for n in range(100_000)]
    (tmp_path / "warm.tsv").write_text("\n".join(lines[:10]) + "\n")
    (tmp_path / "posts.tsv").write_text("\n".join(lines[10:]) + "\n")
    try:
        got, raw = measure(
            name="healthz",
            label="floor",
            base_url=base,
            path="/healthz",
            headers={"Cookie": "a=b"},
            warmup_s=0,
            duration_s=1,
            connections=2,
        )
        posted, posted_raw = measure(
            name="rating_submit",
            label="submit",
            base_url=base,
            path="/rate/submit/…/",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
            warmup_s=1,
            duration_s=1,
            connections=2,
            expected=201,
            posts=(tmp_path / "warm.tsv", tmp_path / "posts.tsv"),
            max_duration_s=1,
        )
    finally:
        httpd.shutdown()
    assert got.requests > 10 and got.errors == 0 and got.unexpected == 0
    assert 0 < got.p50_ms <= got.p95_ms
    assert raw["statuses"] == {"200": got.requests}
    # The warm-up's 10 lines wrapped (replays: 200), the measured lines did not.
    assert posted.unexpected == 0 and posted_raw["wrapped"] == 0
    assert posted_raw["statuses"] == {"201": posted.requests}
    assert len({key for key, _ in store.rows}) == len(store.rows) >= 10 + posted.requests


@pytest.mark.django_db
def test_the_summary_rows_check_tells_kept_rows_from_wrong_ones(org, therapist, adult):
    from alliance_app.feedback.models import AllianceMonth
    from bench.data import _summary_rows
    from tests.factories import episode, rate, therapy_session

    session = therapy_session(episode(adult))
    rate(session, "outcome-adult", "5 5 5 5")
    rate(session, "session-adult", "9 9 9 9")
    kept, remade = _summary_rows([adult.pk])
    assert kept == remade
    assert [len(rows) for rows in kept] == [1, 1]
    AllianceMonth.objects.update(count=2)  # as if a retry had been counted twice
    kept, remade = _summary_rows([adult.pk])
    assert kept != remade
    # The check rebuilt the rows only inside a transaction it rolled back.
    assert AllianceMonth.objects.get().count == 2


def test_the_report_text_shows_misses_redis_weights_and_skipped_pages():
    from bench.run import report_text

    table = two_floor_rows()
    weight = visit_weight(
        "/team/",
        {"bytes": 41_000, "raw_bytes": 40_500, "encoding": "identity", "if_gzip_bytes": 6_100,
         "if_brotli_bytes": 5_000},
        [{"path": "/static/plotly/plotly.min.9f.js", "bytes": 1_111_400, "encoding": "br",
          "cache_control": YEAR_IMMUTABLE}],
    )  # fmt: skip
    document = results_document(
        started_at="2026-11-30T00:00:00+00:00",
        finished_at="2026-11-30T00:10:00+00:00",
        duration_s=600,
        environment={"cpus": 2},
        dataset={"name": "scale", "counts": {}},
        personas={},
        load={"connections": 4, "duration_s": 10, "warmup_s": 2},
        floor="healthz",
        signed_in_floor="client_page",
        rows=table,
        client_page=None,
        lossless=[],
        page_weights={"team": weight},
        redis={"url": "redis://127.0.0.1:6379/9", "endpoints": table[:2],
               "comparison": compare_rounds(table, table[:2])},
        extra={"skipped": {"settings": "/settings/ answered 404 to scale-admin"},
               "profiles": {"caseload": {"profile": "results/profiles-x/caseload.txt"}}},
    )  # fmt: skip
    text = report_text(document)
    assert "caseload: p95 45.0 ms against ≤ 30.0 ms (3× client_page)" in text
    assert "skipped settings: /settings/ answered 404 to scale-admin" in text
    assert "With REDIS_URL=redis://127.0.0.1:6379/9" in text
    assert "/team/           first visit 1,152,400 bytes (≤ 1,500,000: ok)" in text
    assert "repeat  41,000 (≤ 60,000: ok)" in text
    assert "6,100 gzipped, 5,000 in Brotli" in text
    assert "profile of caseload: results/profiles-x/caseload.txt" in text


def test_profile_request_profiles_the_second_request_and_refuses_an_error(tmp_path):
    from types import SimpleNamespace

    from bench.run import profile_request

    made = []

    def request():
        # Tens of milliseconds of work: pyinstrument samples every half millisecond, and a
        # request shorter than that may leave no sample at all.
        made.append(sum(range(2_000_000)))
        return SimpleNamespace(status_code=200)

    seconds = profile_request(request, tmp_path / "page.txt")
    assert len(made) == 2 and seconds >= 0
    assert "request" in (tmp_path / "page.txt").read_text()
    with pytest.raises(RuntimeError, match="answered 500"):
        profile_request(lambda: SimpleNamespace(status_code=500), tmp_path / "error.txt")
    assert not (tmp_path / "error.txt").exists()


def test_runs_seeded_alike_send_keys_of_their_own():
    # make bench and make bench-growth seed their generators with the same number and store
    # into the same database: the same keys would be refused as forms already used.
    import random

    from bench.data import Slot, submission

    slot = Slot(
        session=7,
        number=3,
        client=1,
        scale="session",
        instrument="session-adult",
        item_keys=("relationship", "goals", "approach", "overall"),
    )
    first, second = (submission(slot, random.Random(20261125)) for _run in range(2))
    assert first["form"] == second["form"]
    assert first["key"] != second["key"]
