from django.contrib.auth.decorators import login_required
from django.db import DatabaseError, connection
from django.db.models import Count, Max, Q
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from alliance_app.feedback.models import OPEN_STATUSES

from .access import clients_visible_to, require_membership


@login_required
def home(request: HttpRequest) -> HttpResponse:
    membership = require_membership(request)
    clients = (
        clients_visible_to(membership)
        .filter(active=True)
        .select_related("primary_therapist")
        .annotate(
            open_flags=Count("flags", filter=Q(flags__status__in=OPEN_STATUSES), distinct=True),
            last_session=Max("episodes__sessions__date"),
        )
        .order_by("-open_flags", "code")
    )
    return render(request, "accounts/home.html", {"membership": membership, "clients": clients})


@require_GET
@never_cache
def healthz(request: HttpRequest) -> HttpResponse:
    """200 when the database answers: what a load balancer asks before sending traffic."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except DatabaseError:
        return JsonResponse({"status": "unavailable", "database": "error"}, status=503)
    return JsonResponse({"status": "ok", "database": "ok"})
