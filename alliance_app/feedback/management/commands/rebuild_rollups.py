"""Make the dashboards' summary rows again from the ratings: `manage.py rebuild_rollups`.

Run it after changing an instrument's cut-off, or an organisation's alliance cutoff outside the
admin (the monthly sums count the ratings below it; the admin recounts them itself), or after
editing ratings' sessions outside the admin. Each organisation is rebuilt in its own
transaction; the dashboards keep reading the old rows until it commits.
"""

from django.core.management.base import BaseCommand

from alliance_app.accounts.commands import organizations_named
from alliance_app.clinic.models import Episode
from alliance_app.feedback import rollups
from alliance_app.feedback.models import AllianceMonth, OutcomeEnds


class Command(BaseCommand):
    help = "Recompute the dashboards' summary rows (outcome ends, monthly alliance sums)."

    def add_arguments(self, parser):
        parser.add_argument("--organization-slug", help="only this organisation (default: all)")

    def handle(self, *, organization_slug, **options):
        organizations = organizations_named(organization_slug)
        for organization in organizations:
            episodes = Episode.objects.filter(client__organization=organization)
            rollups.rebuild(episodes)
            self.stdout.write(
                f"{organization.slug}: {OutcomeEnds.objects.filter(episode__in=episodes).count()} "
                f"episode outcome ends, "
                f"{AllianceMonth.objects.filter(episode__in=episodes).count()} monthly sums"
            )
