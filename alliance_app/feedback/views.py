import uuid
from urllib.parse import urlencode

import segno
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core import signing
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import translation
from django.utils.formats import number_format
from django.utils.safestring import mark_safe
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from alliance_app.accounts.access import require_membership
from alliance_app.accounts.decorators import allowed_in_client_mode
from alliance_app.accounts.languages import is_offered
from alliance_app.accounts.models import Organization
from alliance_app.accounts.redirects import safe_next
from alliance_app.audit.models import Action
from alliance_app.audit.services import audit_record
from alliance_app.clinic.access import get_visible, may_treat, require_treating
from alliance_app.clinic.models import SessionFormat, TherapySession
from alliance_app.measures import Instrument, Scale

from . import statements
from .access import flags_to_reflect_on, get_visible_flag, may_reflect
from .client_mode import (
    ClientMode,
    client_mode_end,
    client_mode_of,
    client_mode_record,
    client_mode_start,
    in_staff_language,
    unlock_attempt_take,
    unlock_attempts_left,
)
from .forms import HandOverForm, ReflectionForm, UnlockForm
from .instruments import catalogue
from .links import (
    LinkRefused,
    link_language,
    links_created_last_hour,
    remote_link_create,
    remote_link_language,
    remote_link_open,
    remote_link_submit,
)
from .models import Rater, Rating, Reflection, RemoteLink
from .progress_svg import ProgressPoint, progress_svg
from .reflecting import REFLECTED_KINDS, reflection_save
from .services import (
    SubmitResult,
    already_rated,
    instrument_for_client,
    rater_label_for,
    rating_submit,
    read_submission,
    read_tension,
)
from .summaries import rating_summary

TABLET_SALT = "alliance.feedback.tablet"
CREATED_LINKS_KEY = "alliance_created_links"


def _visible_session(request: HttpRequest, pk: int) -> TherapySession:
    return get_visible(
        request,
        TherapySession.objects.select_related("episode__client__organization"),
        pk,
        "episode__client",
    )


def _treated_session(request: HttpRequest, pk: int) -> TherapySession:
    """The session, if the user treats its client (`require_treating`), with its episode, client,
    organisation and the organisation's measured rupture SD, for a rating about to be stored.

    Whom one treats one sees, so the common case is one lookup by key; only a refusal asks
    whether the session is visible at all, to answer 404 rather than 403 when it is not. The
    organisation is the member's own, already read with them (`may_treat` holds only there)."""
    membership = require_membership(request)
    found = statements.session_for_rating(pk)
    if found is not None and may_treat(membership, found.session.episode.client):
        organization = membership.organization
        statements.keep_measured_sd(organization, found.measured_sd)
        found.session.episode.client.organization = organization
        return found.session
    _visible_session(request, pk)
    raise PermissionDenied


def _rater_of(session: TherapySession, rater: str, label: str) -> tuple[str, str]:
    """An individual session is always rated by the client; others name who rates."""
    if session.format == SessionFormat.INDIVIDUAL:
        return Rater.CLIENT, ""
    return rater, rater_label_for(session.episode, rater, label)


@login_required
@require_POST
def hand_over(request: HttpRequest, pk: int) -> HttpResponse:
    session = _visible_session(request, pk)
    client = session.episode.client
    require_treating(request, client)
    form = HandOverForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Choose the scale and who rates."))
        return redirect("client_detail", pk=client.pk)
    instrument = instrument_for_client(client, form.cleaned_data["scale"])
    rater, label = _rater_of(session, form.cleaned_data["rater"], form.cleaned_data["rater_label"])
    if already_rated(session, instrument.scale, rater, label):
        messages.warning(request, _("This rater has already given this rating in this session."))
        return redirect("client_detail", pk=client.pk)
    client_mode_start(
        request,
        ClientMode(
            session.pk, instrument.code, rater, label, str(uuid.uuid4()), language=client.language
        ),
    )
    return redirect("client_rate")


def _asks_tension(instrument: Instrument, organizations: QuerySet[Organization]) -> bool:
    """Whether the form asks the tension question: after a session scale, when the rater's
    organisation (the one in `organizations`) asks it (DESIGN.md §5). One query, and none for
    an outcome scale."""
    return instrument.scale is Scale.SESSION and organizations.filter(ask_tension=True).exists()


def _rating_page(
    request: HttpRequest, instrument: Instrument, form_action: str, key: str, ask_tension: bool
) -> HttpResponse:
    submit_label = _("Done") if instrument.faces else _("Send my answers")
    return render(
        request,
        "feedback/rate.html",
        {
            "instrument": instrument,
            "form_action": form_action,
            "idempotency_key": key,
            "submit_label": submit_label,
            "ask_tension": ask_tension,
        },
    )


@allowed_in_client_mode
@login_required
@never_cache
def client_rate(request: HttpRequest) -> HttpResponse:
    mode = client_mode_of(request)
    if mode is None:
        return redirect("home")
    if mode.rating is not None:
        return redirect("rate_thanks")
    token = signing.dumps(
        [mode.session, mode.instrument, mode.rater, mode.rater_label], salt=TABLET_SALT
    )
    instrument = catalogue().get(mode.instrument)
    return _rating_page(
        request,
        instrument,
        reverse("rate_submit", args=[token]),
        mode.idempotency_key,
        _asks_tension(
            instrument, Organization.objects.filter(clients__episodes__sessions=mode.session)
        ),
    )


def _stored(request: HttpRequest, result: SubmitResult, next_url: str) -> HttpResponse:
    if request.accepts("application/json") and not request.accepts("text/html"):
        return JsonResponse(
            {"status": "stored", "next": next_url}, status=201 if result.created else 200
        )
    return redirect(next_url)


def _invalid(request: HttpRequest, error: ValidationError) -> HttpResponse:
    errors = error.message_dict if hasattr(error, "error_dict") else {"__all__": error.messages}
    return JsonResponse({"status": "invalid", "errors": errors}, status=400)


def _refused(message: str, status: int) -> HttpResponse:
    return JsonResponse({"status": "refused", "message": message}, status=status)


@allowed_in_client_mode
@login_required
@require_POST
def rate_submit(request: HttpRequest, token: str) -> HttpResponse:
    """The tablet's submission. The signed token fixes session, scale and rater, so a retry that
    arrives after the therapist has unlocked the tablet still stores the rating once."""
    try:
        session_pk, instrument_code, rater, label = signing.loads(token, salt=TABLET_SALT)
    except (signing.BadSignature, ValueError):
        return _refused(_("This form is not valid. Please hand the tablet back."), 400)
    session = _treated_session(request, session_pk)
    try:
        instrument = catalogue().get(instrument_code)
        scores, key = read_submission(request.POST, instrument)
        result = rating_submit(
            tension=read_tension(request.POST, instrument),
            session=session,
            instrument_code=instrument_code,
            scores=scores,
            idempotency_key=key,
            rater=rater,
            rater_label=label,
            entered_by=request.user,
        )
    except ValidationError as error:
        return _invalid(request, error)
    mode = client_mode_of(request)
    if mode is not None and mode.session == session.pk and mode.instrument == instrument_code:
        client_mode_record(request, result.rating.pk)
        return _stored(request, result, reverse("rate_thanks"))
    return _stored(request, result, reverse("rating_result", args=[result.rating.pk]))


@allowed_in_client_mode
@login_required
@never_cache
def rate_thanks(request: HttpRequest) -> HttpResponse:
    if client_mode_of(request) is None:
        return redirect("home")
    return render(request, "feedback/thanks.html")


@allowed_in_client_mode
@login_required
@never_cache
def rate_progress(request: HttpRequest) -> HttpResponse:
    """The client's own outcome course, which the therapist may show on the locked tablet: the
    outcome totals this rater gave in this episode and nothing else (no flags, cutoff, notes,
    session ratings or other raters), then back to the form or the thank-you page."""
    mode = client_mode_of(request)
    if mode is None:
        return redirect("home")
    session = _visible_session(request, mode.session)
    points = [
        ProgressPoint(number, total)
        for number, total in Rating.objects.filter(
            session__episode=session.episode_id,
            scale=Scale.OUTCOME,
            rater=mode.rater,
            rater_label=mode.rater_label,
        )
        .order_by("session__number")
        .values_list("session__number", "total")
    ]
    audit_record(
        request,
        action=Action.CLIENT_PROGRESS_SHOWN,
        obj=session,
        detail=session.episode.client.code,
    )
    chart = None
    if points:
        chart = progress_svg(
            points,
            title=_("Your ratings of how things have been going, session by session"),
            session_word=_("Session"),
            shown=lambda total: number_format(total, 1),
        )
    back, back_label = (
        ("client_rate", _("Back to the form"))
        if mode.rating is None
        else ("rate_thanks", _("Back"))
    )
    return render(
        request,
        "feedback/progress.html",
        {
            # Built from numbers and our own translated words, each escaped by progress_svg.
            "chart": mark_safe(chart) if chart else None,  # noqa: S308
            "points": points,
            "back": reverse(back),
            "back_label": back_label,
        },
    )


@in_staff_language
@allowed_in_client_mode
@login_required
@never_cache
def unlock(request: HttpRequest) -> HttpResponse:
    mode = client_mode_of(request)
    if mode is None:
        return redirect("home")
    form = UnlockForm(request.POST or None)
    attempts_left = unlock_attempts_left(mode)
    if request.method == "POST" and attempts_left and form.is_valid():
        # The attempt is taken before the password is checked: requests sent in parallel
        # find the last one gone instead of each checking a password.
        if not unlock_attempt_take(mode):
            attempts_left = 0
        elif request.user.check_password(form.cleaned_data["password"]):
            client_mode_end(request)
            audit_record(
                request,
                action=Action.CLIENT_MODE_UNLOCKED,
                object_type="therapysession",
                object_id=str(mode.session),
            )
            if mode.rating is not None:
                return redirect("rating_result", pk=mode.rating)
            session = TherapySession.objects.select_related("episode").get(pk=mode.session)
            return redirect("client_detail", pk=session.episode.client_id)
        else:
            audit_record(request, action=Action.CLIENT_MODE_UNLOCK_FAILED)
            attempts_left = unlock_attempts_left(mode)
            form.add_error("password", _("That password is not right."))
    locked_out = attempts_left == 0
    status = 429 if locked_out else 200 if request.method == "GET" or form.is_valid() else 400
    return render(
        request,
        "feedback/unlock.html",
        {"form": form, "locked_out": locked_out, "attempts_left": attempts_left},
        status=status,
    )


@login_required
def rating_result(request: HttpRequest, pk: int) -> HttpResponse:
    rating = get_visible(
        request,
        Rating.objects.select_related("session__episode__client__organization"),
        pk,
        "session__episode__client",
    )
    client = rating.session.episode.client
    audit_record(request, action=Action.RATING_VIEWED, obj=rating, detail=client.code)
    summary = rating_summary(rating, rules=client.organization.flag_rules())
    reflect_on = flags_to_reflect_on(require_membership(request), summary.flags)
    return render(request, "feedback/result.html", {"summary": summary, "reflect_on": reflect_on})


@login_required
@require_POST
def link_create(request: HttpRequest, pk: int) -> HttpResponse:
    session = _visible_session(request, pk)
    require_treating(request, session.episode.client)
    form = HandOverForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Choose the scale and who rates."))
        return redirect("client_detail", pk=session.episode.client_id)
    rater, label = _rater_of(session, form.cleaned_data["rater"], form.cleaned_data["rater_label"])
    if links_created_last_hour(request.user) >= settings.REMOTE_LINKS_PER_HOUR:
        messages.error(request, _("Too many links in the last hour. Please try again later."))
        response = redirect("client_detail", pk=session.episode.client_id)
        response.status_code = 429
        return response
    try:
        created = remote_link_create(
            session=session,
            scale=form.cleaned_data["scale"],
            created_by=request.user,
            rater=rater,
            rater_label=label,
        )
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
        return redirect("client_detail", pk=session.episode.client_id)
    audit_record(
        request,
        action=Action.REMOTE_LINK_CREATED,
        obj=created.link,
        detail=session.episode.client.code,
    )
    # The token is shown once: only its digest is stored, so it cannot be shown again later.
    shown = request.session.get(CREATED_LINKS_KEY, {})
    request.session[CREATED_LINKS_KEY] = {**shown, str(created.link.pk): created.token}
    return redirect("link_detail", pk=created.link.pk)


@login_required
def link_detail(request: HttpRequest, pk: int) -> HttpResponse:
    link = get_visible(
        request,
        RemoteLink.objects.select_related("session__episode__client"),
        pk,
        "session__episode__client",
    )
    client = link.session.episode.client
    audit_record(request, action=Action.REMOTE_LINK_VIEWED, obj=link, detail=client.code)
    token = request.session.get(CREATED_LINKS_KEY, {}).pop(str(link.pk), None)
    request.session.modified = True
    url = qr_svg = None
    if token is not None:
        url = request.build_absolute_uri(reverse("remote_rate", args=[token]))
        qr_svg = segno.make(url, error="m").svg_inline(scale=5, dark="#1f3a4d", border=2)
    return render(
        request,
        "feedback/link_detail.html",
        {"link": link, "url": url, "qr_svg": qr_svg, "scale": catalogue().get(link.instrument)},
    )


@allowed_in_client_mode
@never_cache
def remote_rate(request: HttpRequest, token: str) -> HttpResponse:
    """The page behind a remote link: the form and nothing else, no login, in the client's
    language."""
    if request.method == "POST":
        language = remote_link_language(token) or translation.get_language()
        with translation.override(language):
            return _remote_submit(request, token, language)
    try:
        link = remote_link_open(token)
    except LinkRefused as refused:
        status = 404 if refused.reason == "invalid" else 410
        with translation.override(refused.language or translation.get_language()):
            return render(
                request, "feedback/link_refused.html", {"message": refused.message}, status=status
            )
    instrument = catalogue().get(link.instrument)
    with translation.override(link_language(link)):
        return _rating_page(
            request,
            instrument,
            reverse("remote_rate", args=[token]),
            str(uuid.uuid4()),
            _asks_tension(
                instrument,
                Organization.objects.filter(pk=link.session.episode.client.organization_id),
            ),
        )


def _remote_submit(request: HttpRequest, token: str, language: str) -> HttpResponse:
    try:
        result = remote_link_submit(token=token, data=request.POST)
    except LinkRefused as refused:
        return _refused(refused.message, 410 if refused.reason != "invalid" else 404)
    except ValidationError as error:
        return _invalid(request, error)
    if result.created:
        client = result.rating.session.episode.client
        audit_record(
            request,
            action=Action.REMOTE_LINK_USED,
            organization=client.organization,
            object_type="remotelink",
            object_id=str(result.rating.remote_link.pk),
            detail=client.code,
        )
    # The thank-you page has no link to read the language from: it is passed along.
    thanks = f"{reverse('remote_thanks')}?{urlencode({'lang': language})}"
    return JsonResponse({"status": "stored", "next": thanks})


@allowed_in_client_mode
def remote_thanks(request: HttpRequest) -> HttpResponse:
    language = request.GET.get("lang", "")
    with translation.override(language if is_offered(language) else translation.get_language()):
        return render(request, "feedback/remote_thanks.html")


@login_required
def flag_reflection(request: HttpRequest, pk: int) -> HttpResponse:
    """The therapist's reflection on a rupture or a client-reported tension (DESIGN.md §5).

    Who: everyone who sees the flag reads the page, so supervisors and admins read what the
    therapist wrote; only the client's own therapist writes it (`access.may_reflect`), since it
    is their account of their part in the session. A POST from anyone else who sees the flag is
    refused (403); a flag one cannot see, or of a kind without reflections, is not found (404).
    Each look and each save goes into the audit trail.
    """
    flag = get_visible_flag(request, pk)
    if flag.kind not in REFLECTED_KINDS:
        raise Http404
    may_write = may_reflect(require_membership(request), flag.client)
    if request.method == "POST" and not may_write:
        raise PermissionDenied
    reflection = (
        Reflection.objects.select_related("marker", "author")
        .prefetch_related("strategies")
        .filter(flag=flag)
        .first()
    )
    back = safe_next(request, default=reverse("client_detail", args=[flag.client_id]))
    form = None
    if may_write:
        data = request.POST if request.method == "POST" else None
        form = ReflectionForm(data, flag=flag, reflection=reflection)
        if data is not None and form.is_valid():
            try:
                saved = reflection_save(flag=flag, by=request.user, **form.answers())
            except ValidationError as error:
                form.add_error(None, error)
            else:
                code = flag.client.code
                audit_record(request, action=Action.REFLECTION_SAVED, obj=saved, detail=code)
                if saved.flag.status != flag.status:
                    audit_record(request, action=Action.FLAG_ACKNOWLEDGED, obj=flag, detail=code)
                    messages.success(request, _("Reflection saved; the flag is acknowledged."))
                else:
                    messages.success(request, _("Reflection saved."))
                return redirect(back)
    audit_record(request, action=Action.REFLECTION_VIEWED, obj=flag, detail=flag.client.code)
    return render(
        request,
        "feedback/reflection.html",
        {
            "flag": flag,
            "rupture": getattr(flag.rating, "rupture", None),
            "reflection": reflection,
            "form": form,
            "back": back,
            "next": request.POST.get("next") or request.GET.get("next", ""),
        },
        status=400 if request.method == "POST" else 200,
    )
