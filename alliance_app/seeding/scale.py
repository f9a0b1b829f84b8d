"""Benchmark-sized synthetic clinics, inserted in bulk.

demo.py's trajectory model decides what each client's history shows; this module decides the mix
at scale (how many sessions, which therapist, which episodes closed) and turns each history into
unsaved rows carrying the flags rating_submit would have raised, found by the same pure rules.
"""

import random
import uuid
from collections import Counter, defaultdict
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.contrib.auth.hashers import make_password
from django.db import connection, connections, reset_queries, transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from alliance_app.accounts.models import Membership, Organization, Role, Team, User
from alliance_app.audit.models import AuditEntry
from alliance_app.clinic.models import Client, Closure, Episode, SessionFormat, TherapySession
from alliance_app.feedback import ruptures
from alliance_app.feedback.models import (
    ITEM_FIELDS,
    AllianceMonth,
    Channel,
    Flag,
    FlagStatus,
    OutcomeEnds,
    Rating,
    Reflection,
    ReflectionOptionKind,
    RemoteLink,
    Rupture,
    RuptureSD,
    TensionReport,
)
from alliance_app.feedback.reflections import options_for
from alliance_app.feedback.services import instrument_for_client
from alliance_app.measures import (
    LASTING_KINDS,
    FlagKind,
    FlagRules,
    RatingPoint,
    Scale,
    flags_for,
    flags_to_raise,
    tension_finding,
)
from alliance_app.seeding.demo import (
    DEMO_MIX,
    Alliance,
    ClientPlan,
    Course,
    fall_for,
    fewest_sessions,
    history,
    written_reflection,
)

BENCH_PASSWORD = "alliance-bench"  # noqa: S105 -- shared by every synthetic account; never real
KEY_NAMESPACE = uuid.UUID("0c6b1f7e-93a4-4d2b-8a57-3f0d2e9c5b41")
MAX_SESSIONS = 40
# Clients with exactly MAX_SESSIONS sessions, so a benchmark can chart the longest history.
LONG_HISTORIES = 10
# Active clients of the first therapist: the caseload view at its heaviest.
HEAVY_CASELOAD = 60
CLOSED_SHARE = 0.3
HISTORY_DAYS = 3 * 365
# Days between sessions: mostly weekly, some fortnightly.
SESSION_INTERVALS = (7, 7, 7, 14)
BATCH_SIZE = 1000
RESOLUTION_NOTES = (
    "Talked it through in session; agreed to keep an eye on it.",
    "Discussed with the client; adjusted the focus of our work.",
    "Raised in supervision; plan reviewed with the client.",
)
ACKNOWLEDGEMENT_NOTE = "Will bring it up next session."
# Of the ruptures and reported tensions therapists have taken up, how many they reflected on.
REFLECTED_SHARE = 0.5
# DEMO_MIX without its closures: at scale, CLOSED_SHARE decides which episodes have ended.
TRAIT_MIX = tuple(
    (count, {key: value for key, value in traits.items() if key != "closed"})
    for count, traits in DEMO_MIX
)


class OrganizationInUse(Exception):
    """The organisation has rows that must outlive it (audit entries), so it cannot be replaced."""


@dataclass(frozen=True)
class ScaleClient:
    code: str
    plan: ClientPlan
    therapist: int  # index into the clinic's therapists


def session_counts(rng: random.Random, *, clients: int, sessions: int) -> list[int]:
    """Sessions per client, 1 to MAX_SESSIONS each, adding up to exactly `sessions`.

    Lengths follow a beta distribution over 1..MAX_SESSIONS with the mean the totals ask for:
    right-skewed (many short episodes, a long tail) when the mean is low, broad when it is high,
    never piling up at the maximum. Up to LONG_HISTORIES clients get exactly MAX_SESSIONS, as
    many as the totals allow.
    """
    if not 1 <= clients <= sessions <= clients * MAX_SESSIONS:
        raise ValueError(f"cannot share {sessions} sessions among {clients} clients")
    share = (sessions / clients - 1) / (MAX_SESSIONS - 1)
    if 0 < share < 1:
        alpha = 1.2
        beta = alpha * (1 - share) / share
        counts = [
            1 + round((MAX_SESSIONS - 1) * rng.betavariate(alpha, beta)) for _ in range(clients)
        ]
    else:
        counts = [sessions // clients] * clients
    # Long histories take at most half the sessions beyond everyone's first.
    longest = min(LONG_HISTORIES, (sessions - clients) // (2 * (MAX_SESSIONS - 1)))
    fixed = set(rng.sample(range(clients), longest))
    for index in fixed:
        counts[index] = MAX_SESSIONS
    adjustable = [index for index in range(clients) if index not in fixed]
    missing = sessions - sum(counts)
    while missing:
        step = 1 if missing > 0 else -1
        room = [i for i in adjustable if 1 <= counts[i] + step <= MAX_SESSIONS]
        rng.shuffle(room)
        for index in room[: abs(missing)]:
            counts[index] += step
        missing -= step * min(len(room), abs(missing))
    return counts


def client_plans(
    rng: random.Random, *, clients: int, sessions: int, therapists: int
) -> list[ScaleClient]:
    """Every client's plan and therapist, in the order they are inserted."""
    plans = []
    for count in session_counts(rng, clients=clients, sessions=sessions):
        traits = _traits(rng, count)
        closed = _closure(rng, traits, count)
        fall = fall_for(rng, traits["alliance"])
        plans.append(ClientPlan(sessions=count, closed=closed, fall=fall, **traits))
    owners = _caseloads(rng, plans, therapists)
    return [
        ScaleClient(code=f"C-{number:06d}", plan=plan, therapist=owner)
        for number, (plan, owner) in enumerate(zip(plans, owners, strict=True), start=1)
    ]


def _traits(rng: random.Random, sessions: int) -> dict:
    fitting = [
        (count, traits) for count, traits in TRAIT_MIX if fewest_sessions(traits) <= sessions
    ]
    return rng.choices([traits for _, traits in fitting], [count for count, _ in fitting])[0]


def _closure(rng: random.Random, traits: dict, sessions: int) -> str:
    if rng.random() >= CLOSED_SHARE:
        return ""
    # Drop-out is likelier early on, and where the alliance is weak or the client worsening.
    at_risk = (
        sessions <= 3
        or traits["alliance"] is Alliance.LOW
        or traits["course"] is Course.DETERIORATING
    )
    unplanned = rng.random() < (0.7 if at_risk else 0.25)
    return (Closure.UNPLANNED if unplanned else Closure.PLANNED).value


def _caseloads(rng: random.Random, plans: list[ClientPlan], therapists: int) -> list[int]:
    """Therapist per client: unevenly spread (part-time and full-time caseloads), and, when there
    are enough active clients, the first therapist with a full HEAVY_CASELOAD of them."""
    owners: list[int | None] = [None] * len(plans)
    active = [index for index, plan in enumerate(plans) if not plan.closed]
    pool = list(range(therapists))
    if therapists > 1 and len(active) >= 2 * HEAVY_CASELOAD:
        for index in rng.sample(active, HEAVY_CASELOAD):
            owners[index] = 0
        pool = pool[1:]
    weights = [rng.uniform(0.6, 1.4) for _ in pool]
    rest = [index for index, owner in enumerate(owners) if owner is None]
    for index, owner in zip(rest, rng.choices(pool, weights, k=len(rest)), strict=True):
        owners[index] = owner
    return owners


def staff_usernames(slug: str, *, therapists: int, teams: int) -> list[tuple[str, Role, int]]:
    """(username, role, team number from 1; 0 for none) of everyone on the staff."""
    return [
        (f"{slug}-admin", Role.ADMIN, 0),
        *((f"{slug}-supervisor-{n:02d}", Role.SUPERVISOR, n) for n in range(1, teams + 1)),
        *(
            (f"{slug}-therapist-{n:04d}", Role.THERAPIST, (n - 1) % teams + 1)
            for n in range(1, therapists + 1)
        ),
    ]


def staff_create(
    *, slug: str, therapists: int, teams: int
) -> tuple[Organization, list[User], Counter]:
    """The organisation, its teams and staff; each supervisor supervises their own team."""
    # Hashing is slow on purpose; one hash shared by every account keeps seeding fast.
    password = make_password(BENCH_PASSWORD)
    organization = Organization.objects.create(name=f"Scale clinic ({slug})", slug=slug)
    team_rows = Team.objects.bulk_create(
        Team(organization=organization, name=f"Team {n:02d}") for n in range(1, teams + 1)
    )
    people = staff_usernames(slug, therapists=therapists, teams=teams)
    users = User.objects.bulk_create(
        (
            User(
                username=username,
                password=password,
                first_name=role.name.title(),
                last_name=username.rsplit("-", 1)[-1] if team else "",
                email=f"{username}@example.org",
                is_staff=role is Role.ADMIN,
            )
            for username, role, team in people
        ),
        batch_size=BATCH_SIZE,
    )
    memberships = Membership.objects.bulk_create(
        (
            Membership(
                user=user,
                organization=organization,
                role=role,
                team=team_rows[team - 1] if team else None,
            )
            for user, (_, role, team) in zip(users, people, strict=True)
        ),
        batch_size=BATCH_SIZE,
    )
    Supervision = Membership.supervised_teams.through
    supervisions = Supervision.objects.bulk_create(
        Supervision(membership_id=membership.pk, team_id=team_rows[team - 1].pk)
        for membership, (_, role, team) in zip(memberships, people, strict=True)
        if role is Role.SUPERVISOR
    )
    therapist_users = [
        user for user, (_, role, _) in zip(users, people, strict=True) if role is Role.THERAPIST
    ]
    counts = Counter(
        {
            str(Organization._meta.verbose_name_plural): 1,
            str(Team._meta.verbose_name_plural): len(team_rows),
            str(User._meta.verbose_name_plural): len(users),
            str(Membership._meta.verbose_name_plural): len(memberships),
            "supervised teams": len(supervisions),
        }
    )
    return organization, therapist_users, counts


@dataclass(frozen=True)
class Clinic:
    """What every client's rows share."""

    organization: Organization
    therapists: list[User]
    today: date
    rules: FlagRules
    zone: ZoneInfo
    now: datetime  # when the clients were added, as auto_now_add would have it

    @classmethod
    def of(cls, organization: Organization, therapists: list[User], today: date) -> "Clinic":
        return cls(
            organization,
            therapists,
            today,
            organization.flag_rules(),
            ZoneInfo(organization.time_zone),
            timezone.now(),
        )


# Each table's columns as the rows below give them: PostgreSQL takes them by COPY, other
# databases by bulk_create of the models made from them.
COLUMNS = {
    Client: ("id", "organization_id", "code", "age_band", "primary_therapist_id", "language",
             "active", "created_at"),
    Episode: ("id", "client_id", "therapist_id", "opened", "closed", "closure"),
    TherapySession: ("id", "episode_id", "number", "date", "format"),
    Rating: ("id", "session_id", "instrument", "scale", "rater", "rater_label", *ITEM_FIELDS,
             "total", "channel", "created_at", "idempotency_key", "entered_by_id"),
    TensionReport: ("rating_id", "tension", "resolution"),
    Flag: ("id", "client_id", "rating_id", "kind", "item", "severity", "message", "params",
           "explanation", "status", "created_at", "acknowledged_by_id", "acknowledged_at",
           "acknowledged_note", "resolved_by_id", "resolved_at", "resolved_note", "fit_id"),
}  # fmt: skip
# Primary keys taken from a table's sequence at a time: one query per block, not per row.
ID_BLOCK = 20_000


class Keys:
    """Primary keys handed out before the rows are written, so one client's rows can point at
    each other without a round trip: on PostgreSQL drawn from each table's sequence (other
    writers keep theirs), elsewhere counted on from the largest key (seeding writes alone)."""

    def __init__(self):
        self._free: dict[type, list[int]] = defaultdict(list)
        self._next: dict[type, int] = {}
        # Asked once: through the connection proxy it costs more than the rest of a key.
        self._sequences = connection.vendor == "postgresql"

    def take(self, model) -> int:
        if not self._sequences:
            if model not in self._next:
                largest = model.objects.order_by("-pk").values_list("pk", flat=True).first()
                self._next[model] = (largest or 0) + 1
            self._next[model] += 1
            return self._next[model] - 1
        free = self._free[model]
        if not free:
            table = model._meta.db_table
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)",
                    [table, ID_BLOCK],
                )
                free.extend(sorted((row[0] for row in cursor.fetchall()), reverse=True))
        return free.pop()


@dataclass
class RowBatch:
    """The rows of a few hundred clients, as tuples in COLUMNS order with their keys given.

    Pass on `keys` to the next batch, so its keys come from the block already drawn.
    """

    keys: Keys = field(default_factory=Keys)
    rows: dict[type, list[tuple]] = field(default_factory=lambda: {model: [] for model in COLUMNS})

    @property
    def clients(self) -> list[tuple]:
        return self.rows[Client]

    @property
    def sessions(self) -> list[tuple]:
        return self.rows[TherapySession]

    def insert(self) -> Counter:
        with transaction.atomic():
            for model, rows in self.rows.items():
                if connection.vendor == "postgresql":
                    _copy(model, rows)
                else:
                    columns = COLUMNS[model]
                    model.objects.bulk_create(
                        (model(**dict(zip(columns, row, strict=True))) for row in rows),
                        batch_size=BATCH_SIZE,
                    )
        return Counter(
            {str(model._meta.verbose_name_plural): len(rows) for model, rows in self.rows.items()}
        )


class ChunkInserter:
    """Inserts each batch while the next one is built.

    On PostgreSQL a thread of its own, with a connection of its own, writes one batch (the
    database's COPY and index work, on the other core) while this one builds the next in Python;
    at most two batches are held at a time. Elsewhere, or inside a transaction that the other
    connection could not see (as in the tests), each batch goes in before the next is built.
    """

    def __init__(self):
        self._pending: Future | None = None
        self._writer: ThreadPoolExecutor | None = None
        if connection.vendor == "postgresql" and not connection.in_atomic_block:
            self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="seed-writer")
            self._writer.submit(commits_unawaited).result()

    def insert(self, batch: RowBatch) -> Counter:
        """Start inserting `batch`; return the counts of the batches finished meanwhile."""
        if self._writer is None:
            return _batch_insert(batch)
        finished = self.finish()
        self._pending = self._writer.submit(_batch_insert, batch)
        return finished

    def finish(self) -> Counter:
        """Wait for the batch being inserted; return its counts."""
        pending, self._pending = self._pending, None
        return pending.result() if pending is not None else Counter()

    def close(self) -> None:
        if self._writer is not None:
            self._writer.submit(connections.close_all).result()
            self._writer.shutdown()


def _batch_insert(batch: RowBatch) -> Counter:
    counts = batch.insert()
    # With DEBUG on, Django keeps every statement's SQL: megabytes per batch.
    reset_queries()
    return counts


def _copy(model, rows: list[tuple]) -> None:
    """COPY the rows into the model's table: no SQL to build or parse per row."""
    quote = connection.ops.quote_name
    columns = [model._meta.get_field(name).column for name in COLUMNS[model]]
    json_at = [
        index
        for index, name in enumerate(COLUMNS[model])
        if model._meta.get_field(name).get_internal_type() == "JSONField"
    ]
    statement = f"COPY {quote(model._meta.db_table)} ({', '.join(map(quote, columns))}) FROM STDIN"
    from psycopg.types.json import Jsonb  # PostgreSQL's driver, installed only where it is used

    with connection.cursor() as cursor, cursor.copy(statement) as copy:
        for row in rows:
            if json_at:
                row = list(row)
                for index in json_at:
                    row[index] = Jsonb(row[index])
            copy.write_row(row)


def client_rows(rng: random.Random, clinic: Clinic, entry: ScaleClient, batch: RowBatch) -> None:
    """Add one client's episode, sessions, ratings, tension answers and flags to `batch`.

    Ruptures are left to `ruptures_settle`, once the organisation's SD is measured.
    """
    plan = entry.plan
    therapist = clinic.therapists[entry.therapist]
    keys = batch.keys
    # Only a flag needs the client and its rating as objects; every other row is a tuple.
    client = Client(
        pk=keys.take(Client),
        organization=clinic.organization,
        code=entry.code,
        age_band=plan.age_band,
        primary_therapist=therapist,
        active=not plan.closed,
    )
    interval = timedelta(days=rng.choice(SESSION_INTERVALS))
    span = interval * (plan.sessions - 1)
    # Closed episodes ended weeks to years ago; open ones had their latest session lately.
    if plan.closed:
        ended = clinic.today - timedelta(days=rng.randint(21, max(21, HISTORY_DAYS - span.days)))
    else:
        ended = clinic.today - timedelta(days=rng.randint(0, 11))
    first = ended - span
    episode_id = keys.take(Episode)
    rows = batch.rows
    rows[Client].append(
        (client.pk, clinic.organization.pk, client.code, client.age_band, therapist.pk,
         client.language, client.active, clinic.now)
    )  # fmt: skip
    rows[Episode].append(
        (episode_id, client.pk, therapist.pk, first, ended if plan.closed else None, plan.closed)
    )

    instruments = {scale: instrument_for_client(client, scale) for scale in Scale}
    session_format = SessionFormat.COUPLE if len(plan.raters) > 1 else SessionFormat.INDIVIDUAL
    earlier: dict[tuple[Scale, str], list[RatingPoint]] = defaultdict(list)
    # Per lasting flag kind and rater, when the latest such flag was acknowledged (None: never).
    acknowledged: dict[tuple[FlagKind, str], datetime | None] = {}
    for scores in history(rng, plan):
        day = first + interval * (scores.number - 1)
        session_id = keys.take(TherapySession)
        rows[TherapySession].append(
            (session_id, episode_id, scores.number, day, session_format.value)
        )
        channel = (Channel.REMOTE if rng.random() < 0.1 else Channel.TABLET).value
        for scale, by_rater in ((Scale.OUTCOME, scores.outcome), (Scale.SESSION, scores.session)):
            instrument = instruments[scale]
            stored_at = datetime.combine(
                day, time(9 if scale is Scale.OUTCOME else 10), tzinfo=clinic.zone
            )
            for rater, items in by_rater.items():
                total = sum(items, Decimal("0.0"))
                rating_id = keys.take(Rating)
                idempotency_key = uuid.uuid5(
                    KEY_NAMESPACE,
                    f"{clinic.organization.slug}/{entry.code}/{scores.number}/{scale}/{rater}",
                )
                rows[Rating].append(
                    (rating_id, session_id, instrument.code, scale.value, rater, "", *items,
                     total, channel, stored_at, idempotency_key, therapist.pk)
                )  # fmt: skip
                point = RatingPoint(scores.number, rater, instrument, items, total)
                findings = flags_to_raise(
                    flags_for(point, earlier[scale, rater], clinic.rules),
                    rater=rater,
                    unacknowledged=[
                        key for key, at in acknowledged.items() if at is None or at > stored_at
                    ],
                )
                earlier[scale, rater].append(point)
                answer = scores.tension[rater] if scale is Scale.SESSION else None
                if answer is not None:
                    rows[TensionReport].append((rating_id, answer.tension, answer.resolution))
                    told = tension_finding(answer, clinic.rules)
                    findings += [told] if told is not None else []
                if not findings:
                    continue
                rating = Rating(pk=rating_id, instrument=instrument.code, created_at=stored_at)
                for finding in findings:
                    flag = Flag.from_finding(finding, client=client, rating=rating)
                    _work_through(rng, clinic.today, flag, day, therapist.pk)
                    rows[Flag].append(
                        (keys.take(Flag), *(getattr(flag, name) for name in COLUMNS[Flag][1:]))
                    )
                    if finding.kind in LASTING_KINDS:
                        acknowledged[finding.kind, rater] = flag.acknowledged_at


def _work_through(
    rng: random.Random, today: date, flag: Flag, session_date: date, therapist_id: int
) -> None:
    """Flags older than three weeks resolved in a later session, some of the last fortnight's
    acknowledged, the rest open."""
    age = (today - session_date).days
    if age > 21:
        at = flag.created_at + timedelta(days=rng.randint(1, 14), hours=2)
        flag.status = FlagStatus.RESOLVED
        flag.acknowledged_by_id = flag.resolved_by_id = therapist_id
        flag.acknowledged_at = flag.resolved_at = at
        flag.resolved_note = rng.choice(RESOLUTION_NOTES)
    elif age > 7 and rng.random() < 0.5:
        flag.status = FlagStatus.ACKNOWLEDGED
        flag.acknowledged_by_id = therapist_id
        flag.acknowledged_at = flag.created_at + timedelta(days=rng.randint(1, 3))
        flag.acknowledged_note = ACKNOWLEDGEMENT_NOTE


_WORKED_THROUGH = (
    "status",
    "acknowledged_by",
    "acknowledged_at",
    "acknowledged_note",
    "resolved_by",
    "resolved_at",
    "resolved_note",
)


def ruptures_settle(rng: random.Random, organization: Organization, today: date) -> Counter:
    """The organisation's ruptures, found in its inserted ratings, with the flags rating_submit
    and a clinic would have left.

    The pooled SD is measured first, so that the threshold is the one the pages show. Storing the
    ratings one by one in session order, rating_submit would have found the same ruptures (a
    rating's rupture depends on the earlier ratings only) and raised no drop flag beside a
    rupture flag. The rupture flags are worked through like the others, and therapists reflect on
    some of the ruptures and tensions they took up.
    """
    ruptures.sd_measure(organization)
    found = ruptures.rebuild(organization, raise_flags=True)
    flags = Flag.objects.filter(client__organization=organization)
    _delete_all(flags.filter(kind=FlagKind.ALLIANCE_DROP.value, rating__rupture__isnull=False))
    raised = list(
        flags.filter(kind=FlagKind.RUPTURE.value, status=FlagStatus.OPEN)
        .select_related("rating__session", "client")
        .only(
            "created_at", *_WORKED_THROUGH, "rating__session__date", "client__primary_therapist_id"
        )
        .order_by("pk")
    )
    for flag in raised:
        _work_through(rng, today, flag, flag.rating.session.date, flag.client.primary_therapist_id)
    _rows_update(Flag, raised, _WORKED_THROUGH)
    reflections, strategies = _reflections(rng, organization, flags)
    return Counter(
        {
            str(Rupture._meta.verbose_name_plural): found,
            str(Reflection._meta.verbose_name_plural): reflections,
            "reflection strategies": strategies,
        }
    )


def _reflections(rng: random.Random, organization: Organization, flags) -> tuple[int, int]:
    """Reflections, in bulk, on a share of the rupture flags and of the tension flags beside no
    rupture that have been taken up; the one on a rupture covers the tension reported with it."""
    taken_up = (
        flags.filter(
            kind__in=(FlagKind.RUPTURE.value, FlagKind.CLIENT_REPORTED_TENSION.value),
            status__in=(FlagStatus.ACKNOWLEDGED, FlagStatus.RESOLVED),
        )
        .exclude(kind=FlagKind.CLIENT_REPORTED_TENSION.value, rating__rupture__isnull=False)
        .order_by("pk")
        .values_list(
            "pk", "client__primary_therapist_id", "rating__rupture__dimensions", "acknowledged_at"
        )
    )
    markers = {o.code: o.pk for o in options_for(organization.pk, ReflectionOptionKind.MARKER)}
    strategies = {o.code: o.pk for o in options_for(organization.pk, ReflectionOptionKind.STRATEGY)}
    reflections, chosen = [], []
    for flag_id, therapist_id, dimensions, at in taken_up.iterator(chunk_size=BATCH_SIZE):
        if rng.random() >= REFLECTED_SHARE:
            continue
        written = written_reflection(rng, (dimensions or "").split())
        reflections.append(
            Reflection(
                flag_id=flag_id,
                author_id=therapist_id,
                created_at=at,
                updated_at=at,
                marker_id=markers[written.marker],
                dimension=written.dimension.value,
                note=written.note,
                teaching_consent=written.teaching_consent,
            )
        )
        chosen.append(written.strategies)
    Reflection.objects.bulk_create(reflections, batch_size=BATCH_SIZE)
    Chosen = Reflection.strategies.through
    rows = Chosen.objects.bulk_create(
        (
            Chosen(reflection_id=reflection.pk, reflectionoption_id=strategies[code])
            for reflection, codes in zip(reflections, chosen, strict=True)
            for code in codes
        ),
        batch_size=BATCH_SIZE,
    )
    return len(reflections), len(rows)


def organization_delete(organization: Organization) -> None:
    """Delete an organisation and everything in it with one statement per table.

    The ORM's delete() would load every rating to cascade in Python; these rows have nothing
    that must be told, so set-based deletes in dependency order do the same in seconds.
    """
    members = User.objects.filter(membership__organization=organization)
    if AuditEntry.objects.filter(Q(organization=organization) | Q(actor__in=members)).exists():
        raise OrganizationInUse(
            f"organisation {organization.slug!r} has audit entries (someone logged in or worked "
            "there), and audit entries are kept for good"
        )
    clients = Client.objects.filter(organization=organization)
    sessions = TherapySession.objects.filter(episode__client__in=clients)
    flags = Flag.objects.filter(client__in=clients)
    reflections = Reflection.objects.filter(flag__in=flags)
    with transaction.atomic():
        for rows in (
            Reflection.strategies.through.objects.filter(reflection__in=reflections),
            reflections,
            Rupture.objects.filter(episode__client__in=clients),
            TensionReport.objects.filter(rating__session__in=sessions),
            flags,
            RemoteLink.objects.filter(session__in=sessions),
            OutcomeEnds.objects.filter(episode__client__in=clients),
            AllianceMonth.objects.filter(episode__client__in=clients),
            Rating.objects.filter(session__in=sessions),
            sessions,
            Episode.objects.filter(client__in=clients),
            clients,
        ):
            _delete_all(rows)
        members.delete()
        Team.objects.filter(organization=organization).delete()
        organization.delete()


def _rows_update(model, objects: list, names: tuple[str, ...]) -> None:
    """Write these fields of saved objects, one UPDATE per object sent in a pipeline.

    bulk_update builds a CASE expression per field with a branch per object, which Django
    compiles at about 2 ms an object: 10,000 rupture flags took 25 s. Here each row's values are
    prepared once and the statement is parsed once.
    """
    meta = model._meta
    fields = [meta.get_field(name) for name in names]
    quote = connection.ops.quote_name
    assignments = ", ".join(f"{quote(field.column)} = %s" for field in fields)
    # Names come from model metadata and values are parameters: nothing user-supplied.
    statement = (
        f"UPDATE {quote(meta.db_table)} SET {assignments} "  # noqa: S608
        f"WHERE {quote(meta.pk.column)} = %s"
    )
    rows = [
        [*(field.get_db_prep_save(getattr(row, field.attname), connection) for field in fields),
         row.pk]
        for row in objects
    ]  # fmt: skip
    with connection.cursor() as cursor:
        cursor.executemany(statement, rows)


def _delete_all(rows: QuerySet) -> None:
    subquery, params = rows.values("pk").query.sql_with_params()
    meta = rows.model._meta
    table = connection.ops.quote_name(meta.db_table)
    pk = connection.ops.quote_name(meta.pk.column)
    with connection.cursor() as cursor:
        # Names come from model metadata and values are parameters: nothing user-supplied.
        cursor.execute(f"DELETE FROM {table} WHERE {pk} IN ({subquery})", params)  # noqa: S608


def commits_unawaited() -> None:
    """Let this connection's commits return before their WAL reaches the disk: a chunk of
    clients commits in one go instead of waiting on the disk for each. A crash can lose the
    last chunks (the database stays consistent), and `seed_scale --replace` seeds again."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET synchronous_commit TO OFF")


def tables_analyze() -> None:
    """Give PostgreSQL's planner statistics for the tables just filled."""
    if connection.vendor != "postgresql":
        return
    models = (Organization, Team, User, Membership, Membership.supervised_teams.through)
    models += (Client, Episode, TherapySession, Rating, TensionReport, Flag, OutcomeEnds)
    models += (AllianceMonth, RuptureSD, Rupture, Reflection, Reflection.strategies.through)
    tables = ", ".join(connection.ops.quote_name(model._meta.db_table) for model in models)
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {tables}")
