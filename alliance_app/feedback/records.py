"""Everything Alliance holds about one client, for the client's right of access."""

from alliance_app.clinic.models import Client

from .instruments import catalogue
from .models import Flag, Rating, RemoteLink


def client_data(client: Client) -> dict:
    """Everything Alliance holds about one client, for the client's right of access."""
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
