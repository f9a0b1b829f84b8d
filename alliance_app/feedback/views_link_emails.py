"""E-mailing a session's rating link to the client, now or at a chosen time, and the e-mails'
fate on the session's page: for the client's own therapists (`clinic.access.require_treating`)."""

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from alliance_app.audit.models import Action
from alliance_app.audit.services import audit_record
from alliance_app.clinic.access import get_visible, require_treating
from alliance_app.clinic.contacts import contact_email
from alliance_app.clinic.models import TherapySession

from .instruments import catalogue
from .link_emails import (
    MAX_ATTEMPTS,
    STUCK_AFTER,
    link_email_cancel,
    link_email_deliver,
    link_email_schedule,
)
from .links import links_created_last_hour
from .models import LinkEmailStatus, Rater, RatingLinkEmail, ScaleChoice
from .views import _rater_of

NOW, LATER = "now", "later"


class LinkEmailForm(forms.Form):
    scale = forms.ChoiceField(label=gettext_lazy("Scale"), choices=ScaleChoice.choices)
    rater = forms.ChoiceField(
        label=gettext_lazy("Who rates"), choices=Rater.choices, required=False
    )
    rater_label = forms.CharField(label=gettext_lazy("Name or role"), max_length=60, required=False)
    when = forms.ChoiceField(
        label=gettext_lazy("When"),
        choices=[(NOW, gettext_lazy("Now")), (LATER, gettext_lazy("At a time I choose"))],
        widget=forms.RadioSelect,
        initial=NOW,
    )
    # Read in the time zone the request runs in: the organisation's (`accounts.time_zones`).
    send_at = forms.DateTimeField(
        label=gettext_lazy("Day and time"),
        required=False,
        input_formats=["%Y-%m-%dT%H:%M"],
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
    )

    def clean(self):
        data = super().clean()
        if data.get("when") == LATER and data.get("send_at") is None:
            self.add_error("send_at", _("Choose the day and time to send it."))
        if data.get("when") == NOW:
            data["send_at"] = None
        data["rater"] = data.get("rater") or Rater.CLIENT
        return data


def _treated_session(request: HttpRequest, pk: int) -> TherapySession:
    session = get_visible(
        request,
        TherapySession.objects.select_related("episode__client__organization"),
        pk,
        "episode__client",
    )
    require_treating(request, session.episode.client)
    return session


@login_required
def link_emails(request: HttpRequest, pk: int) -> HttpResponse:
    """The session's rating-link e-mails, and the form that sends or schedules one."""
    session = _treated_session(request, pk)
    client = session.episode.client
    form = LinkEmailForm(request.POST or None)
    status = 200
    if request.method == "POST":
        if links_created_last_hour(request.user) >= settings.REMOTE_LINKS_PER_HOUR:
            messages.error(request, _("Too many links in the last hour. Please try again later."))
            response = redirect("link_emails", pk=session.pk)
            response.status_code = 429
            return response
        if form.is_valid():
            email = _schedule(request, session, form)
            if email is not None:
                return redirect("link_emails", pk=session.pk)
        status = 400
    else:
        audit_record(request, action=Action.CLIENT_VIEWED, obj=session, detail=client.code)
    emails = list(session.link_emails.select_related("remote_link"))
    now = timezone.now()
    return render(
        request,
        "feedback/link_emails.html",
        {
            "session": session,
            "client": client,
            "form": form,
            "address": contact_email(client),
            "keeps_addresses": client.organization.client_email,
            "emails": [(email, catalogue().get(email.instrument)) for email in emails],
            "cancellable": {
                email.pk
                for email in emails
                if email.status == LinkEmailStatus.SCHEDULED
                or (email.status == LinkEmailStatus.FAILED and email.attempts < MAX_ATTEMPTS)
            },
            "stuck": {
                email.pk
                for email in emails
                if email.status == LinkEmailStatus.SENDING and email.claimed_at < now - STUCK_AFTER
            },
            "raters": Rater.choices,
            "scales": ScaleChoice.choices,
        },
        status=status,
    )


def _schedule(
    request: HttpRequest, session: TherapySession, form: LinkEmailForm
) -> RatingLinkEmail | None:
    """Schedule the e-mail and, for "now", send it in this request (through the timer's own
    path); None with the reason on the form when it is refused."""
    data = form.cleaned_data
    rater, label = _rater_of(session, data["rater"], data["rater_label"])
    client = session.episode.client
    try:
        email = link_email_schedule(
            session=session,
            scale=data["scale"],
            created_by=request.user,
            rater=rater,
            rater_label=label,
            send_at=data["send_at"],
        )
    except ValidationError as error:
        form.add_error(None, error)
        return None
    audit_record(request, action=Action.RATING_LINK_SCHEDULED, obj=email, detail=client.code)
    if data["send_at"] is not None:
        messages.success(request, _("The e-mail is scheduled."))
        return email
    sent = link_email_deliver(email.pk, request=request)
    if sent is not None and sent.status == LinkEmailStatus.SENT:
        messages.success(request, _("The link is e-mailed to the client."))
    elif sent is not None and sent.status == LinkEmailStatus.FAILED:
        messages.error(
            request,
            _("The e-mail could not be sent: %(error)s It will be tried again in a minute or two.")
            % {"error": sent.error},
        )
    else:
        messages.warning(request, sent.error if sent is not None else _("Not sent."))
    return email


@login_required
@require_POST
def link_email_cancel_view(request: HttpRequest, pk: int) -> HttpResponse:
    email = get_visible(
        request,
        RatingLinkEmail.objects.select_related("session__episode__client"),
        pk,
        "session__episode__client",
    )
    client = email.session.episode.client
    require_treating(request, client)
    if link_email_cancel(email=email):
        audit_record(request, action=Action.RATING_LINK_CANCELLED, obj=email, detail=client.code)
        messages.success(request, _("The e-mail is cancelled: it will not be sent."))
    else:
        messages.error(request, _("This e-mail is no longer waiting: it cannot be cancelled."))
    return redirect("link_emails", pk=email.session_id)
