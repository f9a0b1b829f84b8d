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


def client_data(client: Client) -> dict:
    """Everything Alliance holds about one client, for the client's right of access."""
    from alliance_app.feedback.instruments import catalogue
    from alliance_app.feedback.models import Flag, Rating, RemoteLink

    ratings = Rating.objects.filter(session__episode__client=client).order_by("session_id", "pk")
    by_session: dict[int, list[dict]] = {}
    for rating in ratings:
        keys = catalogue().get(rating.instrument).item_keys
        by_session.setdefault(rating.session_id, []).append(
            {
                "scale": rating.scale,
                "instrument": rating.instrument,
                "rater": rating.rater,
                "rater_label": rating.rater_label,
                "items": dict(zip(keys, rating.items, strict=True)),
                "total": rating.total,
                "channel": rating.channel,
                "stored_at": rating.created_at,
            }
        )
    episodes = client.episodes.select_related("therapist").prefetch_related("sessions")
    return {
        "client": {
            "code": client.code,
            "age_band": client.age_band,
            "active": client.active,
            "created_at": client.created_at,
            "primary_therapist": client.primary_therapist.get_username(),
        },
        "episodes": [
            {
                "therapist": episode.therapist.get_username(),
                "opened": episode.opened,
                "closed": episode.closed,
                "closure": episode.closure,
                "sessions": [
                    {
                        "number": session.number,
                        "date": session.date,
                        "format": session.format,
                        "ratings": by_session.get(session.pk, []),
                    }
                    for session in episode.sessions.all()
                ],
            }
            for episode in episodes.order_by("opened")
        ],
        "flags": list(
            Flag.objects.filter(client=client)
            .order_by("created_at")
            .values(
                "kind",
                "item",
                "severity",
                "explanation",
                "status",
                "created_at",
                "acknowledged_at",
                "acknowledged_note",
                "resolved_at",
                "resolved_note",
            )
        ),
        "remote_links": list(
            RemoteLink.objects.filter(session__episode__client=client).values(
                "instrument", "rater", "created_at", "expires_at", "used_at"
            )
        ),
    }


def client_delete(*, client: Client) -> None:
    """Remove a client and every rating, flag, session and episode of theirs, for good."""
    with transaction.atomic():
        client.delete()
