"""The expected-response rule (`measures.expected`): the lines, the boundary, the flag, the
documented JSON form and the validation figures, with exact numbers at every edge."""

import json
from decimal import Decimal
from types import MappingProxyType

import pytest

from alliance_app.measures import FlagKind, FlagRules, Severity
from alliance_app.measures.expected import (
    SCHEMA,
    BandLines,
    EpisodeCourse,
    ExpectedResponse,
    Line,
    ParametersInvalid,
    calibration,
    not_on_track_finding,
    signal_accuracy,
    signalled,
)

D = Decimal
RULES = FlagRules()


def flat(value: float) -> Line:
    return Line(intercept=value, intake=0.0, log_session=0.0, intake_log_session=0.0)


MEDIAN, BOUNDARY = flat(25.0), flat(23.0)


def model(
    median: Line = MEDIAN,
    boundary: Line = BOUNDARY,
    *,
    max_session: int = 10,
    intakes=(0.0, 40.0),
    bands=("adult",),
) -> ExpectedResponse:
    lines = BandLines(median=median, boundary=boundary, episodes=150, intakes=intakes)
    return ExpectedResponse(
        quantile=0.1,
        max_session=max_session,
        bands=MappingProxyType(dict.fromkeys(bands, lines)),
        fit_id=7,
        version=3,
    )


def test_a_line_at_an_intake_and_session():
    line = Line(intercept=2.0, intake=0.9, log_session=3.0, intake_log_session=-0.05)
    # 2 + 0.9 * 20 + (3 - 0.05 * 20) * ln 4 = 20 + 2 * 1.3862943611198906
    assert line.at(20.0, 4) == pytest.approx(22.772588722239781, abs=1e-12)
    # ln 1 = 0: at session 1 only the intercept and the intake count.
    assert line.at(20.0, 1) == pytest.approx(20.0, abs=1e-12)


def test_expected_rounds_half_up_to_the_tenth():
    found = model(median=flat(24.25), boundary=flat(22.95)).expected("adult", D("18.0"), 4)
    assert (found.median, found.boundary) == (D("24.3"), D("23.0"))


def test_expected_stays_within_the_scale():
    found = model(median=flat(44.0), boundary=flat(-3.0)).expected("adult", D("18.0"), 4)
    assert (found.median, found.boundary) == (D("40.0"), D("0.0"))


def test_no_line_at_the_intake_past_the_last_session_or_for_another_band():
    fitted = model(max_session=6)
    assert fitted.expected("adult", D("18.0"), 1) is None
    assert fitted.expected("adult", D("18.0"), 2) is not None
    assert fitted.expected("adult", D("18.0"), 6) is not None
    assert fitted.expected("adult", D("18.0"), 7) is None
    assert fitted.expected("child", D("18.0"), 4) is None


def test_an_intake_outside_what_the_fit_saw_is_read_as_its_nearest_end():
    fitted = model(
        median=Line(intercept=5.0, intake=1.0, log_session=0.0, intake_log_session=0.0),
        boundary=Line(intercept=2.0, intake=1.0, log_session=0.0, intake_log_session=0.0),
        intakes=(10.0, 30.0),
    )
    assert fitted.expected("adult", D("4.0"), 3).median == D("15.0")  # as if 10.0
    assert fitted.expected("adult", D("35.0"), 3).boundary == D("32.0")  # as if 30.0
    assert fitted.expected("adult", D("20.0"), 3).median == D("25.0")


def test_the_course_runs_from_session_two_to_the_last():
    course = model(max_session=5).course("adult", D("18.0"))
    assert [point.session for point in course] == [2, 3, 4, 5]
    assert [point.session for point in model(max_session=5).course("adult", D("18"), 3)] == [2, 3]


def test_not_on_track_below_the_boundary_only():
    fitted = model()
    on_it = not_on_track_finding(
        total=D("23.0"), session=4, intake=D("18.0"), band="adult", model=fitted, rules=RULES
    )
    below = not_on_track_finding(
        total=D("22.9"), session=4, intake=D("18.0"), band="adult", model=fitted, rules=RULES
    )
    assert on_it is None
    assert below.kind is FlagKind.NOT_ON_TRACK
    assert below.severity is Severity.MEDIUM
    assert below.explain() == (
        "Outcome 22.9 at session 4; clients who started near 18.0 are usually above 23.0 by now "
        "(half of them above 25.0)."
    )


def test_not_on_track_compares_with_the_boundary_shown():
    # 22.96 is shown as 23.0; a total of 22.96 cannot be entered, 23.0 is on the boundary.
    fitted = model(boundary=flat(22.96))
    assert (
        not_on_track_finding(
            total=D("23.0"), session=4, intake=D("18.0"), band="adult", model=fitted, rules=RULES
        )
        is None
    )


def test_no_flag_without_a_band_at_that_session():
    for fitted, session in ((None, 4), (model(max_session=3), 4), (model(), 1)):
        assert (
            not_on_track_finding(
                total=D("1.0"),
                session=session,
                intake=D("18.0"),
                band="adult",
                model=fitted,
                rules=RULES,
            )
            is None
        )


def test_the_organisation_sets_the_severity():
    rules = FlagRules(severities={FlagKind.NOT_ON_TRACK: Severity.HIGH})
    found = not_on_track_finding(
        total=D("10.0"), session=4, intake=D("18.0"), band="adult", model=model(), rules=rules
    )
    assert found.severity is Severity.HIGH


def valid_json() -> dict:
    return {
        "schema": SCHEMA,
        "quantile": 0.1,
        "max_session": 12,
        "source": "Clinic network, 2025",
        "episodes": 812,
        "bands": {
            "adult": {
                "median": {
                    "intercept": 1.5,
                    "intake": 0.9,
                    "log_session": 3.2,
                    "intake_log_session": -0.04,
                },
                "boundary": {
                    "intercept": -2.0,
                    "intake": 0.95,
                    "log_session": 1.0,
                    "intake_log_session": -0.01,
                },
                "episodes": 812,
                "intakes": [3.5, 34.0],
            }
        },
    }


def test_the_json_form_reads_back_what_it_wrote():
    read = ExpectedResponse.from_json(valid_json())
    assert read.source == "Clinic network, 2025"
    assert read.fitted_elsewhere
    assert read.bands["adult"].median.log_session == 3.2
    assert read.bands["adult"].intakes == (3.5, 34.0)
    again = ExpectedResponse.from_json(json.loads(json.dumps(read.as_json())))
    assert again == read


def test_an_upload_is_marked_with_the_source_given():
    assert ExpectedResponse.from_json(valid_json(), source="Region X").source == "Region X"


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (lambda d: d.update(schema="other/2"), f'"schema" must be "{SCHEMA}".'),
        (lambda d: d.update(quantile=0.5), '"quantile" must lie between 0 and 0.5 (e.g. 0.1).'),
        (lambda d: d.update(quantile="0.1"), '"quantile" must be a number.'),
        (lambda d: d.update(quantile=True), '"quantile" must be a number.'),
        (lambda d: d.update(max_session=1), '"max_session" must be from 2 to 100.'),
        (lambda d: d.update(max_session=7.5), '"max_session" must be a whole number.'),
        (
            lambda d: d.update(bands={}),
            '"bands" must name at least one of adult, adolescent, child.',
        ),
        (
            lambda d: d["bands"].update(elderly=d["bands"]["adult"]),
            "bands.elderly: unknown age band; use adult, adolescent, child.",
        ),
        (
            lambda d: d["bands"]["adult"].pop("boundary"),
            'bands.adult: "boundary" must be an object with intercept, intake, log_session, '
            "intake_log_session.",
        ),
        (
            lambda d: d["bands"]["adult"]["median"].pop("intake"),
            'bands.adult: median."intake" must be a number.',
        ),
        (
            lambda d: d["bands"]["adult"]["median"].update(intake=float("nan")),
            'bands.adult: median."intake" must be a number.',
        ),
        (
            lambda d: d["bands"]["adult"].update(intakes=[30, 10]),
            'bands.adult: "intakes" must be [lowest, highest] within 0 to 40.',
        ),
        (
            lambda d: d["bands"].update(adult=[1, 2]),
            "bands.adult: must be an object with median and boundary.",
        ),
    ],
)
def test_bad_parameters_are_refused_in_words(change, problem):
    data = valid_json()
    change(data)
    with pytest.raises(ParametersInvalid) as refused:
        ExpectedResponse.from_json(data)
    assert refused.value.problems == [problem]


def test_every_problem_is_listed_at_once():
    data = valid_json()
    data.update(schema="x", quantile=2)
    with pytest.raises(ParametersInvalid) as refused:
        ExpectedResponse.from_json(data)
    assert len(refused.value.problems) == 2


def test_not_an_object():
    with pytest.raises(ParametersInvalid) as refused:
        ExpectedResponse.from_json([1, 2])
    assert refused.value.problems == ["The file must hold one JSON object."]


def course(intake: str, *later: tuple[int, str], band: str = "adult") -> EpisodeCourse:
    return EpisodeCourse(
        band=band,
        intake=D(intake),
        later=tuple((session, D(total)) for session, total in later),
        reliable_change=D("5.0"),
    )


def test_an_episode_ended_improved_at_the_reliable_change_exactly():
    assert course("18.0", (2, "20.0"), (3, "23.0")).improved
    assert not course("18.0", (2, "20.0"), (3, "22.9")).improved


def test_signalled_by_a_session():
    fitted = model()  # boundary 23.0 everywhere
    late = course("18.0", (2, "24.0"), (3, "24.0"), (4, "22.0"))
    assert not signalled(late, fitted, 3)
    assert signalled(late, fitted, 4)
    assert signalled(late, fitted, None)


def test_signal_accuracy_counts_the_table():
    fitted = model()
    courses = [
        course("18.0", (2, "22.0"), (3, "21.0")),  # flagged, not improved: hit
        course("18.0", (2, "22.0"), (3, "30.0")),  # flagged, improved: false alarm
        course("18.0", (2, "24.0"), (3, "22.5")),  # flagged by 3 (22.5 < 23.0), not improved
        course("20.0", (2, "24.0"), (3, "24.0")),  # quiet, not improved: missed
        course("18.0", (2, "26.0"), (3, "28.0")),  # quiet, improved
        course("18.0", (2, "26.0"), (3, "28.0"), band="child"),  # no band: left out
    ]
    found = signal_accuracy(courses, fitted, by_session=3)
    assert (found.flagged_bad, found.flagged_good, found.missed_bad, found.quiet_good) == (
        2,
        1,
        1,
        1,
    )
    assert found.sensitivity == pytest.approx(2 / 3)
    assert found.specificity == pytest.approx(1 / 2)
    assert found.ppv == pytest.approx(2 / 3)
    assert found.flagged_share == pytest.approx(3 / 5)
    by_two = signal_accuracy(courses, fitted, by_session=2)
    assert (by_two.flagged_bad, by_two.flagged_good, by_two.missed_bad) == (1, 1, 2)


def test_no_share_without_cases():
    found = signal_accuracy([], model(), by_session=3)
    assert (found.sensitivity, found.specificity, found.ppv, found.flagged_share) == (
        None,
        None,
        None,
        None,
    )


def test_calibration_by_session():
    fitted = model()  # median 25.0, boundary 23.0
    points = calibration(
        [
            course("18.0", (2, "22.0"), (3, "26.0")),
            course("18.0", (2, "26.0"), (3, "24.0"), (11, "10.0")),  # 11: past the band
        ],
        fitted,
    )
    assert [point.as_dict() for point in points] == [
        {
            "session": 2,
            "ratings": 2,
            "observed_mean": 24.0,
            "expected_median_mean": 25.0,
            "below_median": 0.5,
            "below_boundary": 0.5,
        },
        {
            "session": 3,
            "ratings": 2,
            "observed_mean": 25.0,
            "expected_median_mean": 25.0,
            "below_median": 0.5,
            "below_boundary": 0.0,
        },
    ]


def point(session: int, total: str, *, rater: str = "client", scale: str = "outcome"):
    from alliance_app.measures import default_catalogue
    from alliance_app.measures.flags import RatingPoint

    instrument = default_catalogue().get(f"{scale}-adult")
    item = D(total) / 4
    return RatingPoint(session, rater, instrument, (item,) * 4, D(total))


def test_not_on_track_for_reads_the_clients_own_intake():
    from alliance_app.measures.expected import not_on_track_for

    history = [
        point(2, "10.0", rater="partner:Sam"),  # another rater's: never the intake
        point(1, "18.0"),
        point(1, "36.0", scale="session"),  # another scale's
        point(5, "30.0"),  # a later session: never the intake
    ]
    found = not_on_track_for(point(4, "22.8"), history, model=model(), band="adult", rules=RULES)
    assert found.params["intake"] == "18.0"
    assert (
        not_on_track_for(point(4, "23.0"), history, model=model(), band="adult", rules=RULES)
        is None
    )
    partner = point(4, "5.0", rater="partner:Sam")
    assert not_on_track_for(partner, history, model=model(), band="adult", rules=RULES) is None
    assert not_on_track_for(point(4, "5.0"), [], model=model(), band="adult", rules=RULES) is None
