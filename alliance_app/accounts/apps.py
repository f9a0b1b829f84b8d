from django.apps import AppConfig
from django.db.backends.signals import connection_created
from django.utils.translation import gettext_lazy as _


class AccountsConfig(AppConfig):
    name = "alliance_app.accounts"
    label = "accounts"
    verbose_name = _("Accounts and organisations")

    def ready(self) -> None:
        from . import data_version

        connection_created.connect(data_version.install, dispatch_uid="alliance_data_version")
