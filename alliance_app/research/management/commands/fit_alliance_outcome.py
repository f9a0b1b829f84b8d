"""Fit the alliance-outcome model of each organisation and its teams: `manage.py
fit_alliance_outcome [--organization-slug X]`.

The analysis page reads only the fit stored here, so run it on a schedule (nightly, say) and
after a large import of ratings; on tens of thousands of clients a fit takes minutes, which is why
no request ever fits. Each organisation's fits replace its previous ones.
"""

import time

from django.core.management.base import BaseCommand
from tqdm import tqdm

from alliance_app.accounts.commands import organizations_named
from alliance_app.clinic.models import Episode
from alliance_app.research import analysis


class Command(BaseCommand):
    help = "Fit the alliance-outcome mixed model for each organisation and its teams."

    def add_arguments(self, parser):
        parser.add_argument("--organization-slug", help="only this organisation (default: all)")

    def handle(self, *, organization_slug, **options):
        organizations = organizations_named(organization_slug)
        quiet = options["verbosity"] == 0
        for organization in organizations:
            started = time.perf_counter()
            total = Episode.objects.filter(client__organization=organization).count()
            with tqdm(
                total=total,
                unit="episode",
                desc=f"{organization.slug}: reading",
                disable=quiet,
                file=self.stderr,
            ) as bar:
                pairs = analysis.session_pairs(organization, progress=bar.update)
            read = time.perf_counter()
            stored = analysis.fit_store(organization, pairs=pairs)
            for team, row in stored:
                self.stdout.write(
                    f"{organization.slug} · {team or 'organisation'}: {_summary(row)}"
                )
            self.stdout.write(
                f"{organization.slug}: {len(pairs)} session pairs read in {read - started:.1f} s, "
                f"{len(stored)} fits in {time.perf_counter() - read:.1f} s"
            )


def _summary(row) -> str:
    result = analysis.result_from(row.results)
    counts = f"{row.clients} clients, {row.sessions} session pairs"
    if row.status != analysis.AnalysisStatus.FITTED:
        return f"{row.status} ({counts}): {result.message}"
    within = result.term("alliance_within")
    return (
        f"fitted ({counts}): within-client {within.estimate:.2f} "
        f"[{within.low:.2f}, {within.high:.2f}] outcome points per alliance point"
    )
