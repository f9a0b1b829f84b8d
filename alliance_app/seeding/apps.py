from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class SeedingConfig(AppConfig):
    """Demo and scale data: on top of every other app, because it uses them all."""

    name = "alliance_app.seeding"
    label = "seeding"
    verbose_name = _("Demo and scale data")
