"""Fit the expected-response band on each organisation's closed episodes:
`manage.py fit_expected_response`.

Run it by hand, on a schedule (monthly, say, as episodes close), or let the admin page and the
Django admin start it in the background (`--fit N` runs a fit they queued). Each run is a new
version; the flags raised under earlier versions stay as they were. The summary reports how many
episodes went in, the lines' reach, the held-out validation, the time taken and the process's
peak memory.
"""

from django.core.management.base import BaseCommand, CommandError

from alliance_app.accounts.commands import organizations_named
from alliance_app.feedback import expected
from alliance_app.feedback.models import ExpectedResponseFit, FitStatus


class Command(BaseCommand):
    help = "Fit the expected-response band (median course and not-on-track boundary)."

    def add_arguments(self, parser):
        parser.add_argument("--organization-slug", help="only this organisation (default: all)")
        parser.add_argument("--fit", type=int, help="run this queued fit (started from a page)")

    def handle(self, *, organization_slug, fit, **options):
        if fit is not None:
            job = ExpectedResponseFit.objects.filter(pk=fit).first()
            if job is None:
                raise CommandError(f"no fit {fit}")
            self._run(job)
            return
        for organization in organizations_named(organization_slug):
            if expected.waiting_fit(organization) is not None:
                self.stdout.write(f"{organization.slug}: a fit is already under way; skipped")
                continue
            self._run(expected.fit_create(organization, by=None))

    def _run(self, job: ExpectedResponseFit) -> None:
        slug = job.organization.slug

        def progress(step: str) -> None:
            self.stdout.write(f"{slug} v{job.version}: {step}")

        try:
            job = expected.fit_run(job, progress)
        except Exception as error:
            raise CommandError(f"{slug} v{job.version}: the fit failed: {error}") from error
        self.stdout.write(self._summary(job))

    def _summary(self, job: ExpectedResponseFit) -> str:
        head = (
            f"{job.organization.slug} v{job.version}: {job.get_status_display().lower()}; "
            f"{job.episodes} closed episodes; {job.seconds:.1f} s; "
            f"peak memory {job.peak_memory_mb:.0f} MB"
        )
        if job.status != FitStatus.DONE:
            return f"{head}\n  {job.message}"
        lines = [head]
        parameters = job.parameters
        for band, entry in parameters["bands"].items():
            how = "pooled with the other bands" if entry["pooled"] else "own lines"
            lines.append(
                f"  {band}: {entry['episodes']} episodes, {how}; sessions 2 to "
                f"{parameters['max_session']}, quantile {parameters['quantile']}"
            )
        for band, why in parameters.get("omitted", {}).items():
            lines.append(f"  {band}: no band ({why})")
        validation = job.validation
        lines.append(
            f"  validation: fitted on {validation['fit_episodes']}, "
            f"judged on {validation['held_out_episodes']} held-out episodes"
        )
        for key, figures in validation.get("signal", {}).items():
            lines.append(
                f"    {key.replace('_', ' ')}: sensitivity {_share(figures['sensitivity'])}, "
                f"specificity {_share(figures['specificity'])}, "
                f"PPV {_share(figures['ppv'])}, flagged {_share(figures['flagged_share'])}"
            )
        return "\n".join(lines)


def _share(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0%}"
