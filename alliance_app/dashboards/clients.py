"""The client page and what is done from it: the chart, flags and sessions of the current episode,
closing the episode, and the client's data rights (export, deletion)."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.db.models import F, Prefetch
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import get_language, ngettext
from django.utils.translation import gettext as _
from django.views.decorators.gzip import gzip_page
from django.views.decorators.http import require_POST

from alliance_app.accounts.access import require_membership, require_role
from alliance_app.accounts.cached import keyed_result
from alliance_app.accounts.models import Membership, Role
from alliance_app.audit.models import Action
from alliance_app.audit.services import audit_record
from alliance_app.clinic.access import (
    get_visible,
    get_visible_client,
    may_hand_over,
    may_treat,
    require_treating,
)
from alliance_app.clinic.models import Client, Closure, Episode, SessionFormat, TherapySession
from alliance_app.clinic.services import client_delete
from alliance_app.feedback.access import flags_to_reflect_on, may_act_on_flags
from alliance_app.feedback.instruments import catalogue
from alliance_app.feedback.models import (
    OPEN_STATUSES,
    Flag,
    Rater,
    Rating,
    ScaleChoice,
    explained_row,
)
from alliance_app.feedback.records import client_data
from alliance_app.feedback.services import episode_close, instrument_for_client
from alliance_app.lib.db_router import replica_reads

from . import charts, fragments, stats
from .selectors import rating_rows


def scales_left(today: TherapySession) -> set[str]:
    """The scales today's session still asks for. In an individual session the client gives
    each once, so a given one is offered no more; in a couple, family or group session the
    tablet goes round the raters, so both stay. Reads the prefetched ratings."""
    if today.format != SessionFormat.INDIVIDUAL:
        return set(ScaleChoice.values)
    return set(ScaleChoice.values) - {rating.scale for rating in today.ratings.all()}


@gzip_page
@login_required
@replica_reads
def client_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """A client's current (or latest) episode: chart, flags, sessions, and today's session.

    `?episode=<id>` shows another of the client's episodes (the supervision page links to the
    one a rupture was in)."""
    client = get_visible_client(request, pk)
    membership = require_membership(request)
    # A client one may see is of one's own organisation, already read with the membership.
    client.organization = membership.organization
    audit_record(request, action=Action.CLIENT_VIEWED, obj=client, detail=client.code)
    chosen = request.GET.get("episode", "")
    # What the page shows of the client's care, once per data version for this viewer (their
    # rights choose links, forms and reflections) and this episode. The client and the viewer's
    # membership are keyed by their content: they were read before the data version.
    result, key = keyed_result(
        "client_detail",
        [client, membership, chosen],
        lambda: _client_result(client, membership, chosen),
    )
    expected = membership.organization.expected_response_model()
    return render(
        request,
        "clinic/client_detail.html",
        {
            **result,
            # The flags and sessions show the result (and the client): kept under its key.
            "result_key": key,
            "client": client,
            "chart_config": charts.chart_json(charts.chart_config()),
            # The band's note under the chart, where the client's age band has lines.
            "band": expected if expected and client.age_band in expected.bands else None,
            "band_above": round(100 * (1 - expected.quantile)) if expected else None,
            "can_manage_data": membership.role == Role.ADMIN,
            "can_hand_over": may_hand_over(membership),
            "formats": SessionFormat.choices,
            "closures": Closure.choices,
            "raters": Rater.choices,
            "scales": [
                (scale, label, instrument_for_client(client, scale))
                for scale, label in ScaleChoice.choices
                if result["today"] is None or scale in scales_left(result["today"])
            ],
        },
    )


def _client_result(client: Client, membership: Membership, chosen: str) -> dict:
    """The client page's episode, sessions, chart, flags and the viewer's rights on them."""
    episode = (client.episodes.filter(pk=chosen).first() if chosen.isdigit() else None) or (
        client.episodes.order_by(F("closed").desc(nulls_first=True), "-opened").first()
    )
    sessions, ratings, chart_flags, chart_ruptures = [], [], [], []
    if episode is not None:
        sessions = list(
            episode.sessions.order_by("-number").prefetch_related(
                Prefetch(
                    "ratings", queryset=Rating.objects.order_by("scale", "rater", "rater_label")
                )
            )
        )
        ratings = rating_rows(Rating.objects.filter(session__episode=episode))
        chart_flags = [
            explained_row(row)
            for row in Flag.objects.filter(rating__session__episode=episode).values(
                "rating_id", "kind", "item", "message", "params", "explanation", "status"
            )
        ]
        chart_ruptures = list(episode.ruptures.values(*charts.RUPTURE_FIELDS))
    rules = membership.organization.flag_rules()
    thresholds = {
        # Each language version of a scale judges alike; the hover names items in the reader's.
        code: rules.thresholds(catalogue().translated(code, get_language()))
        for code in {row["instrument"] for row in ratings}
    }
    # The band in use travels with the organisation: no query of its own.
    expected = membership.organization.expected_response_model()
    # The chart is built once for what it shows: its rows, the rules and band it is drawn
    # against (the band as the organisation stores it), the client's age band.
    chart = fragments.cached(
        "client-chart",
        fragments.fingerprint(
            ratings,
            chart_flags,
            thresholds,
            chart_ruptures,
            membership.organization.expected_response,
            client.age_band,
        ),
        lambda: charts.chart_json(
            charts.client_chart(
                stats.client_trend(ratings),
                chart_flags,
                thresholds,
                chart_ruptures,
                expected=expected,
                band=client.age_band,
            )
        ),
    )
    flags = list(
        Flag.objects.filter(client=client)
        .select_related(
            "rating__session",
            "rating__rupture",
            "acknowledged_by",
            "resolved_by",
            "reflection__marker",
        )
        .prefetch_related("reflection__strategies")
        .order_by("-severity", "-created_at")
    )
    is_open = episode is not None and episode.is_open
    today = next((s for s in sessions if is_open and s.date == timezone.localdate()), None)
    return {
        "episode": episode,
        "sessions": sessions,
        "today": today,
        "chart": chart,
        "has_ratings": bool(ratings),
        "open_flags": [flag for flag in flags if flag.status in OPEN_STATUSES],
        "earlier_flags": [flag for flag in flags if flag.status not in OPEN_STATUSES],
        "can_treat": may_treat(membership, client),
        "can_act_on_flags": may_act_on_flags(membership, client),
        "reflect_on": flags_to_reflect_on(membership, flags),
        # Offered when naming the next rater, so one partner stays one series.
        "labels_used": sorted(
            {r.rater_label for s in sessions for r in s.ratings.all() if r.rater_label}
        ),
    }


@login_required
@require_POST
def episode_close_view(request: HttpRequest, pk: int) -> HttpResponse:
    episode = get_visible(request, Episode.objects.select_related("client"), pk, "client")
    require_treating(request, episode.client)
    try:
        resolved = episode_close(
            episode=episode, closure=request.POST.get("closure", ""), by=request.user
        )
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(
            request,
            ngettext(
                "The episode of care is closed; its one open flag is resolved with it.",
                "The episode of care is closed; its %(count)s open flags are resolved with it.",
                resolved,
            )
            % {"count": resolved}
            if resolved
            else _("The episode of care is closed."),
        )
    return redirect("client_detail", pk=episode.client_id)


@login_required
def client_export(request: HttpRequest, pk: int) -> HttpResponse:
    """Everything held about one client, as JSON: the client's right of access."""
    client = get_visible_client(request, pk)
    require_role(request, Role.ADMIN)
    audit_record(request, action=Action.CLIENT_EXPORTED, obj=client, detail=client.code)
    response = JsonResponse(client_data(client), json_dumps_params={"indent": 2})
    response["Content-Disposition"] = f'attachment; filename="alliance-client-{client.code}.json"'
    return response


@login_required
def client_delete_view(request: HttpRequest, pk: int) -> HttpResponse:
    """Delete a client and all their data once the admin has typed the client's code."""
    client = get_visible_client(request, pk)
    require_role(request, Role.ADMIN)
    if request.method == "POST":
        if request.POST.get("code", "").strip() == client.code:
            code, client_pk = client.code, client.pk
            client_delete(client=client)
            # The entry names the pseudonymous code only: no scores, notes or dates of care.
            audit_record(
                request,
                action=Action.CLIENT_DELETED,
                object_type="client",
                object_id=str(client_pk),
                detail=code,
            )
            messages.success(
                request, _("Client %(code)s and all their data are deleted.") % {"code": code}
            )
            return redirect("home")
        messages.error(request, _("The code you typed does not match. Nothing was deleted."))
    return render(request, "clinic/client_delete.html", {"client": client})
