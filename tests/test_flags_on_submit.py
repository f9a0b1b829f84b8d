"""Storing a rating raises the flags of DESIGN.md §3, in the same transaction, exactly once."""

from datetime import date
from decimal import Decimal

import pytest

from alliance_app.clinic.models import Episode
from alliance_app.feedback.models import Flag, FlagStatus, Rating
from alliance_app.feedback.services import episode_close, flag_acknowledge, flag_resolve
from tests import factories
from tests.factories import rate

pytestmark = pytest.mark.django_db


@pytest.fixture
def sessions(adult):
    episode = factories.episode(adult)
    return [factories.therapy_session(episode, number=n) for n in range(1, 8)]


def kinds(result) -> list[str]:
    return sorted(flag.kind for flag in result.flags)


def test_a_first_good_session_rating_raises_nothing(sessions):
    assert kinds(rate(sessions[0], "session-adult", "9.5 9.5 9.5 9.5")) == []
    assert Flag.objects.count() == 0


def test_a_session_total_below_36_raises_low_alliance_with_a_prompt(sessions):
    result = rate(sessions[0], "session-adult", "9.0 9.0 9.0 8.9")
    (flag,) = result.flags
    assert (flag.kind, flag.severity, flag.status) == ("low_alliance", 3, FlagStatus.OPEN)
    assert flag.explanation == (
        "Session rating 35.9, below 36.0: ask what could be done differently."
    )
    assert flag.client == sessions[0].episode.client
    assert flag.rating == result.rating


def test_36_exactly_is_not_low(sessions):
    assert kinds(rate(sessions[0], "session-adult", "9.0 9.0 9.0 9.0")) == []


def test_a_drop_of_one_point_from_the_previous_session_is_flagged(sessions):
    rate(sessions[0], "session-adult", "10.0 10.0 9.5 9.5")
    result = rate(sessions[1], "session-adult", "9.5 9.5 9.5 9.5")
    assert kinds(result) == ["alliance_drop"]
    assert "fell 1.0 points" in result.flags[0].explanation
    assert kinds(rate(sessions[2], "session-adult", "9.5 9.5 9.5 9.1")) == []  # 0.4


def test_a_low_item_with_a_good_total_names_the_item(sessions):
    result = rate(sessions[0], "session-adult", "10.0 10.0 8.9 9.5")
    (flag,) = result.flags
    assert (flag.kind, flag.item, flag.severity) == ("low_item", "approach", 1)
    assert flag.explanation.startswith("How we worked rated 8.9")


def test_raters_are_never_compared_with_each_other(adult):
    couple = factories.therapy_session(factories.episode(adult), fmt="couple")
    second = factories.therapy_session(couple.episode, number=2, fmt="couple")
    rate(couple, "session-adult", "10 10 10 10", rater="client")
    rate(couple, "session-adult", "9.2 9.2 9.2 9.2", rater="partner")
    # The partner's 36.8 after the client's 40.0 is no drop; their own 36.8 → 36.8 neither.
    assert kinds(rate(second, "session-adult", "9.2 9.2 9.2 9.2", rater="partner")) == []
    assert kinds(rate(second, "session-adult", "9.7 9.7 9.7 9.7", rater="client")) == [
        "alliance_drop"
    ]


def test_outcome_five_points_below_intake_is_deterioration(sessions):
    assert kinds(rate(sessions[0], "outcome-adult", "5 5 5 5")) == []  # intake
    result = rate(sessions[1], "outcome-adult", "4 4 3.5 3.5")  # 15.0 = intake − 5.0
    assert kinds(result) == ["deterioration"]
    assert result.flags[0].explanation.startswith("Outcome 15.0 is 5.0 points below intake (20.0)")
    # −4.9 is not a reliable worsening; at session 3 it is "no reliable improvement" instead.
    assert kinds(rate(sessions[2], "outcome-adult", "4 4 3.6 3.5")) == ["no_change"]


def test_lasting_deterioration_is_flagged_again_only_after_the_open_flag_is_resolved(sessions):
    rate(sessions[0], "outcome-adult", "5 5 5 5")
    first = rate(sessions[1], "outcome-adult", "3 3 3 3").flags[0]
    assert kinds(rate(sessions[2], "outcome-adult", "3 3 3 3")) == []
    flag_resolve(flag=first, by=sessions[0].episode.therapist, note="Plan changed.")
    assert kinds(rate(sessions[3], "outcome-adult", "3 3 3 3")) == ["deterioration"]


def test_no_reliable_improvement_by_session_3_is_flagged(sessions):
    rate(sessions[0], "outcome-adult", "5 5 5 5")
    assert kinds(rate(sessions[1], "outcome-adult", "5 5 5 6")) == []
    result = rate(sessions[2], "outcome-adult", "6 6 6 6.9")  # +4.9 at session 3
    assert kinds(result) == ["no_change"]
    assert "by session 3 (+4.9 since intake)" in result.flags[0].explanation


def test_the_organisations_thresholds_apply(org, sessions):
    org.alliance_drop = Decimal("2.0")
    org.low_item = Decimal("8.0")
    org.save()
    rate(sessions[0], "session-adult", "10 10 10 10")
    assert kinds(rate(sessions[1], "session-adult", "9.5 9.5 9.5 9.6")) == []  # drop 1.9
    assert kinds(rate(sessions[2], "session-adult", "10 10 10 8.1")) == []  # item 8.1 ≥ 8.0


def test_a_replay_raises_no_second_flag(sessions):
    key = factories.key()
    first = rate(sessions[0], "session-adult", "8 8 8 8", idempotency_key=key)
    again = rate(sessions[0], "session-adult", "8 8 8 8", idempotency_key=key)
    assert not again.created
    assert [f.pk for f in again.flags] == [f.pk for f in first.flags]
    assert Flag.objects.count() == 1 and Rating.objects.count() == 1


def test_child_scales_use_their_own_outcome_cutoff_and_the_same_alliance_rule(org, therapist):
    child = factories.client(org, therapist, age_band="child")
    episode = factories.episode(child)
    one, two = (factories.therapy_session(episode, number=n) for n in (1, 2))
    scores = {"relationship": "8.9", "goals": "9", "approach": "9", "overall": "9"}
    from alliance_app.feedback.services import rating_submit

    result = rating_submit(
        session=one, instrument_code="session-child", scores=scores, idempotency_key=factories.key()
    )
    assert kinds(result) == ["low_alliance"]
    outcome = {"me": "8", "family": "8", "school": "8", "everything": "8"}
    rating_submit(
        session=two,
        instrument_code="outcome-child",
        scores=outcome,
        idempotency_key=factories.key(),
    )
    assert Flag.objects.filter(kind="deterioration").count() == 0


def test_an_acknowledged_lasting_flag_lets_the_state_be_flagged_again(sessions):
    rate(sessions[0], "outcome-adult", "5 5 5 5")
    first = rate(sessions[1], "outcome-adult", "3 3 3 3").flags[0]
    # Waiting unseen: the same state is not stacked on top of it.
    assert kinds(rate(sessions[2], "outcome-adult", "3 3 3 3")) == []
    flag_acknowledge(flag=first, by=sessions[0].episode.therapist, note="Next session.")
    # Seen and still deteriorated a session later: asked about again.
    assert kinds(rate(sessions[3], "outcome-adult", "3 3 3 3")) == ["deterioration"]


def test_a_partners_deterioration_is_not_hidden_by_the_clients(adult):
    episode = factories.episode(adult)
    first, second = (factories.therapy_session(episode, n, fmt="couple") for n in (1, 2))
    for rater in ("client", "partner"):
        rate(first, "outcome-adult", "5 5 5 5", rater=rater)
    assert kinds(rate(second, "outcome-adult", "3 3 3 3", rater="client")) == ["deterioration"]
    assert kinds(rate(second, "outcome-adult", "3 3 3 3", rater="partner")) == ["deterioration"]


def test_two_partners_told_apart_by_label_are_flagged_each(adult):
    episode = factories.episode(adult)
    first, second = (factories.therapy_session(episode, n, fmt="family") for n in (1, 2))
    for label in ("Sam", "Alex"):
        rate(first, "outcome-adult", "5 5 5 5", rater="parent", label=label)
    for label in ("Sam", "Alex"):
        result = rate(second, "outcome-adult", "3 3 3 3", rater="parent", label=label)
        assert kinds(result) == ["deterioration"]


def test_a_flag_left_in_an_earlier_episode_hides_nothing_in_the_next(adult, therapist):
    earlier = factories.episode(adult, opened=date(2025, 1, 6))
    old = [factories.therapy_session(earlier, n) for n in (1, 2)]
    rate(old[0], "outcome-adult", "5 5 5 5")
    (waiting,) = rate(old[1], "outcome-adult", "3 3 3 3").flags
    # Closed straight in the database, as an episode closed before flags were resolved with
    # it would be: the old flag still waits.
    Episode.objects.filter(pk=earlier.pk).update(closed=date(2025, 3, 3), closure="planned")
    assert Flag.objects.get(pk=waiting.pk).status == FlagStatus.OPEN
    current = factories.episode(adult)
    now = [factories.therapy_session(current, n) for n in (1, 2)]
    rate(now[0], "outcome-adult", "5 5 5 5")
    assert kinds(rate(now[1], "outcome-adult", "3 3 3 3")) == ["deterioration"]


def test_closing_an_episode_resolves_its_waiting_flags_and_says_so(adult, therapist):
    episode = factories.episode(adult)
    sessions = [factories.therapy_session(episode, n) for n in (1, 2)]
    rate(sessions[0], "outcome-adult", "5 5 5 5")
    rate(sessions[1], "outcome-adult", "3 3 3 3")
    rate(sessions[1], "session-adult", "8 8 8 8")
    acknowledged = Flag.objects.get(kind="deterioration")
    flag_acknowledge(flag=acknowledged, by=therapist, note="Talk next time.")
    resolved_before = Flag.objects.get(kind="low_alliance")
    flag_resolve(flag=resolved_before, by=therapist, note="Talked it through.")
    other = factories.client(adult.organization, therapist, code="OTHER-1")
    rate(factories.therapy_session(factories.episode(other)), "session-adult", "8 8 8 8")

    assert episode_close(episode=episode, closure="planned", by=therapist) == 1
    acknowledged.refresh_from_db()
    assert acknowledged.status == FlagStatus.RESOLVED
    assert acknowledged.resolved_by == therapist
    assert acknowledged.resolved_note == "Resolved with the episode of care: Planned ending."
    assert acknowledged.acknowledged_note == "Talk next time."  # kept, not overwritten
    resolved_before.refresh_from_db()
    assert resolved_before.resolved_note == "Talked it through."
    # Another client's flag is not this episode's business.
    assert Flag.objects.get(client=other).status == FlagStatus.OPEN


def test_closing_resolves_a_never_acknowledged_flag_as_acknowledged_too(adult, therapist):
    episode = factories.episode(adult)
    rate(factories.therapy_session(episode, 1), "session-adult", "8 8 8 8")
    assert episode_close(episode=episode, closure="unplanned", by=therapist) == 1
    flag = Flag.objects.get()
    assert (flag.status, flag.acknowledged_by, flag.resolved_by) == (
        FlagStatus.RESOLVED,
        therapist,
        therapist,
    )
    assert flag.acknowledged_at == flag.resolved_at


def test_a_label_written_differently_is_the_same_rater(adult):
    episode = factories.episode(adult)
    first, second = (factories.therapy_session(episode, n, fmt="couple") for n in (1, 2))
    rate(first, "session-adult", "10 10 10 10", rater="partner", label="Sam Lee")
    result = rate(second, "session-adult", "9.5 9.5 9.5 9.5", rater="partner", label=" sam  lee ")
    assert result.rating.rater_label == "Sam Lee"
    # One series: the fall from 40.0 to 38.0 is seen as this partner's drop.
    assert kinds(result) == ["alliance_drop"]
    # Another kind of rater keeps its own label as typed.
    other = rate(second, "session-adult", "10 10 10 10", rater="parent", label="sam lee")
    assert other.rating.rater_label == "sam lee"
