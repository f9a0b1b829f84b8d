"""Small builders for test data: each returns a saved object with sensible defaults."""

import itertools
import json
import uuid
from datetime import date

from alliance_app.accounts.models import Membership, Organization, Role, Team, User
from alliance_app.clinic.models import Client, Episode, SessionFormat, TherapySession

_counter = itertools.count(1)

PASSWORD = "a-long-test-password"


def organization(name: str = "") -> Organization:
    n = next(_counter)
    return Organization.objects.create(name=name or f"Clinic {n}", slug=f"clinic-{n}")


def team(org: Organization, name: str = "") -> Team:
    return Team.objects.create(organization=org, name=name or f"Team {next(_counter)}")


def user(
    org: Organization, role: Role = Role.THERAPIST, team: Team | None = None, username: str = ""
) -> User:
    account = User.objects.create_user(
        username=username or f"user{next(_counter)}",
        password=PASSWORD,
        first_name=username.title() if username else "Test",
    )
    Membership.objects.create(user=account, organization=org, role=role, team=team)
    return account


def client(org: Organization, therapist: User, age_band: str = "adult", code: str = "") -> Client:
    return Client.objects.create(
        organization=org,
        code=code or f"C{next(_counter)}",
        age_band=age_band,
        primary_therapist=therapist,
    )


def episode(patient: Client, opened: date = date(2026, 1, 5)) -> Episode:
    return Episode.objects.create(
        client=patient, therapist=patient.primary_therapist, opened=opened
    )


def therapy_session(
    ep: Episode, number: int = 1, fmt: str = SessionFormat.INDIVIDUAL
) -> TherapySession:
    return TherapySession.objects.create(
        episode=ep, number=number, date=date(2026, 1, 5 + number), format=fmt
    )


def key() -> uuid.UUID:
    return uuid.uuid4()


ADULT_OUTCOME_KEYS = ("personal", "relationships", "social", "overall")
SESSION_KEYS = ("relationship", "goals", "approach", "overall")


def rate(session, instrument: str, items: str, rater: str = "client", label: str = "", **kwargs):
    """Submit a rating through the service; items as "9.5 9.5 9.0 9.0"."""
    from alliance_app.feedback.services import rating_submit

    keys = SESSION_KEYS if instrument.startswith("session") else ADULT_OUTCOME_KEYS
    return rating_submit(
        session=session,
        instrument_code=instrument,
        scores=dict(zip(keys, items.split(), strict=True)),
        idempotency_key=kwargs.pop("idempotency_key", None) or key(),
        rater=rater,
        rater_label=label,
        **kwargs,
    )


def expected_parameters(
    *,
    median: tuple[float, float, float, float] = (25.0, 0.0, 0.0, 0.0),
    boundary: tuple[float, float, float, float] = (23.0, 0.0, 0.0, 0.0),
    max_session: int = 10,
    bands: tuple[str, ...] = ("adult",),
) -> dict:
    """A hand-made expected-response band in the documented JSON form: each line's intercept
    and its slopes on intake, ln(session) and their product."""
    from alliance_app.measures.expected import SCHEMA, TERMS

    return {
        "schema": SCHEMA,
        "quantile": 0.1,
        "max_session": max_session,
        "episodes": 500,
        "bands": {
            band: {
                "median": dict(zip(TERMS, median, strict=True)),
                "boundary": dict(zip(TERMS, boundary, strict=True)),
                "episodes": 500,
            }
            for band in bands
        },
    }


def expected_band_load(org: Organization, source: str = "Network fit 2025", **lines):
    """Put a hand-made band (`expected_parameters`) in use, as an admin loading a file would."""
    from alliance_app.feedback.expected import parameters_load

    raw = json.dumps(expected_parameters(**lines)).encode()
    return parameters_load(org, raw, by=None, source=source)


def logged_in(user: User):
    """A test client with `user` signed in (no password, no two-factor step)."""
    from django.test import Client as HttpClient

    http = HttpClient()
    http.force_login(user)
    return http
