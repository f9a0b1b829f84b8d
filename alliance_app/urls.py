from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import path
from django.utils.translation import gettext_lazy as _

from alliance_app.accounts import views as accounts_views
from alliance_app.accounts.forms import LoginForm

admin.site.site_header = _("Alliance administration")
admin.site.site_title = _("Alliance")

urlpatterns = [
    path("", accounts_views.home, name="home"),
    path(
        "login/",
        auth_views.LoginView.as_view(
            authentication_form=LoginForm, redirect_authenticated_user=True
        ),
        name="login",
    ),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("healthz", accounts_views.healthz, name="healthz"),
    path("admin/", admin.site.urls),
]
