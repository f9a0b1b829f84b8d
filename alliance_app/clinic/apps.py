from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ClinicConfig(AppConfig):
    name = "alliance_app.clinic"
    label = "clinic"
    verbose_name = _("Clients and sessions")
