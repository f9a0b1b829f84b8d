"""The choices on the therapist's reflection form, kept as data per organisation.

The built-in lists are our own words. The markers follow Safran & Muran's two kinds of rupture
(Safran & Muran 2000, Negotiating the Therapeutic Alliance): withdrawal, moving away from the
therapist or the work, and confrontation, moving against them. The strategies follow the
resolution strategies of the Rupture Resolution Rating System (Eubanks, Muran & Safran 2015, the
3RS manual), grouped as a clinician would say them. Each organisation starts with these options
(a data migration for those that existed, `options_ensure` for new ones) and may relabel, hide,
reorder or add to them in the admin.
"""

from django.db.models.signals import post_save
from django.dispatch import receiver
from django.utils.translation import gettext_lazy as _

from alliance_app.accounts.models import Organization

from .models import ReflectionOption, ReflectionOptionKind

NOTHING_YET = "nothing_yet"

BUILTIN = {
    ReflectionOptionKind.MARKER: (
        (
            "withdrawal",
            _("Withdrawal: the client moved away (went quiet, vague, agreed too easily)"),
        ),
        (
            "confrontation",
            _("Confrontation: the client moved against me or the work (complaint, criticism)"),
        ),
        ("both", _("Both")),
        ("not_sure", _("Not sure")),
    ),
    ReflectionOptionKind.STRATEGY: (
        ("clarify", _("Clarified a misunderstanding")),
        ("change_task", _("Changed the task or the goal")),
        ("rationale", _("Explained the rationale for the task or goal")),
        ("invite", _("Invited the client to talk about what happened between us")),
        ("own_part", _("Acknowledged my own part in it")),
        ("validate", _("Validated the client's reaction")),
        ("link_patterns", _("Linked it to wider patterns in the client's life")),
        (NOTHING_YET, _("Nothing yet")),
    ),
}
BUILTIN_LABELS = {
    (kind, code): label for kind, options in BUILTIN.items() for code, label in options
}


def option_label(option: ReflectionOption) -> str:
    return option.label or str(BUILTIN_LABELS.get((option.kind, option.code), option.code))


def options_ensure(organization_id: int, model=ReflectionOption) -> None:
    """Give an organisation the built-in options it lacks; its own changes are kept.

    `model` lets a data migration pass its historical model.
    """
    have = set(model.objects.filter(organization_id=organization_id).values_list("kind", "code"))
    model.objects.bulk_create(
        model(
            organization_id=organization_id,
            kind=kind,
            code=code,
            position=position,
            exclusive=code == NOTHING_YET,
        )
        for kind, options in BUILTIN.items()
        for position, (code, _label) in enumerate(options)
        if (kind, code) not in have
    )


def options_for(organization_id: int, kind: str):
    return ReflectionOption.objects.filter(
        organization_id=organization_id, kind=kind, active=True
    ).order_by("position", "pk")


@receiver(post_save, sender=Organization, dispatch_uid="feedback.reflection_options")
def _new_organization(sender, instance: Organization, created: bool, raw: bool, **kwargs) -> None:
    if created and not raw:
        options_ensure(instance.pk)
