import re
import secrets
from datetime import date

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils import timezone
from django.utils.translation import gettext as _

from alliance_app.accounts.models import Organization, Role, User

from .models import AgeBandChoice, Client, Episode, SessionFormat, TherapySession

# Letters, digits and a few separators, no spaces: room for a code, none for a full name.
CODE_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,31}")
# Suggested codes leave out letters and digits easily misread for one another (0/O, 1/I/L).
SUGGESTION_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"


def session_start_today(*, client: Client, therapist: User, format: str) -> TherapySession:
    """Today's session of the client's open episode: the existing one, or a new one.

    A client without an open episode starts a new episode of care with this therapist.
    """
    today = timezone.localdate()
    with transaction.atomic():
        episode = (
            Episode.objects.select_for_update().filter(client=client, closed__isnull=True).first()
        )
        if episode is None:
            episode = Episode.objects.create(client=client, therapist=therapist, opened=today)
            if not client.active:
                client.active = True
                client.save(update_fields=["active"])
        existing = episode.sessions.filter(date=today).order_by("-number").first()
        if existing is not None:
            return existing
        last = episode.sessions.aggregate(last=Max("number"))["last"] or 0
        return TherapySession.objects.create(
            episode=episode,
            number=last + 1,
            date=today,
            format=format if format in SessionFormat.values else SessionFormat.INDIVIDUAL,
        )


def session_on(*, client: Client, number: int, held: date, format: str) -> TherapySession:
    """Session `number` of the client's open episode, held on `held`: the one stored, or a new one.

    For sessions recorded after the fact, such as paper forms entered later. A client without an
    open episode starts one on that day with their primary therapist. A number the episode holds
    on another day, or a day before the episode opened, is refused with the reason: either would
    mix these ratings with another session's.
    """
    with transaction.atomic():
        episode = (
            Episode.objects.select_for_update().filter(client=client, closed__isnull=True).first()
        )
        if episode is None:
            episode = Episode.objects.create(
                client=client, therapist=client.primary_therapist, opened=held
            )
            if not client.active:
                client.active = True
                client.save(update_fields=["active"])
        elif held < episode.opened:
            raise ValidationError({"date": episode_opened_later(episode.opened)})
        session, _created = TherapySession.objects.get_or_create(
            episode=episode,
            number=number,
            defaults={
                "date": held,
                "format": format if format in SessionFormat.values else SessionFormat.INDIVIDUAL,
            },
        )
        if session.date != held:
            raise ValidationError({"date": session_held_on(number, session.date)})
        return session


def episode_opened_later(opened: date) -> str:
    return _("This client's episode of care opened on %(opened)s, after this date.") % {
        "opened": opened.isoformat()
    }


def session_held_on(number: int, held: date) -> str:
    return _("Session %(number)s of this client was held on %(held)s.") % {
        "number": number,
        "held": held.isoformat(),
    }


def client_delete(*, client: Client) -> None:
    """Remove a client and every rating, flag, session and episode of theirs, for good."""
    with transaction.atomic():
        client.delete()


def client_code_suggest(*, organization: Organization) -> str:
    """A code not yet used in the organisation, random so that it tells nothing of the client or
    of when they came."""
    while True:
        code = "C-" + "".join(secrets.choice(SUGGESTION_ALPHABET) for _i in range(5))
        if not Client.objects.filter(organization=organization, code__iexact=code).exists():
            return code


def client_create(
    *,
    organization: Organization,
    code: str,
    age_band: str,
    language: str,
    primary_therapist: User,
) -> Client:
    """A new client of `primary_therapist`, without an episode: the first session opens one
    (`session_start_today`). Bad input is refused with the reasons, and nothing is stored."""
    client = Client(organization=organization, primary_therapist=primary_therapist, active=True)
    return _client_save(
        client, code=code, age_band=age_band, language=language, therapist=primary_therapist
    )


def client_update(*, client: Client, code: str, age_band: str, language: str) -> Client:
    """Change a client's code, age band and language, with the same rules as `client_create`."""
    return _client_save(client, code=code, age_band=age_band, language=language, therapist=None)


def client_set_active(*, client: Client, active: bool) -> bool:
    """Archive (`active=False`) or reactivate a client; whether anything changed. An archived
    client leaves the caseload; their record and ratings stay, and a new episode of care brings
    them back."""
    if client.active == active:
        return False
    client.active = active
    client.save(update_fields=["active"])
    return True


def _client_save(
    client: Client, *, code: str, age_band: str, language: str, therapist: User | None
) -> Client:
    code = code.strip()
    errors = client_errors(
        organization=client.organization,
        code=code,
        age_band=age_band,
        language=language,
        therapist=therapist,
        exclude_pk=client.pk,
    )
    if errors:
        raise ValidationError(errors)
    client.code, client.age_band, client.language = code, age_band, language
    try:
        with transaction.atomic():
            client.save()
    except IntegrityError:
        # Another request took the code between the check and the save.
        raise ValidationError({"code": code_taken(code)}) from None
    return client


def client_errors(
    *,
    organization: Organization,
    code: str,
    age_band: str,
    language: str,
    therapist: User | None,
    exclude_pk: int | None = None,
) -> dict[str, str]:
    """What is wrong with these client details, field by field, in words; empty when nothing."""
    errors = {}
    if not CODE_PATTERN.fullmatch(code):
        errors["code"] = _(
            "A client code is 1 to 32 letters, digits, dots, hyphens or underscores, starting "
            "with a letter or digit: no spaces, and no names."
        )
    elif (
        Client.objects.filter(organization=organization, code__iexact=code)
        .exclude(pk=exclude_pk)
        .exists()
    ):
        errors["code"] = code_taken(code)
    if age_band not in AgeBandChoice.values:
        errors["age_band"] = _("Choose one of the age bands listed.")
    if language not in dict(settings.LANGUAGES):
        errors["language"] = _("Choose one of the languages listed.")
    if therapist is not None and not therapist_may_treat_in(organization, therapist):
        errors["primary_therapist"] = not_a_therapist_here()
    return errors


def therapist_may_treat_in(organization: Organization, therapist: User) -> bool:
    """Whether `therapist` may be a client's therapist here: an active therapist or supervisor
    of the organisation."""
    return User.objects.filter(
        pk=therapist.pk,
        is_active=True,
        membership__organization=organization,
        membership__role__in=[Role.THERAPIST, Role.SUPERVISOR],
    ).exists()


def not_a_therapist_here() -> str:
    return _("This therapist is not a therapist or supervisor of this organisation.")


def code_taken(code: str) -> str:
    return _("The code %(code)s is already used in this organisation; choose another.") % {
        "code": code
    }
