"""Measure each organisation's SD of session totals and find its ruptures again from the ratings:
`manage.py rebuild_ruptures`.

Run it on a schedule (nightly, say) so that the threshold follows the organisation's own ratings
as they accumulate, and after changing rupture settings outside the admin, after a bulk import, or
after an upgrade. Flags already raised are kept; a rebuild raises none unless asked
(`--raise-flags`, for data loaded in bulk). Each organisation is rebuilt in its own transaction.
"""

from django.core.management.base import BaseCommand

from alliance_app.accounts.commands import organizations_named
from alliance_app.feedback import ruptures


class Command(BaseCommand):
    help = "Measure the SD of session totals and recompute the ruptures of each organisation."

    def add_arguments(self, parser):
        parser.add_argument("--organization-slug", help="only this organisation (default: all)")
        parser.add_argument(
            "--raise-flags",
            action="store_true",
            help="also flag ruptures that have no flag yet (data loaded in bulk)",
        )

    def handle(self, *, organization_slug, raise_flags, **options):
        organizations = organizations_named(organization_slug)
        for organization in organizations:
            measured = ruptures.sd_measure(organization)
            count = ruptures.rebuild(organization, raise_flags=raise_flags)
            sd = ruptures.sd_in_force(organization)
            how = {
                ruptures.SDSource.FIXED: "fixed by the admin",
                ruptures.SDSource.MEASURED: (
                    f"measured over {measured.series} series, "
                    f"{measured.degrees_of_freedom} degrees of freedom"
                ),
                ruptures.SDSource.FALLBACK: (
                    f"fallback: only {measured.series} series, "
                    f"{measured.degrees_of_freedom} degrees of freedom"
                ),
            }[sd.source]
            threshold = organization.rupture_rules().threshold(sd.value)
            self.stdout.write(
                f"{organization.slug}: SD {ruptures.points_shown(sd.value)} ({how}), "
                f"threshold {ruptures.points_shown(threshold)} points, "
                f"{count} ruptures"
            )
