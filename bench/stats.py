"""Pure figures: percentiles, ratios to the floor, the table, the results document, wrk's output.

Nothing here imports Django or touches the network, so tests/test_bench.py covers it quickly.
"""

import json
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass

SCHEMA = "alliance-bench/1"
# The client page's budget: HTML, CSS and JS as sent over the wire (DESIGN.md's 100 KB target).
CLIENT_PAGE_BUDGET_BYTES = 100_000
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


def ratio_rows(measurements: Sequence[Measurement], floor_name: str) -> list[dict]:
    """Each measurement with its p50 and p95 as ratios to the floor's, and its target verdict."""
    floors = [m for m in measurements if m.name == floor_name]
    if not floors:
        raise ValueError(f"no floor measurement named {floor_name!r}")
    floor = floors[0]
    if floor.p50_ms <= 0 or floor.p95_ms <= 0:
        raise ValueError("the floor's latencies must be positive")
    rows = []
    for m in measurements:
        p50_ratio = m.p50_ms / floor.p50_ms
        p95_ratio = m.p95_ms / floor.p95_ms
        target = m.target_p95_ratio
        rows.append(
            {
                **asdict(m),
                "rps": round(m.rps, 2),
                "p50_ratio": round(p50_ratio, 2),
                "p95_ratio": round(p95_ratio, 2),
                "meets_target": None if target is None else p95_ratio <= target,
            }
        )
    return rows


def _cell(value: object, digits: int = 1) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def format_table(rows: Sequence[dict]) -> str:
    """The ratio table as fixed-width text, the floor's ratios being 1.0 by definition."""
    header = (
        "endpoint",
        "req",
        "req/s",
        "p50 ms",
        "p95 ms",
        "err",
        "p50 ×floor",
        "p95 ×floor",
        "target p95",
        "",
    )
    lines = [header]
    for row in rows:
        target = row["target_p95_ratio"]
        verdict = {None: "", True: "ok", False: "MISSED"}[row["meets_target"]]
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
) -> dict:
    """The JSON written to results/: everything compared across runs sits at a fixed place.

    `floor_check` names a second floor measurement (at the end of the run): its p50 ratio shows
    how far the floor itself moved, i.e. how much to trust the other ratios.
    """
    check = next((row for row in rows if row["name"] == floor_check), None)
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
        "endpoints": list(rows),
        "client_page": client_page,
        "lossless": list(lossless),
        "expected_response": expected_response,
        "summary": {
            "targets": targets,
            "all_targets_met": all(targets.values()) if targets else None,
            "floor_drift_p50": None if check is None else check["p50_ratio"],
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
