"""Build the demo clinic once: same seed, same clinic. Ratings go through rating_submit."""

import random
import uuid
from datetime import date, datetime, time, timedelta

from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone

from alliance_app.accounts.models import Membership, Organization, Role, Team, User
from alliance_app.clinic.models import Client, Closure, Episode, SessionFormat, TherapySession
from alliance_app.feedback.instruments import catalogue
from alliance_app.feedback.models import Channel, Flag, Rater
from alliance_app.feedback.services import flag_acknowledge, flag_resolve, rating_submit
from alliance_app.measures import AgeBand, Scale
from alliance_app.seeding.demo import ClientPlan, demo_plans, history

DEMO_SLUG = "demo"
DEMO_PASSWORD = "alliance-demo"  # noqa: S105 -- printed for the demo; never a real account
KEY_NAMESPACE = uuid.UUID("6f1d7c52-2a39-4a51-9f3e-8f0e4c1b7a10")

TEAMS = ("North team", "South team")
PEOPLE = (
    # username, first name, last name, role, team index, supervised team index
    ("admin", "Ada", "Okafor", Role.ADMIN, None, None),
    ("supervisor1", "Sam", "Lindqvist", Role.SUPERVISOR, 0, 0),
    ("supervisor2", "Priya", "Raman", Role.SUPERVISOR, 1, 1),
    ("therapist1", "Tom", "Berger", Role.THERAPIST, 0, None),
    ("therapist2", "Lena", "Fischer", Role.THERAPIST, 0, None),
    ("therapist3", "Jonas", "Meyer", Role.THERAPIST, 0, None),
    ("therapist4", "Maya", "Costa", Role.THERAPIST, 1, None),
    ("therapist5", "Rafael", "Ortiz", Role.THERAPIST, 1, None),
    ("therapist6", "Nora", "Haddad", Role.THERAPIST, 1, None),
)


class Command(BaseCommand):
    help = "Create the demo organisation with its staff and about sixty clients (only once)."

    def add_arguments(self, parser):
        parser.add_argument("--seed", type=int, default=20261125, help="random seed")

    def handle(self, *args, seed: int, **options):
        if Organization.objects.filter(slug=DEMO_SLUG).exists():
            self.stdout.write("Demo data is already there; nothing changed.")
        else:
            with transaction.atomic():
                counts = build_demo(random.Random(seed), today=timezone.localdate())
            self.stdout.write(
                self.style.SUCCESS(
                    "Demo clinic created: {clients} clients, {sessions} sessions, "
                    "{ratings} ratings.".format(**counts)
                )
            )
        self.stdout.write(demo_logins())


def demo_logins() -> str:
    lines = [f"Demo logins (password for all: {DEMO_PASSWORD}):"]
    for username, first, last, role, *_ in PEOPLE:
        lines.append(f"  {username:<12} {first} {last}, {role.label}")
    return "\n".join(str(line) for line in lines)


def build_demo(rng: random.Random, *, today: date) -> dict[str, int]:
    organization = Organization.objects.create(name="Riverside Counselling (demo)", slug=DEMO_SLUG)
    teams = [Team.objects.create(organization=organization, name=name) for name in TEAMS]
    therapists = []
    for username, first, last, role, team, supervised in PEOPLE:
        user = User.objects.create_user(
            username=username,
            password=DEMO_PASSWORD,
            first_name=first,
            last_name=last,
            email=f"{username}@example.org",
            is_staff=role is Role.ADMIN,
        )
        membership = Membership.objects.create(
            user=user,
            organization=organization,
            role=role,
            team=teams[team] if team is not None else None,
        )
        if supervised is not None:
            membership.supervised_teams.add(teams[supervised])
        if role is Role.THERAPIST:
            therapists.append(user)

    counts = {"clients": 0, "sessions": 0, "ratings": 0}
    for index, plan in enumerate(demo_plans(rng), start=1):
        therapist = therapists[index % len(therapists)]
        client = Client.objects.create(
            organization=organization,
            code=f"C-{1000 + index * 7}",
            age_band=plan.age_band,
            primary_therapist=therapist,
            active=not plan.closed,
        )
        sessions, ratings = _client_history(rng, client, therapist, plan, today)
        counts["clients"] += 1
        counts["sessions"] += sessions
        counts["ratings"] += ratings
    _work_through_old_flags(rng, organization, today)
    return counts


def _work_through_old_flags(rng: random.Random, organization: Organization, today: date) -> None:
    """A clinic that uses Alliance has talked about last month's flags; this week's are open."""
    notes = (
        "Talked it through in session; agreed to keep an eye on it.",
        "Discussed with the client; adjusted the focus of our work.",
        "Raised in supervision; plan reviewed with the client.",
    )
    flags = Flag.objects.filter(client__organization=organization).select_related(
        "rating__session", "client__primary_therapist"
    )
    for flag in flags.order_by("pk"):
        age = (today - flag.rating.session.date).days
        therapist = flag.client.primary_therapist
        if age > 21:
            flag_resolve(flag=flag, by=therapist, note=rng.choice(notes))
        elif age > 7 and rng.random() < 0.5:
            flag_acknowledge(flag=flag, by=therapist, note="Will bring it up next session.")


def _client_history(rng, client, therapist, plan: ClientPlan, today: date) -> tuple[int, int]:
    # Closed episodes ended some weeks ago; open ones had their last session this week.
    weeks_since_last = rng.randint(3, 20) if plan.closed else rng.randint(0, 1)
    last = today - timedelta(weeks=weeks_since_last, days=rng.randint(0, 4))
    first = last - timedelta(weeks=plan.sessions - 1)
    episode = Episode.objects.create(
        client=client,
        therapist=therapist,
        opened=first,
        closed=last if plan.closed else None,
        closure=Closure(plan.closed) if plan.closed else "",
    )
    session_format = SessionFormat.COUPLE if len(plan.raters) > 1 else SessionFormat.INDIVIDUAL
    instruments = {scale: catalogue().for_client(scale, AgeBand(plan.age_band)) for scale in Scale}
    ratings = 0
    for scores in history(rng, plan):
        day = first + timedelta(weeks=scores.number - 1)
        session = TherapySession.objects.create(
            episode=episode, number=scores.number, date=day, format=session_format
        )
        channel = Channel.REMOTE if rng.random() < 0.1 else Channel.TABLET
        for scale, by_rater in ((Scale.OUTCOME, scores.outcome), (Scale.SESSION, scores.session)):
            instrument = instruments[scale]
            for rater, items in by_rater.items():
                rating_submit(
                    session=session,
                    instrument_code=instrument.code,
                    scores=dict(zip(instrument.item_keys, items, strict=True)),
                    idempotency_key=uuid.uuid5(
                        KEY_NAMESPACE, f"{client.code}/{scores.number}/{scale}/{rater}"
                    ),
                    rater=Rater(rater),
                    channel=channel,
                    entered_by=therapist,
                    stored_at=_at(day, hour=9 if scale is Scale.OUTCOME else 10),
                )
                ratings += 1
    return plan.sessions, ratings


def _at(day: date, hour: int) -> datetime:
    return timezone.make_aware(datetime.combine(day, time(hour)))
