"""The growth bench's pure parts (bench/growth.py): the growth verdicts, the comparison of the
two sizes' pages, seed_scale's figures as reported, and the sizes it compares."""

from pathlib import Path

import pytest

from bench.growth import (
    SIZES,
    child_arguments,
    growth_rows,
    growth_table,
    growth_verdict,
    options_parse,
    report_text,
    reused,
    seeding_figures,
)


def row(name: str, p50: float, p95: float, p95_ratio: float, label: str = "") -> dict:
    return {
        "name": name,
        "label": label or name,
        "p50_ms": p50,
        "p95_ms": p95,
        "p95_ratio": p95_ratio,
    }


def test_a_page_within_the_growth_target_meets_it_and_one_beyond_misses_it():
    assert growth_verdict(100.0, 130.0) == {"growth": 1.3, "within_target": True}
    assert growth_verdict(100.0, 131.0) == {"growth": 1.31, "within_target": False}
    assert growth_verdict(100.0, 80.0) == {"growth": 0.8, "within_target": True}
    assert growth_verdict(100.0, 190.0, target=2.0)["within_target"] is True


@pytest.mark.parametrize(("p95_1x", "p95_5x"), [(0.0, 10.0), (10.0, 0.0), (-1.0, 10.0)])
def test_a_growth_needs_positive_latencies(p95_1x, p95_5x):
    with pytest.raises(ValueError, match="positive"):
        growth_verdict(p95_1x, p95_5x)


def test_the_pages_are_compared_by_name_at_both_sizes():
    one = [row("healthz", 2, 4, 1.0), row("caseload", 40, 80, 20.0), row("inbox", 90, 200, 50.0)]
    five = [
        row("healthz", 3, 6, 1.0),
        row("inbox", 100, 400, 66.7, label="supervisor inbox"),
        row("caseload", 45, 96, 16.0),
        row("new_page", 10, 20, 3.3),
    ]

    compared = growth_rows(one, five)

    assert [r["name"] for r in compared] == ["healthz", "inbox", "caseload"]
    inbox = compared[1]
    assert inbox["label"] == "supervisor inbox"
    assert (inbox["p95_1x_ms"], inbox["p95_5x_ms"]) == (200, 400)
    assert inbox["growth"] == 2.0 and inbox["within_target"] is False
    # Against the floor: the 5x floor's p95 was half as long again, so the page grew 1.33x.
    assert inbox["floor_ratio_growth"] == 1.33
    caseload = compared[2]
    assert caseload["growth"] == 1.2 and caseload["within_target"] is True
    assert caseload["floor_ratio_growth"] == 0.8


def test_the_table_says_which_pages_miss_the_target():
    compared = growth_rows(
        [row("caseload", 40, 80, 20.0), row("inbox", 90, 200, 50.0)],
        [row("caseload", 45, 96, 16.0), row("inbox", 100, 400, 66.7)],
    )

    table = growth_table(compared).splitlines()

    assert table[2] == "| caseload | 80.0 | 96.0 | 1.20 | 0.80 | ≤ 1.3× met |"
    assert table[3] == "| inbox | 200.0 | 400.0 | 2.00 | 1.33 | ≤ 1.3× MISSED |"


SEED_OUTPUT = (
    "Inserted organisations 1, teams 2, users 9, clients 40, therapy sessions 300, ratings 640, "
    "tension reports 270, flags 90, monthly alliance sums 120: 1472 rows in 4.0 s (368 rows/s) "
    "into organisation 'scale'.\n"
    "Per second: ratings 160, sessions 75, flags 22. Seconds spent: plans and staff 0.5, "
    "histories 2.5, summary rows 0.4, ruptures and reflections 0.6.\n"
    "CPU seconds of this process: 3.2.\n"
)


def test_the_seeding_figures_are_read_from_what_seed_scale_says():
    figures = seeding_figures(SEED_OUTPUT, wall_s=6.04)

    assert figures["seconds"] == 4.0 and figures["process_seconds"] == 6.0
    assert figures["rows"] == 1472 and figures["rows_per_s"] == 368
    assert figures["tables"]["therapy sessions"] == 300
    assert figures["per_s"] == {"ratings": 160, "sessions": 75, "flags": 22}
    assert figures["phases_s"]["histories"] == 2.5
    assert figures["phases_s"]["ruptures and reflections"] == 0.6
    assert figures["cpu_seconds"] == 3.2


def test_seeding_that_said_nothing_is_an_error():
    with pytest.raises(ValueError, match="inserted"):
        seeding_figures("Traceback (most recent call last): ...", wall_s=1.0)


def test_five_times_the_data_is_more_therapists_and_clients_with_the_same_caseloads():
    one, five = SIZES["1x"], SIZES["5x"]

    assert (five.clients, five.sessions) == (5 * one.clients, 5 * one.sessions)
    assert five.sessions == 1_000_000 and five.clients == 50_000
    assert five.clients / five.therapists == one.clients / one.therapists
    assert five.sessions / five.clients == one.sessions / one.clients
    assert five.therapists / five.teams == one.therapists / one.teams
    assert five.database != one.database
    command = five.seed_arguments("scale")
    assert command[0] == "seed_scale"
    assert command[command.index("--teams") + 1] == "100"


def test_each_size_is_measured_with_the_options_given():
    options = options_parse(["--duration", "7", "--warmup", "1", "--no-install"])

    arguments = child_arguments(options, "5x", "out.json", Path("work/static"))

    measured = options_parse(arguments)
    assert measured.serve == "5x" and measured.out == "out.json"
    assert (measured.duration, measured.warmup, measured.no_install) == (7, 1, True)
    assert measured.max_phase == options.max_phase
    # Both sizes serve the static files collected (and compressed) once.
    assert measured.static_root == Path("work/static")


def test_a_size_can_be_taken_from_an_earlier_measurement(tmp_path):
    kept = tmp_path / "bench-latest.json"
    kept.write_text('{"endpoints": [], "dataset": {"database": "alliance_bench"}}')

    options = options_parse(["--reuse", f"1x={kept}"])

    assert options.reuse == [("1x", str(kept))]
    assert reused(str(kept))["seeding"] is None
    with pytest.raises(SystemExit):
        options_parse(["--reuse", "2x=file.json"])


def test_the_report_says_how_long_each_size_took_step_by_step():
    size = {
        "dataset": {
            "database": "alliance_bench",
            "counts": {"therapists": 200, "clients": 10_000, "sessions": 200_000},
        },
        "personas": {
            "therapist": {"active_clients": 50},
            "chart": {"sessions": 40},
            "supervisor": {"team_therapists": 20, "team_clients": 1_000},
        },
    }
    size["dataset"]["counts"].update(ratings=400_000, flags=60_000)
    document = {
        "sizes": {"1x": size, "5x": size},
        "steps_s": {
            "1x": {"process_s": 190.5, "seed_s": 0.4, "latency_s": 150.0},
            "5x": {"process_s": 720.0, "seed_s": 480.2, "latency_s": 160.0},
        },
        "growth": [],
        "target": 1.3,
        "load": {"connections": 4, "duration_s": 6, "warmup_s": 2},
    }

    text = report_text(document)

    assert "1x took (s): process 190.5, seed 0.4, latency 150" in text
    assert "5x took (s): process 720, seed 480.2, latency 160" in text


def test_the_sizes_take_turns_phase_by_phase_the_order_turned_each_time(monkeypatch):
    from bench import growth

    class Served:
        def __init__(self, size: str, names: list[str]):
            self.plan = {
                "base_url": f"http://{size}",
                "workers": 3,
                "phases": [{"name": name, "label": name} for name in names],
                "response_bytes": {},
            }

        def phase(self, name):
            return next((p for p in self.plan["phases"] if p["name"] == name), None)

    ran = []

    def run_phase(phase, base, workers, args, before):
        ran.append((base.removeprefix("http://"), phase["name"], [b[1] for b in before]))
        return (base, phase["name"]), {}

    monkeypatch.setattr(growth, "run_phase", run_phase)
    monkeypatch.setattr(growth, "latency_rows", lambda measured, raw, sizes: measured)
    served = {
        "1x": Served("1x", ["floor", "submit", "staff", "end"]),
        "5x": Served("5x", ["floor", "submit", "end"]),  # staff not answering at 5x
    }

    rows = growth.interleaved(served, options_parse([]))

    assert [(size, name) for size, name, _before in ran] == [
        ("1x", "floor"), ("5x", "floor"),
        ("5x", "submit"), ("1x", "submit"),
        ("1x", "staff"),
        ("5x", "end"), ("1x", "end"),
    ]  # fmt: skip
    # Each phase waits for the one just before it, whichever server that was.
    assert [before for *_phase, before in ran][1:3] == [["floor"], ["floor"]]
    assert rows == {
        "1x": [("http://1x", "floor"), ("http://1x", "submit"), ("http://1x", "staff"),
               ("http://1x", "end")],
        "5x": [("http://5x", "floor"), ("http://5x", "submit"), ("http://5x", "end")],
    }  # fmt: skip
