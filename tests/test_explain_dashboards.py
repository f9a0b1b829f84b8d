"""`manage.py explain_dashboards`: every dashboard opened as its user, every query's plan shown."""

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from tests.test_dashboards import World

pytestmark = pytest.mark.django_db

PAGES = (
    "caseload",
    "client page",
    "supervisor inbox",
    "team statistics",
    "overview",
    "supervision",
)


@pytest.mark.skipif(connection.vendor != "postgresql", reason="plans are PostgreSQL's")
def test_it_explains_every_query_of_every_dashboard(tmp_path, settings):
    settings.ALLOWED_HOSTS = ["alliance.example.org"]  # a deployment's, without "testserver"
    world = World()
    output = tmp_path / "plans.txt"
    try:
        call_command("explain_dashboards", organization_slug=world.org.slug, output=str(output))
    except CommandError as error:
        # On a handful of rows PostgreSQL rightly reads whole tables; nothing else may fail it.
        assert str(error).startswith("sequential scans of large tables:"), error
    sections = output.read_text().split("## ")[1:]
    assert {section.split(" · ")[0] for section in sections} == set(PAGES)
    # Each section: the query, then its plan with the planner's estimates.
    assert all("SELECT" in section and "cost=" in section for section in sections)


@pytest.mark.skipif(connection.vendor == "postgresql", reason="PostgreSQL has plans to show")
def test_it_refuses_a_database_without_plans_worth_reading():
    with pytest.raises(CommandError, match="only meaningful on PostgreSQL"):
        call_command("explain_dashboards", organization_slug="any")
