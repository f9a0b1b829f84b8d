"""Everything Alliance holds about one client, for the client's right of access."""

from alliance_app.clinic.models import Client

from .instruments import catalogue
from .models import Flag, Rating, Reflection, RemoteLink, explained_row
from .reflections import option_label


def client_data(client: Client) -> dict:
    """Everything Alliance holds about one client, for the client's right of access."""
    ratings = (
        Rating.objects.filter(session__episode__client=client)
        .select_related("tension", "rupture")
        .order_by("session_id", "pk")
    )
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
                **_tension(rating),
                **_rupture(rating),
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
        "flags": [
            explained_row(row)
            for row in Flag.objects.filter(client=client)
            .order_by("created_at")
            .values(
                "kind",
                "item",
                "severity",
                "message",
                "params",
                "explanation",
                "status",
                "created_at",
                "acknowledged_at",
                "acknowledged_note",
                "resolved_at",
                "resolved_note",
            )
        ],
        "reflections": [
            {
                "flag_kind": reflection.flag.kind,
                "flag_raised_at": reflection.flag.created_at,
                "written_by": reflection.author.get_username(),
                "written_at": reflection.created_at,
                "changed_at": reflection.updated_at,
                "what_it_looked_like": option_label(reflection.marker),
                "part_of_the_alliance": reflection.dimension,
                "what_the_therapist_did": [option_label(o) for o in reflection.strategies.all()],
                "note": reflection.note,
                "may_be_used_for_teaching": reflection.teaching_consent,
            }
            for reflection in Reflection.objects.filter(flag__client=client)
            .select_related("flag", "author", "marker")
            .prefetch_related("strategies")
            .order_by("created_at")
        ],
        "remote_links": list(
            RemoteLink.objects.filter(session__episode__client=client).values(
                "instrument", "rater", "created_at", "expires_at", "used_at"
            )
        ),
    }


def _tension(rating: Rating) -> dict:
    try:
        report = rating.tension
    except Rating.tension.RelatedObjectDoesNotExist:
        return {}
    return {"tension": {"felt": report.tension, "sorted_out": report.resolution}}


def _rupture(rating: Rating) -> dict:
    try:
        rupture = rating.rupture
    except Rating.rupture.RelatedObjectDoesNotExist:
        return {}
    return {
        "rupture": {
            "usual_level": rupture.baseline,
            "drop": rupture.drop,
            "threshold": rupture.threshold,
            "part_of_the_alliance": rupture.dimensions.split(),
            "status": rupture.status,
            "repaired_at_session": rupture.repaired_number,
        }
    }
