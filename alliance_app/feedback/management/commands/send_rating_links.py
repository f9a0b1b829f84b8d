"""Send the rating-link e-mails that are due: `manage.py send_rating_links`, run every minute by a
timer (cron or systemd, README "The timer for scheduled links").

Runs may overlap: each e-mail is claimed by one conditional UPDATE before it is sent, so it goes out
once (`feedback.link_emails`). A failed e-mail is tried again by later runs, up to three attempts in
all. An e-mail left "sending" by a run that died is reported here and on the session's page, and
not sent again: that run may have handed it to the mail server already, and a client should not
get two links for one rating.
"""

from django.core.management.base import BaseCommand

from alliance_app.feedback.link_emails import STUCK_AFTER, send_due


class Command(BaseCommand):
    help = "Send the rating-link e-mails that are due (run every minute by a timer)."

    def handle(self, **options):
        report = send_due()
        self.stdout.write(
            f"rating links: {report.sent} sent, {report.failed} failed, "
            f"{report.cancelled} cancelled, {report.taken_by_another} taken by another run"
        )
        minutes = int(STUCK_AFTER.total_seconds() // 60)
        for email in report.stuck:
            self.stderr.write(
                f"rating link e-mail {email.pk} (client {email.session.episode.client.code}, "
                f"session {email.session.number}) has been sending since "
                f"{email.claimed_at:%Y-%m-%d %H:%M} UTC, over {minutes} minutes: its run "
                "stopped; it is not sent again"
            )
