from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from django.utils.translation import gettext_lazy as _

from alliance_app.accounts import languages, two_factor
from alliance_app.accounts import views as accounts_views
from alliance_app.accounts.forms import LoginForm
from alliance_app.clinic import views as clinic_views
from alliance_app.clinic import views_contact as contact_views
from alliance_app.clinic import views_invitations as invitation_views
from alliance_app.clinic import views_password_reset as password_reset_views
from alliance_app.clinic import views_staff as staff_views
from alliance_app.dashboards import clients as client_views
from alliance_app.dashboards import expected as expected_views
from alliance_app.dashboards import supervision as supervision_views
from alliance_app.dashboards import views as dashboard_views
from alliance_app.dashboards import views_settings as settings_views
from alliance_app.feedback import views as feedback_views
from alliance_app.feedback import views_fhir as fhir_views
from alliance_app.feedback import views_handover as handover_views
from alliance_app.feedback import views_imports as import_views
from alliance_app.feedback import views_link_emails as link_email_views
from alliance_app.research import views_analysis as analysis_views
from alliance_app.research import views_cases as case_views
from alliance_app.research import views_export as research_export_views
from alliance_app.research import views_training as training_views

admin.site.site_header = _("Alliance administration")
admin.site.site_title = _("Alliance")

urlpatterns = [
    path("", dashboard_views.home, name="home"),
    path(
        "login/",
        auth_views.LoginView.as_view(
            authentication_form=LoginForm, redirect_authenticated_user=True
        ),
        name="login",
    ),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("account/two-factor/", two_factor.setup, name="two_factor_setup"),
    path("account/language/", languages.language_setting, name="language_setting"),
    path("account/two-factor/verify/", two_factor.verify, name="two_factor_verify"),
    path(
        "account/two-factor/recovery-codes/",
        two_factor.recovery_codes,
        name="two_factor_recovery",
    ),
    path(
        "account/password-reset/",
        password_reset_views.PasswordResetView.as_view(),
        name="password_reset",
    ),
    path(
        "account/password-reset/sent/",
        auth_views.PasswordResetDoneView.as_view(),
        name="password_reset_done",
    ),
    path(
        "account/reset/<uidb64>/<token>/",
        password_reset_views.PasswordResetConfirmView.as_view(),
        name="password_reset_confirm",
    ),
    path(
        "account/reset/done/",
        auth_views.PasswordResetCompleteView.as_view(),
        name="password_reset_complete",
    ),
    path("invitation/<str:token>/", invitation_views.accept, name="invitation_accept"),
    path("healthz", accounts_views.healthz, name="healthz"),
    # Dashboards
    path("caseload/", dashboard_views.caseload_view, name="caseload"),
    path("inbox/", dashboard_views.inbox, name="inbox"),
    path("team/", dashboard_views.team_statistics, name="team_statistics"),
    path("overview/", dashboard_views.overview, name="overview"),
    path("supervision/", supervision_views.supervision_index, name="supervision_index"),
    path("supervision/<int:pk>/", supervision_views.supervision, name="supervision"),
    path("flags/<int:pk>/reflection/", feedback_views.flag_reflection, name="flag_reflection"),
    path(
        "flags/<int:pk>/<str:action>/",
        dashboard_views.flag_action,
        name="flag_action",
    ),
    path("settings/", settings_views.organization_settings, name="organization_settings"),
    path("expected-response/", expected_views.expected_response, name="expected_response"),
    path("expected-response/fit/", expected_views.expected_fit, name="expected_fit"),
    path("expected-response/upload/", expected_views.expected_upload, name="expected_upload"),
    path(
        "expected-response/<int:version>.json",
        expected_views.expected_download,
        name="expected_download",
    ),
    path("research/alliance-outcome/", analysis_views.alliance_outcome, name="alliance_outcome"),
    path(
        "research/alliance-outcome/teams/<int:team_pk>/",
        analysis_views.alliance_outcome,
        name="alliance_outcome_team",
    ),
    path("case-sets/", case_views.case_set_list, name="case_set_list"),
    path("case-sets/new/", case_views.case_set_new, name="case_set_new"),
    path("case-sets/<int:pk>/", case_views.case_set_detail, name="case_set_detail"),
    path("case-sets/<int:pk>.pdf", case_views.case_set_pdf, name="case_set_pdf"),
    path("trainings/", training_views.training_list, name="training_list"),
    path("trainings/new/", training_views.training_new, name="training_new"),
    path("trainings/<int:pk>/edit/", training_views.training_edit, name="training_edit"),
    path(
        "trainings/<int:pk>/evaluation/",
        training_views.training_evaluation,
        name="training_evaluation",
    ),
    path("exports/", dashboard_views.export_list, name="exports"),
    # Before the tabular exports, whose pattern would take it.
    path("exports/fhir.ndjson", fhir_views.organization_fhir, name="fhir_export"),
    path("exports/<str:dataset>.<str:fmt>", dashboard_views.export, name="export"),
    path("research/export/", research_export_views.research_export_page, name="research_export"),
    path(
        "research/export.zip",
        research_export_views.research_export_download,
        name="research_export_download",
    ),
    path("imports/paper/", import_views.paper_import, name="paper_import"),
    path(
        "imports/paper/template.csv",
        import_views.paper_import_template,
        name="paper_import_template",
    ),
    path("imports/fhir/", fhir_views.fhir_import, name="fhir_import"),
    # Staff and teams, for organisation admins
    path("staff/", staff_views.staff_list, name="staff_list"),
    path("staff/invite/", invitation_views.invite, name="staff_invite"),
    path(
        "staff/invitations/<int:pk>/resend/",
        invitation_views.invitation_resend,
        name="invitation_resend",
    ),
    path(
        "staff/invitations/<int:pk>/withdraw/",
        invitation_views.invitation_withdraw,
        name="invitation_withdraw",
    ),
    path("staff/<int:pk>/", staff_views.staff_edit, name="staff_edit"),
    path("staff/<int:pk>/active/", staff_views.staff_active, name="staff_active"),
    path("teams/", staff_views.team_list, name="team_list"),
    path("teams/<int:pk>/", staff_views.team_edit, name="team_edit"),
    path("teams/<int:pk>/merge/", staff_views.team_merge, name="team_merge"),
    # Therapist
    path("clients/new/", clinic_views.client_new, name="client_new"),
    path("clients/<int:pk>/", client_views.client_detail, name="client_detail"),
    path("clients/<int:pk>/edit/", clinic_views.client_edit, name="client_edit"),
    path("clients/<int:pk>/active/", clinic_views.client_active, name="client_active"),
    path(
        "clients/<int:pk>/hand-over/",
        handover_views.client_hand_over_view,
        name="client_hand_over",
    ),
    path("episodes/<int:pk>/close/", client_views.episode_close_view, name="episode_close"),
    path("clients/<int:pk>/data.json", client_views.client_export, name="client_export"),
    path("clients/<int:pk>/fhir.json", fhir_views.client_fhir, name="client_fhir"),
    path("clients/<int:pk>/delete/", client_views.client_delete_view, name="client_delete"),
    path("clients/<int:pk>/sessions/today/", clinic_views.session_start, name="session_start"),
    path("sessions/<int:pk>/hand-over/", feedback_views.hand_over, name="hand_over"),
    path("sessions/<int:pk>/links/", feedback_views.link_create, name="link_create"),
    path("links/<int:pk>/", feedback_views.link_detail, name="link_detail"),
    path("clients/<int:pk>/contact/", contact_views.client_contact, name="client_contact"),
    path("sessions/<int:pk>/link-emails/", link_email_views.link_emails, name="link_emails"),
    path(
        "link-emails/<int:pk>/cancel/",
        link_email_views.link_email_cancel_view,
        name="link_email_cancel",
    ),
    path("ratings/<int:pk>/", feedback_views.rating_result, name="rating_result"),
    # Client mode on the tablet
    path("rate/", feedback_views.client_rate, name="client_rate"),
    path("rate/submit/<str:token>/", feedback_views.rate_submit, name="rate_submit"),
    path("rate/thanks/", feedback_views.rate_thanks, name="rate_thanks"),
    path("rate/unlock/", feedback_views.unlock, name="unlock"),
    path("rate/progress/", feedback_views.rate_progress, name="rate_progress"),
    # Remote links: no login, the form and nothing else
    path("r/<str:token>/", feedback_views.remote_rate, name="remote_rate"),
    path("r-done/", feedback_views.remote_thanks, name="remote_thanks"),
    path("audit/", include("alliance_app.audit.urls")),
    path("admin/", admin.site.urls),
]
