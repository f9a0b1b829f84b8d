from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Max
from django.utils import timezone
from django.utils.translation import gettext as _

from alliance_app.accounts.models import User

from .models import Client, Closure, Episode, SessionFormat, TherapySession


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


def episode_close(*, episode: Episode, closure: str) -> Episode:
    """End the episode of care today; a client with no open episode leaves the caseload."""
    if not episode.is_open:
        raise ValidationError(_("This episode is already closed."))
    if closure not in Closure.values:
        raise ValidationError({"closure": _("Say how the episode ended.")})
    with transaction.atomic():
        episode.closed = max(timezone.localdate(), episode.opened)
        episode.closure = closure
        episode.save(update_fields=["closed", "closure"])
        episode.client.active = False
        episode.client.save(update_fields=["active"])
    return episode
