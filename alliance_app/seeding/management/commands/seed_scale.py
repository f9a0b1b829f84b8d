"""Fill the database with one large synthetic organisation for benchmarks, in bulk.

Histories come from demo.py's trajectory model and flags from the same rules as rating_submit,
but rows go in with bulk inserts, a few hundred clients per transaction, so 200,000 sessions take
minutes, not hours. Every account's password is `alliance-bench`; `<slug>-therapist-0001` has
the heaviest caseload.
"""

import random
import sys
import time
from collections import Counter

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.core.validators import validate_slug
from django.db import transaction
from django.utils import timezone
from tqdm import tqdm

from alliance_app.accounts.data_version import data_changed
from alliance_app.accounts.models import Organization, User
from alliance_app.clinic.models import Episode, TherapySession
from alliance_app.feedback import rollups
from alliance_app.feedback.models import AllianceMonth, Flag, OutcomeEnds, Rating
from alliance_app.seeding.scale import (
    MAX_SESSIONS,
    ChunkInserter,
    Clinic,
    OrganizationInUse,
    RowBatch,
    client_plans,
    client_rows,
    commits_unawaited,
    organization_delete,
    ruptures_settle,
    staff_create,
    staff_usernames,
    tables_analyze,
)

# Clients per transaction: large enough for efficient inserts, small enough to keep memory flat.
CLIENTS_PER_CHUNK = 500


class Phases:
    """Wall-clock seconds spent in each part of the seeding, in the order first reached."""

    def __init__(self):
        self.seconds: dict[str, float] = {}
        self._mark = time.perf_counter()

    def done(self, name: str) -> None:
        now = time.perf_counter()
        self.seconds[name] = self.seconds.get(name, 0.0) + now - self._mark
        self._mark = now

    def __str__(self) -> str:
        return ", ".join(f"{name} {seconds:.1f}" for name, seconds in self.seconds.items())


class Command(BaseCommand):
    help = (
        "Create a large synthetic organisation (teams, staff, clients, sessions, ratings, tension "
        "answers, flags, ruptures, reflections)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--therapists", type=int, default=200)
        parser.add_argument("--clients", type=int, default=10_000)
        parser.add_argument("--sessions", type=int, default=200_000, help="exact total")
        parser.add_argument("--teams", type=int, default=20)
        parser.add_argument("--seed", type=int, default=1, help="random seed")
        parser.add_argument("--organization-slug", default="scale")
        parser.add_argument(
            "--replace", action="store_true", help="delete the organisation's data first"
        )
        parser.add_argument("--no-progress", action="store_true", help="no progress bar")

    def handle(self, *args, **options):
        therapists, clients, sessions, teams = (
            options[name] for name in ("therapists", "clients", "sessions", "teams")
        )
        slug = options["organization_slug"]
        self._check_sizes(therapists=therapists, clients=clients, sessions=sessions, teams=teams)
        try:
            validate_slug(slug)
        except ValidationError:
            raise CommandError(f"{slug!r} is not a valid organisation slug.") from None

        existing = Organization.objects.filter(slug=slug).first()
        if existing is not None and not options["replace"]:
            raise CommandError(
                f"Organisation {slug!r} already exists. Pass --replace to delete its data and "
                "seed it again, or choose another --organization-slug."
            )
        if existing is not None:
            try:
                organization_delete(existing)
            except OrganizationInUse as error:
                raise CommandError(
                    f"Cannot replace: {error}. Seed under another --organization-slug."
                ) from None
        usernames = [name for name, *_ in staff_usernames(slug, therapists=therapists, teams=teams)]
        if User.objects.filter(username__in=usernames).exists():
            raise CommandError(f"Users named {slug}-… already exist outside organisation {slug!r}.")

        commits_unawaited()
        started = time.perf_counter()
        phases = Phases()
        rng = random.Random(options["seed"])
        plans = client_plans(rng, clients=clients, sessions=sessions, therapists=therapists)
        with transaction.atomic():
            organization, therapist_users, counts = staff_create(
                slug=slug, therapists=therapists, teams=teams
            )
        clinic = Clinic.of(organization, therapist_users, timezone.localdate())
        phases.done("plans and staff")
        counts += self._insert_histories(rng, clinic, plans, quiet=options["no_progress"])
        phases.done("histories")
        tables_analyze()
        phases.done("statistics")
        # The summary rows the submit service keeps as it stores each rating, made in one pass
        # over the new ratings (with the planner's statistics fresh, then again for the rows).
        episodes = Episode.objects.filter(client__organization=organization)
        rollups.rebuild(episodes)
        phases.done("summary rows")
        tables_analyze()
        phases.done("statistics")
        with transaction.atomic():
            counts += ruptures_settle(rng, organization, clinic.today)
        phases.done("ruptures and reflections")
        # COPY writes past the connection's watch on writes: cached results must not outlive it.
        data_changed()
        tables_analyze()
        for model in (OutcomeEnds, AllianceMonth):
            counts[str(model._meta.verbose_name_plural)] = model.objects.filter(
                episode__in=episodes
            ).count()
        # Drop flags beside a rupture flag went, rupture flags came.
        counts[str(Flag._meta.verbose_name_plural)] = Flag.objects.filter(
            client__organization=organization
        ).count()
        phases.done("statistics")
        elapsed = time.perf_counter() - started

        total = sum(counts.values())
        tables = ", ".join(f"{name} {count}" for name, count in counts.items())
        self.stdout.write(
            f"Inserted {tables}: {total} rows in {elapsed:.1f} s "
            f"({total / elapsed:,.0f} rows/s) into organisation {slug!r}."
        )
        rates = ", ".join(
            f"{name} {counts[str(model._meta.verbose_name_plural)] / elapsed:,.0f}"
            for name, model in (("ratings", Rating), ("sessions", TherapySession), ("flags", Flag))
        )
        self.stdout.write(f"Per second: {rates}. Seconds spent: {phases}.")
        # On a busy machine the wall clock says more about the neighbours than about seeding.
        self.stdout.write(f"CPU seconds of this process: {time.process_time():.1f}.")

    def _check_sizes(self, *, therapists: int, clients: int, sessions: int, teams: int) -> None:
        if therapists < 1 or teams < 1:
            raise CommandError("There must be at least one therapist and one team.")
        if teams > therapists:
            raise CommandError("There cannot be more teams than therapists.")
        if not 1 <= clients <= sessions <= clients * MAX_SESSIONS:
            raise CommandError(
                f"Each client has 1 to {MAX_SESSIONS} sessions: --sessions must lie between "
                f"--clients and {MAX_SESSIONS} × --clients."
            )

    def _insert_histories(self, rng, clinic, plans, *, quiet: bool) -> Counter:
        counts = Counter()
        total = sum(entry.plan.sessions for entry in plans)
        progress = tqdm(
            total=total,
            unit=" sessions",
            file=sys.stderr,
            disable=quiet or not self.stderr.isatty(),
            smoothing=0.1,
        )
        inserter = ChunkInserter()
        try:
            with progress:
                batch = RowBatch()
                for entry in plans:
                    client_rows(rng, clinic, entry, batch)
                    if len(batch.clients) == CLIENTS_PER_CHUNK:
                        counts += inserter.insert(batch)
                        progress.update(len(batch.sessions))
                        batch = RowBatch(keys=batch.keys)
                counts += inserter.insert(batch)
                counts += inserter.finish()
                progress.update(len(batch.sessions))
        finally:
            inserter.close()
        return counts
