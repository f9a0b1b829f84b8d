"""Pure figures: percentiles, ratios to the floor, the table, the results document, wrk's output.

Nothing here imports Django or touches the network, so tests/test_bench.py covers it quickly.
"""

import json
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass

SCHEMA = "alliance-bench/2"
# The client page's budget: HTML, CSS and JS as sent over the wire (DESIGN.md's 100 KB target).
CLIENT_PAGE_BUDGET_BYTES = 100_000
# A page on a clinic's Wi-Fi (issue 16): everything its first visit transfers, and what a visit
# with the browser's cache filled transfers again.
FIRST_VISIT_BUDGET_BYTES = 1_500_000
REPEAT_VISIT_BUDGET_BYTES = 60_000
# A browser asks nothing for a cached file that is still fresh; one fresh for a week outlasts
# the gap between two weekly therapy sessions, the longest usual gap between two visits.
FRESH_ENOUGH_S = 7 * 24 * 3600
WRK_MARKER = "WRK_JSON "


def percentile(values: Iterable[float], q: float) -> float:
    """The q-th percentile (0–100), interpolating linearly between closest ranks.

    The same definition as numpy's default ("linear"): the median of [1, 2, 3, 4] is 2.5, the
    95th percentile of 1..100 is 95.05.
    """
    data = sorted(values)
    if not data:
        raise ValueError("no values")
    if not 0 <= q <= 100:
        raise ValueError(f"percentile must be within 0–100, not {q}")
    position = (len(data) - 1) * q / 100
    low, high = math.floor(position), math.ceil(position)
    if low == high:
        return float(data[low])
    return data[low] + (data[high] - data[low]) * (position - low)


@dataclass
class Measurement:
    """One endpoint's phase: fixed concurrency, fixed duration, after its own warm-up."""

    name: str
    label: str
    method: str
    path: str
    requests: int
    duration_s: float
    p50_ms: float
    p95_ms: float
    p99_ms: float | None = None
    mean_ms: float | None = None
    max_ms: float | None = None
    errors: int = 0  # transport errors and statuses of 400 or more
    unexpected: int = 0  # answers with another status than the one expected
    target_p95_ratio: float | None = None  # reported against, never failed on
    note: str = ""

    @property
    def rps(self) -> float:
        return self.requests / self.duration_s if self.duration_s > 0 else 0.0


def ratio_rows(
    measurements: Sequence[Measurement], floor_name: str, signed_in_floor: str | None = None
) -> list[dict]:
    """Each measurement with its p50 and p95 as ratios to the floor's, and its target verdict.

    With `signed_in_floor` (the cheapest signed-in page) every row also carries its ratios to
    that floor, and targets are judged against it; otherwise against `floor_name`. A missed
    target says by how much: `missed_by` is the p95 ratio over the target (1.5: half as slow
    again as allowed), `target_p95_ms` the p95 the page would have to reach.
    """
    floor = _floor(measurements, floor_name)
    judge = floor if signed_in_floor is None else _floor(measurements, signed_in_floor)
    rows = []
    for m in measurements:
        row = {
            **asdict(m),
            "rps": round(m.rps, 2),
            "p50_ratio": round(m.p50_ms / floor.p50_ms, 2),
            "p95_ratio": round(m.p95_ms / floor.p95_ms, 2),
        }
        if signed_in_floor is not None:
            row["p50_signed_in_ratio"] = round(m.p50_ms / judge.p50_ms, 2)
            row["p95_signed_in_ratio"] = round(m.p95_ms / judge.p95_ms, 2)
        row.update(target_verdict(m.p95_ms, judge.p95_ms, m.target_p95_ratio))
        row["target_floor"] = judge.name if m.target_p95_ratio is not None else None
        rows.append(row)
    return rows


def _floor(measurements: Sequence[Measurement], name: str) -> Measurement:
    found = [m for m in measurements if m.name == name]
    if not found:
        raise ValueError(f"no floor measurement named {name!r}")
    if found[0].p50_ms <= 0 or found[0].p95_ms <= 0:
        raise ValueError("the floor's latencies must be positive")
    return found[0]


def target_verdict(p95_ms: float, floor_p95_ms: float, target: float | None) -> dict:
    """Whether a p95 stays within `target` times the floor's p95, and if not, by how much."""
    if target is None:
        return {"meets_target": None, "target_p95_ms": None, "missed_by": None}
    allowed = target * floor_p95_ms
    meets = p95_ms <= allowed
    return {
        "meets_target": meets,
        "target_p95_ms": round(allowed, 2),
        "missed_by": None if meets else round(p95_ms / allowed, 2),
    }


def missed_targets(rows: Sequence[dict]) -> list[str]:
    """One line per missed target: the page, its p95 against the p95 it may take, the factor."""
    lines = []
    for row in rows:
        if row["meets_target"] is not False:
            continue
        over = row["p95_ms"] - row["target_p95_ms"]
        lines.append(
            f"{row['label']}: p95 {row['p95_ms']:.1f} ms against ≤ {row['target_p95_ms']:.1f} ms "
            f"({row['target_p95_ratio']:g}× {row['target_floor']}): {over:.1f} ms over, "
            f"{row['missed_by']:.2f}× the target"
        )
    return lines


def compare_rounds(without: Sequence[dict], with_: Sequence[dict]) -> list[dict]:
    """Each page of a second round (the same pages on a server configured otherwise, e.g. with
    Redis) beside its figures in the first: p50 and p95 both ways, and with over without."""
    first = {row["name"]: row for row in without}
    compared = []
    for row in with_:
        before = first.get(row["name"])
        if before is None:
            continue
        compared.append(
            {
                "name": row["name"],
                "label": before["label"],
                "without_p50_ms": before["p50_ms"],
                "with_p50_ms": row["p50_ms"],
                "without_p95_ms": before["p95_ms"],
                "with_p95_ms": row["p95_ms"],
                "p50_with_over_without": round(row["p50_ms"] / before["p50_ms"], 2),
                "p95_with_over_without": round(row["p95_ms"] / before["p95_ms"], 2),
            }
        )
    return compared


def _cell(value: object, digits: int = 1) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def format_table(rows: Sequence[dict]) -> str:
    """The ratio table as fixed-width text, the floor's ratios being 1.0 by definition; with
    the signed-in floor's ratios too when the rows carry them."""
    signed_in = any("p95_signed_in_ratio" in row for row in rows)
    header = (
        "endpoint",
        "req",
        "req/s",
        "p50 ms",
        "p95 ms",
        "err",
        "p50 ×floor",
        "p95 ×floor",
        *(("p50 ×signed-in", "p95 ×signed-in") if signed_in else ()),
        "target p95",
        "",
    )
    lines = [header]
    for row in rows:
        target = row["target_p95_ratio"]
        verdict = {None: "", True: "ok", False: "MISSED"}[row["meets_target"]]
        if row.get("missed_by"):
            verdict += f" by {row['missed_by']:.2f}×"
        lines.append(
            (
                row["label"],
                str(row["requests"]),
                _cell(float(row["rps"])),
                _cell(float(row["p50_ms"]), 2),
                _cell(float(row["p95_ms"]), 2),
                str(row["errors"] + row["unexpected"]),
                _cell(float(row["p50_ratio"])),
                _cell(float(row["p95_ratio"])),
                *(
                    (_cell(row.get("p50_signed_in_ratio")), _cell(row.get("p95_signed_in_ratio")))
                    if signed_in
                    else ()
                ),
                "" if target is None else f"≤ {target:g}×",
                verdict,
            )
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    out = []
    for index, line in enumerate(lines):
        cells = [
            cell.ljust(widths[i]) if i == 0 else cell.rjust(widths[i])
            for i, cell in enumerate(line)
        ]
        out.append("  ".join(cells).rstrip())
        if index == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


def page_weight(html_bytes: int, assets: Sequence[dict]) -> dict:
    """The client page's transferred bytes (bodies as sent, compressed where served so)."""
    total = html_bytes + sum(asset["bytes"] for asset in assets)
    return {
        "html_bytes": html_bytes,
        "assets": list(assets),
        "total_bytes": total,
        "budget_bytes": CLIENT_PAGE_BUDGET_BYTES,
        "within_budget": total <= CLIENT_PAGE_BUDGET_BYTES,
    }


def fresh_for(cache_control: str | None) -> int:
    """Seconds a browser keeps using its cached copy without asking, by Cache-Control alone
    (0: it asks again, conditionally when it can)."""
    directives = {}
    for part in (cache_control or "").split(","):
        name, _, value = part.strip().partition("=")
        directives[name.strip().lower()] = value.strip().strip('"')
    if "no-store" in directives or "no-cache" in directives:
        return 0
    try:
        return max(0, int(directives.get("max-age", "0")))
    except ValueError:
        return 0


def repeat_bytes(resource: dict) -> int:
    """What a visit with the cache filled transfers for one response: nothing while the cached
    copy is fresh for longer than the gap between visits (no request at all); the answer to a
    conditional request (`revalidated_bytes`, a 304) when the response carried a validator;
    otherwise all of it again."""
    if "no-store" not in (resource.get("cache_control") or "").lower() and (
        fresh_for(resource.get("cache_control")) >= FRESH_ENOUGH_S
    ):
        return 0
    revalidated = resource.get("revalidated_bytes")
    return resource["bytes"] if revalidated is None else revalidated


def visit_weight(
    path: str,
    html: dict,
    assets: Sequence[dict],
    *,
    first_budget: int = FIRST_VISIT_BUDGET_BYTES,
    repeat_budget: int = REPEAT_VISIT_BUDGET_BYTES,
) -> dict:
    """A page's first visit (the HTML and every file it makes the browser fetch, `bytes` as
    transferred: headers and body as sent) and its repeat visit (`repeat_bytes` of each)."""
    resources = [{**html, "path": path}, *assets]
    for resource in resources:
        resource["repeat_bytes"] = repeat_bytes(resource)
    first = sum(r["bytes"] for r in resources)
    repeat = sum(r["repeat_bytes"] for r in resources)
    return {
        "path": path,
        "html": resources[0],
        "assets": resources[1:],
        "first_visit_bytes": first,
        "repeat_visit_bytes": repeat,
        "first_budget_bytes": first_budget,
        "repeat_budget_bytes": repeat_budget,
        "first_within_budget": first <= first_budget,
        "repeat_within_budget": repeat <= repeat_budget,
    }


def results_document(
    *,
    started_at: str,
    finished_at: str,
    duration_s: float,
    environment: dict,
    dataset: dict,
    personas: dict,
    load: dict,
    floor: str,
    rows: Sequence[dict],
    floor_check: str | None = None,
    client_page: dict | None,
    lossless: Sequence[dict],
    expected_response: dict | None = None,
    signed_in_floor: str | None = None,
    signed_in_floor_check: str | None = None,
    page_weights: dict | None = None,
    redis: dict | None = None,
    extra: dict | None = None,
) -> dict:
    """The JSON written to results/: everything compared across runs sits at a fixed place.

    `floor_check` names a second floor measurement (at the end of the run): its p50 ratio shows
    how far the floor itself moved, i.e. how much to trust the other ratios.
    """
    check = next((row for row in rows if row["name"] == floor_check), None)
    signed_in = next((row for row in rows if row["name"] == signed_in_floor), None)
    signed_in_check = next((row for row in rows if row["name"] == signed_in_floor_check), None)
    targets = {row["name"]: row["meets_target"] for row in rows if row["meets_target"] is not None}
    return {
        "schema": SCHEMA,
        "started_at": started_at,
        "finished_at": finished_at,
        "duration_s": round(duration_s, 1),
        "environment": environment,
        "dataset": dataset,
        "personas": personas,
        "load": load,
        "floor": floor,
        "signed_in_floor": signed_in_floor,
        "endpoints": list(rows),
        "client_page": client_page,
        "lossless": list(lossless),
        "expected_response": expected_response,
        "page_weights": page_weights,
        "redis": redis,
        **(extra or {}),
        "summary": {
            "targets": targets,
            "all_targets_met": all(targets.values()) if targets else None,
            "floor_drift_p50": None if check is None else check["p50_ratio"],
            "signed_in_floor_drift_p50": None
            if signed_in is None or signed_in_check is None
            else round(signed_in_check["p50_ms"] / signed_in["p50_ms"], 2),
            "missed_targets": {
                row["name"]: row["missed_by"] for row in rows if row["meets_target"] is False
            },
            "page_weights_within_budget": None
            if not page_weights
            else all(
                w["first_within_budget"] and w["repeat_within_budget"]
                for w in page_weights.values()
            ),
            "client_page_within_budget": None
            if client_page is None
            else client_page["within_budget"],
            "lossless_ok": all(run["ok"] for run in lossless) if lossless else None,
            "expected_response_within_targets": None
            if expected_response is None
            else expected_response["within_targets"],
        },
    }


def parse_wrk(stdout: str) -> dict:
    """What bench/lua/*.lua's done() printed (one WRK_JSON line), plus wrk's own Requests/sec.

    Latencies come in microseconds and are returned in milliseconds.
    """
    data = None
    for line in stdout.splitlines():
        if line.startswith(WRK_MARKER):
            data = json.loads(line[len(WRK_MARKER) :])
    if data is None:
        raise ValueError("wrk printed no WRK_JSON line: " + stdout[-500:])
    latency = data["latency_us"]
    errors = data["errors"]
    result = {
        "requests": int(data["requests"]),
        "duration_s": data["duration_us"] / 1e6,
        "bytes": int(data["bytes"]),
        "p50_ms": latency["p50"] / 1000,
        "p95_ms": latency["p95"] / 1000,
        "p99_ms": latency["p99"] / 1000,
        "mean_ms": round(latency["mean"] / 1000, 3),
        "max_ms": latency["max"] / 1000,
        "transport_errors": sum(int(errors[k]) for k in ("connect", "read", "write", "timeout")),
        "status_errors": int(errors["status"]),
        "unexpected": int(data.get("unexpected", 0)),
        "statuses": {str(k): int(v) for k, v in data.get("statuses", {}).items()},
        "wrapped": int(data.get("wrapped", 0)),
    }
    match = re.search(r"^Requests/sec:\s*([\d.]+)", stdout, re.MULTILINE)
    result["rps_reported"] = float(match.group(1)) if match else None
    return result
