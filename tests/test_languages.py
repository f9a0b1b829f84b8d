"""Who reads which language: staff their own choice (else the browser's), clients theirs in
client mode and behind remote links, flags in the reader's, dates one way per language."""

import importlib
from datetime import date, time
from decimal import Decimal

import pytest
from django.apps import apps
from django.urls import reverse
from django.utils import translation
from django.utils.formats import date_format, get_format, time_format

from alliance_app.feedback.links import remote_link_create
from alliance_app.feedback.models import Flag
from alliance_app.feedback.records import client_data
from alliance_app.measures import FlagKind
from tests import factories
from tests.extraction import shipped_translation as translated

pytestmark = pytest.mark.django_db

JSON = {"HTTP_ACCEPT": "application/json"}
OUTCOME = {"personal": "5.0", "relationships": "6.0", "social": "5.5", "overall": "5.5"}
SESSION = {"relationship": "9.5", "goals": "9.5", "approach": "7.0", "overall": "9.5"}


def lang_of(response) -> str:
    return response.content.decode().split('<html lang="', 1)[1].split('"', 1)[0]


def speaks(language: str, *texts: str):
    """Whether a page is in `language`: its lang attribute, and texts only it contains."""

    def check(response):
        page = response.content.decode()
        assert lang_of(response) == language, lang_of(response)
        for text in texts:
            assert text in page, text

    return check


@pytest.fixture
def logged_in(client, therapist):
    client.force_login(therapist)
    return client


@pytest.fixture
def today(logged_in, adult):
    logged_in.post(reverse("session_start", args=[adult.pk]), {"format": "individual"})
    return adult.episodes.get().sessions.get()


# Staff


def test_staff_read_the_language_they_chose(logged_in, therapist):
    therapist.language = "nb"
    therapist.save()
    response = logged_in.get(reverse("caseload"), HTTP_ACCEPT_LANGUAGE="es")
    speaks("nb", "Logg ut")(response)
    assert response["Content-Language"] == "nb"


@pytest.mark.parametrize(
    ("accept", "language"), [("es", "es"), ("nb-NO,nb;q=0.9", "nb"), ("de", "en"), ("", "en")]
)
def test_without_a_choice_the_browser_decides_else_english(logged_in, accept, language):
    response = logged_in.get(reverse("caseload"), HTTP_ACCEPT_LANGUAGE=accept)
    assert lang_of(response) == language


def test_the_language_page_saves_the_choice_and_goes_back(logged_in, therapist):
    page = logged_in.get(reverse("language_setting"))
    assert "Norsk bokmål" in page.content.decode()
    response = logged_in.post(
        reverse("language_setting"), {"language": "es", "next": reverse("caseload")}
    )
    assert response.url == reverse("caseload")
    therapist.refresh_from_db()
    assert therapist.language == "es"
    speaks("es", "Cerrar sesión")(logged_in.get(reverse("caseload")))
    logged_in.post(reverse("language_setting"), {"language": ""})
    therapist.refresh_from_db()
    assert therapist.language == ""


def test_the_language_page_refuses_a_language_not_offered(logged_in, therapist):
    response = logged_in.post(reverse("language_setting"), {"language": "xx"})
    assert response.status_code == 400
    assert "Select a valid choice" in response.content.decode()
    therapist.refresh_from_db()
    assert therapist.language == ""


def test_the_header_offers_the_language_page(logged_in, therapist):
    therapist.language = "nb"
    therapist.save()
    page = logged_in.get(reverse("caseload")).content.decode()
    assert f'href="{reverse("language_setting")}?next=/caseload/"' in page
    assert 'data-testid="language" title="Språk">Norsk bokmål</a>' in page


# Client mode


def test_client_mode_speaks_the_clients_language_and_the_unlock_page_the_therapists(
    logged_in, therapist, adult, today
):
    therapist.language = "es"
    therapist.save()
    adult.language = "nb"
    adult.save()
    logged_in.post(reverse("hand_over", args=[today.pk]), {"scale": "outcome"})
    speaks("nb", "Hvordan det har gått", "Meg selv")(logged_in.get(reverse("client_rate")))
    speaks("es")(logged_in.get(reverse("unlock")))
    page = logged_in.get(reverse("client_rate")).content.decode()
    action = page.split('id="rating-form"', 1)[1].split('action="', 1)[1].split('"', 1)[0]
    key = page.split('name="idempotency_key" value="', 1)[1].split('"', 1)[0]
    stored = logged_in.post(action, {**OUTCOME, "idempotency_key": key}, **JSON)
    assert stored.status_code == 201
    rating = today.ratings.get()
    assert rating.instrument == "outcome-adult-nb"
    speaks("nb")(logged_in.get(reverse("rate_thanks")))
    back = logged_in.post(reverse("unlock"), {"password": factories.PASSWORD})
    assert back.url == reverse("rating_result", args=[rating.pk])
    # Back with the therapist: their language, and the client's answers named in it.
    speaks("es", "Las personas más cercanas")(logged_in.get(back.url))


def test_client_mode_asks_the_session_scale_in_the_clients_language(logged_in, adult, today):
    adult.language = "nb"
    adult.save()
    logged_in.post(reverse("hand_over", args=[today.pk]), {"scale": "session"})
    response = logged_in.get(reverse("client_rate"))
    speaks("nb", "Hvordan denne timen gikk")(response)


# Remote links


@pytest.fixture
def spanish_link(adult, therapist, session_one):
    adult.language = "es"
    adult.save()
    return remote_link_create(session=session_one, scale="session", created_by=therapist)


def test_a_remote_link_speaks_the_clients_language_whatever_the_browser(client, spanish_link):
    assert spanish_link.link.instrument == "session-adult-es"
    url = reverse("remote_rate", args=[spanish_link.token])
    response = client.get(url, HTTP_ACCEPT_LANGUAGE="nb")
    speaks("es", "Cómo fue esta sesión", "Sentirme escuchado")(response)
    key = response.content.decode().split('name="idempotency_key" value="', 1)[1].split('"')[0]
    stored = client.post(url, {**SESSION, "idempotency_key": key}, HTTP_ACCEPT_LANGUAGE="nb")
    assert stored.json() == {"status": "stored", "next": reverse("remote_thanks") + "?lang=es"}
    speaks("es")(client.get(stored.json()["next"], HTTP_ACCEPT_LANGUAGE="nb"))
    used = client.get(url, HTTP_ACCEPT_LANGUAGE="nb")
    assert used.status_code == 410
    speaks(
        "es",
        translated("es", "This link has already been used. Thank you, your answers arrived."),
    )(used)


def test_a_remote_links_errors_are_in_the_clients_language(client, spanish_link):
    url = reverse("remote_rate", args=[spanish_link.token])
    response = client.post(
        url,
        {**SESSION, "approach": "", "idempotency_key": str(factories.key())},
        HTTP_ACCEPT_LANGUAGE="en",
    )
    assert response.status_code == 400
    assert response.json()["errors"]["approach"] == [translated("es", "Please mark this line.")]


def test_a_link_that_names_nothing_speaks_the_browsers_language(client):
    response = client.get(reverse("remote_rate", args=["nonsense"]), HTTP_ACCEPT_LANGUAGE="nb")
    assert response.status_code == 404
    assert lang_of(response) == "nb"


# Flags


def low_alliance_flag(session) -> Flag:
    (flag,) = factories.rate(session, "session-adult", "8 8 8 8").flags
    return flag


def test_a_flag_keeps_its_message_and_values_and_shows_in_the_readers_language(session_one):
    flag = Flag.objects.get(pk=low_alliance_flag(session_one).pk)
    message = "Session rating %(total)s, below %(cutoff)s: ask what could be done differently."
    assert (flag.kind, flag.message, flag.params) == (
        FlagKind.LOW_ALLIANCE,
        message,
        {"total": "32.0", "cutoff": "36.0"},
    )
    assert (
        flag.explanation == "Session rating 32.0, below 36.0: ask what could be done differently."
    )
    shown = {}
    for language in ("en", "es", "nb"):
        with translation.override(language):
            shown[language] = flag.explained
        assert shown[language] == translated(language, message) % flag.params
    assert len(set(shown.values())) == 3


def test_the_pages_show_a_flag_in_the_readers_language(logged_in, therapist, session_one):
    flag = low_alliance_flag(session_one)
    therapist.language = "nb"
    therapist.save()
    with translation.override("nb"):
        expected = flag.explained
    page = logged_in.get(reverse("client_detail", args=[flag.client_id])).content.decode()
    assert expected in page
    assert flag.explanation not in page


def test_an_item_flag_names_the_item_in_the_readers_language(session_one):
    (flag,) = factories.rate(session_one, "session-adult-es", "9.5 9.5 8.0 9.5").flags
    assert flag.params["instrument"] == "session-adult-es"
    for language, label in (("en", "How we worked"), ("es", "Cómo trabajamos")):
        with translation.override(language):
            assert flag.explained.startswith(label), flag.explained
    with translation.override("nb"):
        assert "Hvordan vi jobbet" in flag.explained


def test_the_client_data_export_explains_flags_in_the_readers_language(session_one, adult):
    flag = low_alliance_flag(session_one)
    with translation.override("nb"):
        (row,) = client_data(adult)["flags"]
        assert row["explanation"] == flag.explained != flag.explanation
        assert "message" not in row and "params" not in row


def test_a_flag_stored_before_messages_were_kept_shows_its_stored_text(session_one):
    flag = low_alliance_flag(session_one)
    Flag.objects.filter(pk=flag.pk).update(message="", params={}, explanation="Old words.")
    flag.refresh_from_db()
    with translation.override("nb"):
        assert flag.explained == "Old words."


def test_the_migration_reads_stored_explanations_back_into_messages(session_one):
    low = low_alliance_flag(session_one)
    (item,) = factories.rate(
        factories.therapy_session(session_one.episode, number=2), "session-adult", "9.5 9.5 8 9.5"
    ).flags
    third = factories.therapy_session(session_one.episode, number=3)
    odd = factories.rate(third, "session-adult", "8 8 8 8").flags[0]
    Flag.objects.update(message="", params={})
    Flag.objects.filter(pk=odd.pk).update(explanation="Written by hand.")
    migration = importlib.import_module("alliance_app.feedback.migrations.0011_flag_message")
    migration.fill(apps, None)
    low.refresh_from_db()
    item.refresh_from_db()
    odd.refresh_from_db()
    assert (low.message, low.params) == (
        "Session rating %(total)s, below %(cutoff)s: ask what could be done differently.",
        {"total": "32.0", "cutoff": "36.0"},
    )
    assert item.params == {
        "item": "How we worked",
        "score": "8.0",
        "threshold": "9.0",
        "instrument": "session-adult",
    }
    assert (odd.message, odd.params) == ("", {})
    with translation.override("nb"):
        assert "Hvordan vi jobbet" in item.explained
        assert odd.explained == "Written by hand."


# Dates


@pytest.mark.parametrize(
    ("language", "shown"), [("en", "30 Nov 2026"), ("es", "30/11/2026"), ("nb", "30.11.2026")]
)
def test_each_language_writes_a_date_one_way(language, shown):
    with translation.override(language):
        assert get_format("DATE_FORMAT") == get_format("SHORT_DATE_FORMAT")
        assert date_format(date(2026, 11, 30)) == shown
        assert date_format(date(2026, 11, 30), "SHORT_DATE_FORMAT") == shown
        assert time_format(time(12, 9)) == "12:09"


def test_the_caseload_and_the_client_page_write_dates_alike(logged_in, therapist, session_one):
    factories.rate(session_one, "session-adult", "9 9 9 9")
    therapist.language = "nb"
    therapist.save()
    caseload = logged_in.get(reverse("caseload")).content.decode()
    client_page = logged_in.get(
        reverse("client_detail", args=[session_one.episode.client_id])
    ).content.decode()
    assert "06.01.2026" in caseload
    assert "06.01.2026" in client_page
    assert "6 jan" not in caseload.lower()


# One scale in several languages


def test_ratings_in_two_languages_are_one_course(session_one, adult):
    """A client who changes language mid-episode keeps one course: the drop, the worsening
    since intake and the episode's ends are read across the language versions."""
    factories.rate(session_one, "outcome-adult", "6 6 6 6")
    factories.rate(session_one, "session-adult", "9.5 9.5 9.5 9.5")
    adult.language = "nb"
    adult.save()
    second = factories.therapy_session(session_one.episode, number=2)
    outcome = factories.rate(second, "outcome-adult-nb", "4 4 4 4")
    session = factories.rate(second, "session-adult-nb", "9 9 9 9")
    assert [flag.kind for flag in outcome.flags] == [FlagKind.DETERIORATION]
    assert [flag.kind for flag in session.flags] == [FlagKind.ALLIANCE_DROP]
    assert outcome.flags[0].params == {"total": "16.0", "change": "8.0", "intake": "24.0"}
    ends = session_one.episode.outcome_ends
    assert (ends.first_total, ends.latest_total, ends.instrument) == (24, 16, "outcome-adult")


def test_a_rupture_tie_names_its_parts_in_the_readers_language():
    from alliance_app.feedback.models import explain
    from alliance_app.measures import RatingPoint, default_catalogue, explain_rupture, ruptures_for

    instrument = default_catalogue().get("session-adult")

    def point(number, items):
        scores = tuple(Decimal(score) for score in items.split())
        return RatingPoint(number, "client", instrument, scores, sum(scores))

    before = [point(n, "9.9 9.9 9.9 9.8") for n in (1, 2, 3)]
    (rupture,) = ruptures_for([*before, point(4, "9.9 8.9 8.9 9.8")], s=Decimal("1.0"))
    found = explain_rupture(rupture)
    with translation.override("en"):
        assert "the goals and tasks items fell most" in explain(found.message, found.params)
    for language in ("es", "nb"):
        parts = translated(language, "%(parts)s and %(last)s") % {
            "parts": translated(language, "goals"),
            "last": translated(language, "tasks"),
        }
        with translation.override(language):
            shown = explain(found.message, found.params)
        assert parts in shown, shown
        assert "goals and tasks" not in shown
