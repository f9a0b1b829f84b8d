"""`manage.py start_organization`: a new clinic's first step, before anyone can log in.

Creates the organisation (and, if asked, its first teams) and invites its first organisation admin
by e-mail; everything after that (colleagues, teams, settings) is done in the app by that admin
(README "Running a clinic"). An invitation that could not be sent is kept: once the mail server is
configured, `--resend` sends it again with a new link.
"""

import smtplib

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, no_translations
from django.db import transaction
from django.utils.text import slugify

from alliance_app.accounts.models import Invitation, Organization, Role, Team
from alliance_app.clinic.invitations import invite, resend


class Command(BaseCommand):
    help = "Create an organisation and e-mail an invitation to its first organisation admin."

    def add_arguments(self, parser):
        parser.add_argument("name", help="the organisation's name, e.g. 'Fjord Clinic'")
        parser.add_argument("--admin-email", required=True, help="the first admin's address")
        parser.add_argument("--admin-first-name", default="")
        parser.add_argument("--admin-last-name", default="")
        parser.add_argument("--slug", help="short name (default: made from the name)")
        parser.add_argument("--time-zone", default="UTC", help="an IANA name, e.g. Europe/Oslo")
        parser.add_argument("--language", default="", help="the admin's language: en, es or nb")
        parser.add_argument(
            "--team", action="append", default=[], help="a team to create (may be repeated)"
        )
        parser.add_argument(
            "--resend",
            action="store_true",
            help="the organisation exists: send the admin's pending invitation again",
        )

    @no_translations  # its messages are for whoever installs Alliance: in English
    def handle(self, **options):
        slug = options["slug"] or slugify(options["name"])
        if not slug:
            raise CommandError("Give a name with letters or digits, or --slug.")
        if options["resend"]:
            return self._resend(slug, options["admin_email"])
        if Organization.objects.filter(slug=slug).exists():
            raise CommandError(
                f"An organisation with the short name {slug!r} exists already; choose another "
                "--slug, or add --resend to send its admin's invitation again."
            )
        organization = Organization(name=options["name"], slug=slug, time_zone=options["time_zone"])
        try:
            organization.full_clean()
        except ValidationError as error:
            raise CommandError(_words(error)) from error
        teams = list(dict.fromkeys(name.strip() for name in options["team"] if name.strip()))
        try:
            with transaction.atomic():
                organization.save()
                Team.objects.bulk_create(Team(organization=organization, name=n) for n in teams)
                invitation = invite(
                    organization=organization,
                    email=options["admin_email"],
                    first_name=options["admin_first_name"],
                    last_name=options["admin_last_name"],
                    role=Role.ADMIN,
                    team=None,
                    language=options["language"],
                    invited_by=None,
                    request=None,
                    send=False,
                )
        except ValidationError as error:
            raise CommandError(_words(error)) from error
        self.stdout.write(f"Organisation {organization.name} ({slug}) created")
        for name in teams:
            self.stdout.write(f"  team {name}")
        self._send(invitation, slug)

    def _resend(self, slug: str, email: str) -> None:
        invitation = Invitation.objects.filter(
            organization__slug=slug, email=email.strip().lower(), accepted_at__isnull=True
        ).first()
        if invitation is None:
            raise CommandError(f"{slug!r} has no pending invitation for {email}.")
        self._send(invitation, slug, again=True)

    def _send(self, invitation: Invitation, slug: str, again: bool = False) -> None:
        try:
            resend(invitation, by=None, request=None)
        except (smtplib.SMTPException, OSError) as error:
            raise CommandError(
                f"The invitation to {invitation.email} is kept but could not be e-mailed "
                f"({type(error).__name__}: {error}). Configure EMAIL_URL (README, E-mail) and run "
                f"this again with --slug {slug} --admin-email {invitation.email} --resend."
            ) from error
        self.stdout.write(
            f"Invitation {'sent again' if again else 'sent'} to {invitation.email}: the link "
            "sets their password and works once."
        )


def _words(error: ValidationError) -> str:
    if hasattr(error, "message_dict"):
        return "; ".join(f"{field}: {' '.join(msgs)}" for field, msgs in error.message_dict.items())
    return " ".join(error.messages)
