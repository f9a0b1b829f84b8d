"""EXPLAIN every query the dashboards run, as their users would run them, on PostgreSQL.

    python manage.py explain_dashboards --organization-slug scale [--analyze] [--output FILE]

Opens each dashboard through Django's test client as the right kind of user (the therapist with the
largest caseload, a supervisor, the organisation admin), captures the queries, and prints each one's
plan. It exits with an error if any plan reads a large table sequentially.
"""

import re

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import connection
from django.db.models import Count, Q
from django.test import Client as HttpClient
from django.test.utils import CaptureQueriesContext, override_settings

from alliance_app.accounts.models import Membership, Organization, Role, User
from alliance_app.clinic.models import Client

LARGE_TABLES = (
    "feedback_rating",
    "feedback_flag",
    "clinic_therapysession",
    "clinic_episode",
    "clinic_client",
    "audit_auditentry",
    # the summary rows grow with the history too, a row per episode or episode and month
    "feedback_outcomeends",
    "feedback_alliancemonth",
    "feedback_rupture",
)


class Command(BaseCommand):
    help = "Show the query plans of the dashboards and fail on sequential scans of large tables."

    def add_arguments(self, parser):
        parser.add_argument("--organization-slug", default="scale")
        parser.add_argument("--analyze", action="store_true", help="EXPLAIN ANALYZE (runs them)")
        parser.add_argument("--output", help="also write the plans to this file")

    def handle(self, *, organization_slug, analyze, output, **options):
        if connection.vendor != "postgresql":
            raise CommandError("query plans are only meaningful on PostgreSQL")
        organization = Organization.objects.filter(slug=organization_slug).first()
        if organization is None:
            raise CommandError(f"no organisation {organization_slug!r}: run seed_scale first")
        report, scans = [], []
        # The test client calls itself "testserver", a host no deployment lists.
        with override_settings(ALLOWED_HOSTS=[*settings.ALLOWED_HOSTS, "testserver"]):
            pages = [
                (page, self._queries(user, url)) for page, user, url in self._pages(organization)
            ]
        for page, captured in pages:
            for number, query in enumerate(captured, 1):
                if not query["sql"].lstrip().upper().startswith("SELECT"):
                    continue
                plan = self._plan(query["sql"], analyze)
                report.append(f"## {page} · query {number}\n{query['sql']}\n\n{plan}\n")
                scans += [
                    f"{page} query {number}: Seq Scan on {table}"
                    for table in LARGE_TABLES
                    # the whole name: feedback_rupturesd is not feedback_rupture
                    if re.search(rf"Seq Scan on {table}\b", plan)
                ]
        text = "\n".join(report)
        if output:
            with open(output, "w", encoding="utf-8") as handle:
                handle.write(text)
        self.stdout.write(text if not output else f"plans written to {output}")
        if scans:
            raise CommandError("sequential scans of large tables:\n" + "\n".join(scans))
        self.stdout.write(
            self.style.SUCCESS("No dashboard query scans a large table sequentially.")
        )

    def _queries(self, user, url) -> list[dict]:
        http = HttpClient()
        http.force_login(user)
        http.get(url)  # warm: the first page after logging in renews the session
        with CaptureQueriesContext(connection) as captured:
            response = http.get(url)
        if response.status_code != 200:
            raise CommandError(f"{url} answered {response.status_code}")
        return captured.captured_queries

    def _pages(self, organization):
        members = Membership.objects.filter(organization=organization)
        busiest = (
            User.objects.filter(membership__in=members.filter(role=Role.THERAPIST))
            .annotate(active=Count("primary_clients", filter=Q(primary_clients__active=True)))
            .order_by("-active")
            .first()
        )
        supervisor = User.objects.filter(
            membership__in=members.filter(role=Role.SUPERVISOR)
        ).first()
        admin = User.objects.filter(membership__in=members.filter(role=Role.ADMIN)).first()
        supervised = (
            User.objects.filter(
                membership__team__in=supervisor.membership.supervised_teams.all(),
                membership__role=Role.THERAPIST,
            )
            .order_by("pk")
            .first()
        )
        client = (
            Client.objects.filter(primary_therapist=busiest)
            .annotate(sessions=Count("episodes__sessions"))
            .order_by("-sessions")
            .first()
        )
        return [
            ("caseload", busiest, "/caseload/"),
            ("client page", busiest, f"/clients/{client.pk}/"),
            ("supervisor inbox", supervisor, "/inbox/"),
            ("team statistics", supervisor, "/team/"),
            ("overview", admin, "/overview/"),
            # as a supervisor opens it, beside the team; every month
            ("supervision", supervisor, f"/supervision/{supervised.pk}/?months=all"),
        ]

    def _plan(self, sql: str, analyze: bool) -> str:
        with connection.cursor() as cursor:
            cursor.execute(("EXPLAIN (ANALYZE, BUFFERS) " if analyze else "EXPLAIN ") + sql)
            return "\n".join(row[0] for row in cursor.fetchall())
