"""Handing a client to another therapist, with the summary rows that name the therapist."""

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from alliance_app.accounts.models import User
from alliance_app.clinic.models import Client, Episode
from alliance_app.clinic.services import not_a_therapist_here, therapist_may_treat_in

from . import rollups
from .models import Rupture


def client_hand_over(*, client: Client, therapist: User) -> Episode | None:
    """Make `therapist` the client's therapist, and their open episode's if there is one; that
    episode's summary rows and ruptures follow, so the team pages count its ratings for the new
    therapist. Closed episodes stay with whoever held them. Returns the open episode, if any.

    The previous therapist keeps seeing the client only through an earlier episode of theirs."""
    if not therapist_may_treat_in(client.organization, therapist):
        raise ValidationError({"therapist": not_a_therapist_here()})
    if client.primary_therapist_id == therapist.pk:
        raise ValidationError(
            {"therapist": _("%(code)s is already this therapist's client.") % {"code": client.code}}
        )
    with transaction.atomic():
        client.primary_therapist = therapist
        client.save(update_fields=["primary_therapist"])
        episode = (
            Episode.objects.select_for_update().filter(client=client, closed__isnull=True).first()
        )
        if episode is not None and episode.therapist_id != therapist.pk:
            episode.therapist = therapist
            episode.save(update_fields=["therapist"])
            rollups.rebuild(Episode.objects.filter(pk=episode.pk))
            Rupture.objects.filter(episode=episode).update(therapist=therapist)
    return episode
