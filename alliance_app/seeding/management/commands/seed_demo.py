"""Build the demo clinic once: same seed, same clinic. Ratings go through rating_submit, but for
the archived clients' past episodes, inserted in bulk as the scale data are, on which the
expected-response band is fitted before the present clients' ratings are stored."""

import random
import uuid
from dataclasses import replace
from datetime import date, datetime, time, timedelta

from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone

from alliance_app.accounts.models import Membership, Organization, Role, Team, User
from alliance_app.clinic.models import Client, Closure, Episode, SessionFormat, TherapySession
from alliance_app.feedback import expected, rollups, ruptures
from alliance_app.feedback.instruments import catalogue
from alliance_app.feedback.models import (
    Channel,
    ExpectedResponseFit,
    Flag,
    FlagStatus,
    Rater,
    Reflection,
    ReflectionOptionKind,
    Rupture,
    TensionReport,
)
from alliance_app.feedback.reflecting import reflection_save
from alliance_app.feedback.reflections import options_for
from alliance_app.feedback.services import flag_acknowledge, flag_resolve, rating_submit
from alliance_app.measures import (
    FALLBACK_LANGUAGE,
    AgeBand,
    BordinDimension,
    FlagKind,
    RuptureStatus,
    Scale,
)
from alliance_app.seeding.demo import (
    STORY,
    TASKS_THERAPIST,
    Alliance,
    ClientPlan,
    StoryClient,
    WrittenReflection,
    demo_plans,
    history,
    past_plans,
    written_reflection,
)
from alliance_app.seeding.scale import Clinic, RowBatch, ScaleClient, client_rows, ruptures_settle

DEMO_SLUG = "demo"
DEMO_PASSWORD = "alliance-demo"  # noqa: S105 -- printed for the demo; never a real account
KEY_NAMESPACE = uuid.UUID("6f1d7c52-2a39-4a51-9f3e-8f0e4c1b7a10")
# The archived clients' codes run from C-5001, clear of the present clients'.
PAST_CODES = 5000

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

# Of the ruptures and reported tensions therapists have taken up, how many they reflected on.
REFLECTED_SHARE = 0.6


class Command(BaseCommand):
    help = "Create the demo organisation with its staff and about sixty clients (only once)."

    def add_arguments(self, parser):
        parser.add_argument("--seed", type=int, default=20261125, help="random seed")

    def handle(self, *args, seed: int, **options):
        if Organization.objects.filter(slug=DEMO_SLUG).exists():
            self.stdout.write("Demo data is already there; nothing changed.")
        else:
            with transaction.atomic():
                counts = build_demo(
                    random.Random(seed),
                    past=random.Random(f"past/{seed}"),
                    today=timezone.localdate(),
                )
            self.stdout.write(
                self.style.SUCCESS(
                    "Demo clinic created: {clients} clients, {sessions} sessions, "
                    "{ratings} ratings, {ruptures} ruptures, {tensions} tensions reported, "
                    "{reflections} reflections; {past} archived clients' closed episodes, "
                    "{band}.".format(**counts)
                )
            )
        self.stdout.write(demo_logins())


def demo_logins() -> str:
    lines = [f"Demo logins (password for all: {DEMO_PASSWORD}):"]
    for username, first, last, role, *_ in PEOPLE:
        lines.append(f"  {username:<12} {first} {last}, {role.label}")
    return "\n".join(str(line) for line in lines)


def build_demo(rng: random.Random, *, past: random.Random, today: date) -> dict[str, int | str]:
    """The demo organisation. `past` draws the archived clients' history, so that the present
    clients come out of `rng` as they did before the clinic had a past."""
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

    archived = _past_insert(past, organization, therapists, today)
    # Fitted before the present clients' ratings go in, so that rating_submit raises their
    # not-on-track flags against it as it would in a clinic with a band in use.
    fit = expected.fit_run(expected.fit_create(organization, by=None))
    # rating_submit reads the band from the organisation the sessions below hang from.
    organization.refresh_from_db(fields=["expected_response"])
    counts: dict[str, int | str] = {"clients": 0, "sessions": 0, "ratings": 0}
    counts["past"] = len(archived)
    counts["band"] = _fit_said(fit)
    plans = demo_plans(rng)
    for index, plan in enumerate(plans, start=1):
        therapist = therapists[index % len(therapists)]
        if therapist.username == TASKS_THERAPIST and plan.alliance is not Alliance.LOW:
            plan = replace(plan, fall=BordinDimension.TASKS)
        # Closed episodes ended some weeks ago; open ones had their last session this week.
        weeks_since_last = rng.randint(3, 20) if plan.closed else rng.randint(0, 1)
        last = today - timedelta(weeks=weeks_since_last, days=rng.randint(0, 4))
        code = f"C-{1007 + index * 7}"
        _client_history(rng, counts, organization, code, therapist, plan, last)
    by_username = {therapist.username: therapist for therapist in therapists}
    story = {}
    # The story's codes come first where open flags weigh the same (C-1001 on; the others run
    # from C-1014 in sevens).
    for index, told in enumerate(STORY, start=1):
        last = today - timedelta(days=told.days_since_last)
        therapist = by_username[told.therapist]
        code = f"C-{1000 + index}"
        client = _client_history(rng, counts, organization, code, therapist, told.plan, last)
        story[client] = told
    # The story's ruptures wait for the user, or for the reflection the story gives them.
    waiting = Flag.objects.filter(
        client__in=story, rating__rupture__isnull=False, kind__in=_REFLECTED_KINDS
    )
    # The past's flags were worked through as they were inserted.
    past_flags = Flag.objects.filter(client__in=archived)
    _work_through_old_flags(rng, organization, today, keep=waiting | past_flags)
    for client, told in story.items():
        if told.reflection is not None:
            _story_reflection(organization, client, told)
    _reflect(rng, organization, exclude=[*story, *archived])
    _date_taken_up(organization)
    # The SD in force was the fallback while the ratings went in; measure the clinic's own and
    # apply it, as `manage.py rebuild_ruptures` would.
    ruptures.sd_measure(organization)
    ruptures.rebuild(organization)
    counts["ruptures"] = Rupture.objects.filter(episode__client__organization=organization).count()
    counts["tensions"] = TensionReport.objects.filter(
        rating__session__episode__client__organization=organization, tension=True
    ).count()
    counts["reflections"] = Reflection.objects.filter(
        flag__client__organization=organization
    ).count()
    return counts


_REFLECTED_KINDS = (FlagKind.RUPTURE.value, FlagKind.CLIENT_REPORTED_TENSION.value)


def _past_insert(
    rng: random.Random, organization: Organization, therapists: list[User], today: date
) -> list[Client]:
    """The archived clients and their closed episodes, in bulk: the rows and flags rating_submit
    would have stored, worked through and reflected on as a clinic would, their ruptures and
    summary rows (`seeding.scale`). Hundreds of episodes in about a second, where the submit
    service would take half a minute."""
    clinic = Clinic.of(organization, therapists, today)
    batch = RowBatch()
    for number, plan in enumerate(past_plans(rng), start=1):
        owner = number % len(therapists)
        if therapists[owner].username == TASKS_THERAPIST and plan.alliance is not Alliance.LOW:
            plan = replace(plan, fall=BordinDimension.TASKS)
        entry = ScaleClient(code=f"C-{PAST_CODES + number}", plan=plan, therapist=owner)
        client_rows(rng, clinic, entry, batch)
    batch.insert()
    rollups.rebuild(Episode.objects.filter(client__organization=organization))
    ruptures_settle(rng, organization, today)
    return batch.clients


def _fit_said(fit: ExpectedResponseFit) -> str:
    if fit.parameters:
        return f"the expected-response band fitted on {fit.episodes} of them"
    return f"no expected-response band ({fit.message})"


def _work_through_old_flags(
    rng: random.Random, organization: Organization, today: date, *, keep
) -> None:
    """A clinic that uses Alliance has talked about last month's flags; this week's are open."""
    notes = (
        "Talked it through in session; agreed to keep an eye on it.",
        "Discussed with the client; adjusted the focus of our work.",
        "Raised in supervision; plan reviewed with the client.",
    )
    flags = (
        Flag.objects.filter(client__organization=organization)
        .exclude(pk__in=keep.values("pk"))
        .select_related("rating__session", "client__primary_therapist")
    )
    for flag in flags.order_by("pk"):
        age = (today - flag.rating.session.date).days
        therapist = flag.client.primary_therapist
        if age > 21:
            flag_resolve(flag=flag, by=therapist, note=rng.choice(notes))
        elif age > 7 and rng.random() < 0.5:
            flag_acknowledge(flag=flag, by=therapist, note="Will bring it up next session.")


def _story_reflection(organization: Organization, client: Client, told: StoryClient) -> None:
    """The story's therapist took up the rupture and wrote the reflection: its flags resolved
    once it was repaired or the episode ended, acknowledged while it is neither."""
    therapist = client.primary_therapist
    flags = Flag.objects.filter(
        client=client, rating__rupture__isnull=False, kind__in=_REFLECTED_KINDS
    ).select_related("rating__rupture")
    for flag in flags.filter(status=FlagStatus.OPEN).order_by("pk"):
        if flag.rating.rupture.status == RuptureStatus.REPAIRED or told.plan.closed:
            flag_resolve(flag=flag, by=therapist, note="Talked it through; back where we were.")
        else:
            flag_acknowledge(flag=flag, by=therapist, note="Talked about it the next week.")
    _reflection_create(
        organization,
        flags.get(kind=FlagKind.RUPTURE.value),
        therapist,
        told.reflection,
    )


def _reflect(rng: random.Random, organization: Organization, *, exclude) -> None:
    """Reflections on some of the ruptures and reported tensions that therapists have taken up."""
    flags = (
        Flag.objects.filter(
            client__organization=organization,
            kind__in=_REFLECTED_KINDS,
            status__in=(FlagStatus.ACKNOWLEDGED, FlagStatus.RESOLVED),
        )
        .exclude(client__in=exclude)
        .exclude(kind=FlagKind.CLIENT_REPORTED_TENSION.value, rating__rupture__isnull=False)
        .select_related("client__primary_therapist", "rating__rupture")
        .order_by("pk")
    )
    for flag in flags:
        if rng.random() >= REFLECTED_SHARE:
            continue
        therapist = flag.client.primary_therapist
        rupture = getattr(flag.rating, "rupture", None)
        reflection = written_reflection(
            rng,
            rupture.dimensions.split() if rupture is not None else (),
            leaning=BordinDimension.TASKS if therapist.username == TASKS_THERAPIST else None,
        )
        _reflection_create(organization, flag, therapist, reflection)


def _date_taken_up(organization: Organization) -> None:
    """The services stamp an acknowledgement or a resolution with the present moment; in the
    demo's history the therapist took each flag up in the days after the session that raised
    it, and resolved it some days later (never after now). The days come from the flag's id,
    so the demo's random draws stay as they were."""
    now = timezone.now()
    flags = list(
        Flag.objects.filter(client__organization=organization, acknowledged_at__isnull=False)
        .select_related("rating__session")
        .order_by("pk")
    )
    for flag in flags:
        taken_up = _at(flag.rating.session.date + timedelta(days=1 + flag.pk % 3), hour=17)
        flag.acknowledged_at = min(taken_up, now)
        if flag.resolved_at is not None:
            flag.resolved_at = min(taken_up + timedelta(days=flag.pk % 5), now)
    Flag.objects.bulk_update(flags, ["acknowledged_at", "resolved_at"])


def _reflection_create(
    organization: Organization, flag: Flag, author: User, written: WrittenReflection
) -> Reflection:
    """The reflection written through the form's service, as a therapist would."""
    markers = {o.code: o for o in options_for(organization.pk, ReflectionOptionKind.MARKER)}
    strategies = {o.code: o for o in options_for(organization.pk, ReflectionOptionKind.STRATEGY)}
    return reflection_save(
        flag=flag,
        by=author,
        marker=markers[written.marker],
        dimension=written.dimension.value,
        strategies=[strategies[code] for code in written.strategies],
        note=written.note,
        teaching_consent=written.teaching_consent,
    )


# Two clients who rate in their own language: client mode and their links speak it (README,
# Languages).
CLIENT_LANGUAGES = {"C-1021": "nb", "C-1028": "es"}


def _client_history(
    rng: random.Random,
    counts: dict[str, int],
    organization: Organization,
    code: str,
    therapist: User,
    plan: ClientPlan,
    last: date,
) -> Client:
    language = CLIENT_LANGUAGES.get(code, FALLBACK_LANGUAGE)
    client = Client.objects.create(
        organization=organization,
        code=code,
        age_band=plan.age_band,
        language=language,
        primary_therapist=therapist,
        active=not plan.closed,
    )
    first = last - timedelta(weeks=plan.sessions - 1)
    episode = Episode.objects.create(
        client=client,
        therapist=therapist,
        opened=first,
        closed=last if plan.closed else None,
        closure=Closure(plan.closed) if plan.closed else "",
    )
    session_format = SessionFormat.COUPLE if len(plan.raters) > 1 else SessionFormat.INDIVIDUAL
    instruments = {
        scale: catalogue().for_client(scale, AgeBand(plan.age_band), language) for scale in Scale
    }
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
                    tension=scores.tension[rater] if scale is Scale.SESSION else None,
                )
                counts["ratings"] += 1
    counts["clients"] += 1
    counts["sessions"] += plan.sessions
    return client


def _at(day: date, hour: int) -> datetime:
    return timezone.make_aware(datetime.combine(day, time(hour)))
