from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from .access import get_visible_client, require_treating
from .services import session_start_today


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
