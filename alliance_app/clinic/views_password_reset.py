"""Password reset by e-mail, on Django's own views, audited and in the user's language.

The answer is the same whether the address is known or not (Django's behaviour). A new password
changes nothing about two-factor login: the link does not log anyone in, and a user with an
authenticator still enters its code at the next login (`accounts.two_factor`). In the clinic
layer because it writes the audit trail.
"""

from datetime import timedelta

from django.contrib.auth import views as auth_views
from django.contrib.auth.forms import PasswordResetForm
from django.urls import reverse_lazy
from django.utils import timezone, translation
from django.utils.translation import gettext_lazy as _

from alliance_app.accounts.mail import user_language
from alliance_app.accounts.models import User
from alliance_app.audit.models import Action, AuditEntry
from alliance_app.audit.services import audit_record
from alliance_app.lib.client_address import client_address

# A modest limit against filling someone's inbox: beyond it the page answers as always, but no
# e-mail goes out. Counted from the audit trail, like other limits kept in the database.
RESETS_PER_ACCOUNT_HOUR = 3
RESETS_PER_ADDRESS_HOUR = 10


class LanguagePasswordResetForm(PasswordResetForm):
    """Django's form, writing to each user in their own language and noting whom it wrote to."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["email"].label = _("E-mail address")
        self.sent_to: list[User] = []

    def send_mail(self, subject_template_name, email_template_name, context, *args, **kwargs):
        user = context["user"]
        with translation.override(user_language(user)):
            super().send_mail(subject_template_name, email_template_name, context, *args, **kwargs)
        self.sent_to.append(user)


def too_many_requests(request, email: str) -> bool:
    """Whether this address's accounts, or this network address, asked too often this hour."""
    since = timezone.now() - timedelta(hours=1)
    recent = AuditEntry.objects.filter(action=Action.PASSWORD_RESET_REQUESTED, at__gte=since)
    users = User.objects.filter(email__iexact=email).values("pk")
    if recent.filter(actor__in=users).count() >= RESETS_PER_ACCOUNT_HOUR:
        return True
    address = client_address(request)
    return address is not None and recent.filter(ip=address).count() >= RESETS_PER_ADDRESS_HOUR


class PasswordResetView(auth_views.PasswordResetView):
    form_class = LanguagePasswordResetForm
    email_template_name = "registration/password_reset_email.txt"
    subject_template_name = "registration/password_reset_subject.txt"
    success_url = reverse_lazy("password_reset_done")

    def form_valid(self, form):
        if too_many_requests(self.request, form.cleaned_data["email"]):
            # FormView's form_valid: the usual redirect to "sent", without sending.
            return super(auth_views.PasswordResetView, self).form_valid(form)
        response = super().form_valid(form)
        for user in form.sent_to:
            audit_record(self.request, action=Action.PASSWORD_RESET_REQUESTED, actor=user)
        return response


class PasswordResetConfirmView(auth_views.PasswordResetConfirmView):
    success_url = reverse_lazy("password_reset_complete")

    def form_valid(self, form):
        response = super().form_valid(form)
        audit_record(self.request, action=Action.PASSWORD_RESET_DONE, actor=form.user)
        return response
