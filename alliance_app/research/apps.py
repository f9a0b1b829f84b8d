from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ResearchConfig(AppConfig):
    """Training events and their evaluation, the de-identified research export, and the
    alliance-outcome analysis (DESIGN.md §5): built on the dashboards' figures and summary rows."""

    name = "alliance_app.research"
    label = "research"
    verbose_name = _("Training and research")
