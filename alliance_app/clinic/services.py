from datetime import date

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Max
from django.utils import timezone
from django.utils.translation import gettext as _

from alliance_app.accounts.models import User

from .models import Client, Episode, SessionFormat, TherapySession


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
