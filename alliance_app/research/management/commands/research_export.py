"""Write an organisation's de-identified research export to a zip: `manage.py research_export
--organization-slug X --output path.zip`. The same file as the download on the research export
page, for organisations too large to wait for in a browser.
"""

import resource
import sys
import time
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from alliance_app.accounts.models import Organization
from alliance_app.clinic.models import Episode
from alliance_app.research.export import EPISODE_CHUNK, export_write

BAR_WIDTH = 30


def peak_memory_mb() -> float:
    """The process's peak resident memory so far (Linux reports kilobytes, macOS bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


class Command(BaseCommand):
    help = (
        "Write an organisation's de-identified research export (CSV, Parquet, codebook) to a zip."
    )

    def add_arguments(self, parser):
        parser.add_argument("--organization-slug", required=True)
        parser.add_argument("--output", required=True, help="the zip file to write")
        parser.add_argument(
            "--chunk",
            type=int,
            default=EPISODE_CHUNK,
            help=f"episodes read at a time, with progress after each (default {EPISODE_CHUNK})",
        )

    def handle(self, *, organization_slug, output, chunk, **options):
        organization = Organization.objects.filter(slug=organization_slug).first()
        if organization is None:
            raise CommandError(f"no organisation {organization_slug!r}")
        if chunk < 1:
            raise CommandError("--chunk must be at least 1")
        total = Episode.objects.filter(client__organization=organization).count()
        started = time.monotonic()

        def progress(done: int, rows: int) -> None:
            filled = BAR_WIDTH * done // total if total else BAR_WIDTH
            self.stderr.write(
                f"[{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {done}/{total} episodes, "
                f"{rows} rows, {time.monotonic() - started:.1f} s"
            )

        # Written beside the target and moved into place whole, so a failed run leaves nothing.
        partial = Path(f"{output}.part")
        try:
            with open(partial, "wb") as out:
                summary = export_write(organization, out, chunk=chunk, progress=progress)
            partial.replace(output)
        except OSError as error:
            raise CommandError(f"cannot write {output}: {error.strerror}") from error
        finally:
            partial.unlink(missing_ok=True)
        seconds = time.monotonic() - started
        rate = summary.rows / seconds if seconds else 0.0
        self.stdout.write(
            f"{output}: {summary.rows} rows from {summary.episodes} episodes in {seconds:.1f} s "
            f"({rate:.0f} rows/s), peak memory {peak_memory_mb():.0f} MB"
        )
