from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class FeedbackConfig(AppConfig):
    name = "alliance_app.feedback"
    label = "feedback"
    verbose_name = _("Ratings")

    def ready(self) -> None:
        from . import reflections  # noqa: F401  (gives new organisations their options)
