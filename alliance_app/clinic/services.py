from django.db import transaction
from django.db.models import Max
from django.utils import timezone

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


def client_delete(*, client: Client) -> None:
    """Remove a client and every rating, flag, session and episode of theirs, for good."""
    with transaction.atomic():
        client.delete()
