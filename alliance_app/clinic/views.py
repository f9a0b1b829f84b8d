from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import Prefetch
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from alliance_app.accounts.access import (
    get_visible_client,
    may_treat,
    require_membership,
    require_treating,
)
from alliance_app.feedback.models import OPEN_STATUSES, Flag, Rater, Rating, ScaleChoice
from alliance_app.feedback.services import instrument_for_client

from .models import SessionFormat
from .services import session_start_today


@login_required
def client_detail(request: HttpRequest, pk: int) -> HttpResponse:
    client = get_visible_client(request, pk)
    membership = require_membership(request)
    episode = client.episodes.filter(closed__isnull=True).first()
    sessions = []
    if episode is not None:
        sessions = list(
            episode.sessions.order_by("-number").prefetch_related(
                Prefetch(
                    "ratings", queryset=Rating.objects.order_by("scale", "rater", "rater_label")
                )
            )
        )
    today = next((s for s in sessions if s.date == timezone.localdate()), None)
    open_flags = Flag.objects.filter(client=client, status__in=OPEN_STATUSES)
    return render(
        request,
        "clinic/client_detail.html",
        {
            "client": client,
            "episode": episode,
            "sessions": sessions,
            "today": today,
            "open_flags": open_flags.select_related("rating__session"),
            "can_treat": may_treat(membership, client),
            "formats": SessionFormat.choices,
            "raters": Rater.choices,
            "scales": [
                (scale, label, instrument_for_client(client, scale))
                for scale, label in ScaleChoice.choices
            ],
        },
    )


@login_required
@require_POST
def session_start(request: HttpRequest, pk: int) -> HttpResponse:
    client = get_visible_client(request, pk)
    require_treating(request, client)
    session = session_start_today(
        client=client, therapist=request.user, format=request.POST.get("format", "")
    )
    messages.success(request, _("Session %(number)s is open.") % {"number": session.number})
    return redirect("client_detail", pk=client.pk)
