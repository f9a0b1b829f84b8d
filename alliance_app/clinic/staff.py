"""Staff and teams of an organisation, kept by its admins: who works here in which role and team,
who is active, and the teams themselves. In the clinic layer because deactivating a colleague
depends on their clients: nobody leaves while clients are still theirs."""

from dataclasses import dataclass
from enum import StrEnum
from importlib import import_module

from django.conf import settings
from django.contrib.sessions.models import Session
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Count, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from alliance_app.accounts.models import Membership, Organization, Role, Team, User

from .models import Client, Episode


class StaffStatus(StrEnum):
    ACTIVE = "active"
    INVITED = "invited"
    INVITATION_EXPIRED = "expired"
    INVITATION_WITHDRAWN = "withdrawn"
    DEACTIVATED = "deactivated"


STATUS_LABELS = {
    StaffStatus.ACTIVE: gettext_lazy("Active"),
    StaffStatus.INVITED: gettext_lazy("Invited"),
    StaffStatus.INVITATION_EXPIRED: gettext_lazy("Invitation expired"),
    StaffStatus.INVITATION_WITHDRAWN: gettext_lazy("Invitation withdrawn"),
    StaffStatus.DEACTIVATED: gettext_lazy("Deactivated"),
}


def staff_status(user: User, now=None) -> StaffStatus:
    """Where a colleague stands. An invited colleague is inactive until they set a password."""
    if user.is_active:
        return StaffStatus.ACTIVE
    invitation = getattr(user, "invitation", None)
    if invitation is None or invitation.accepted_at is not None:
        return StaffStatus.DEACTIVATED
    if invitation.withdrawn_at is not None:
        return StaffStatus.INVITATION_WITHDRAWN
    if invitation.is_open(now):
        return StaffStatus.INVITED
    return StaffStatus.INVITATION_EXPIRED


def staff_of(organization: Organization) -> QuerySet[User]:
    """Every member of the organisation for the staff page, with their membership, team,
    invitation and count of active clients in one query, and their supervised teams in one more,
    however many they are."""
    return (
        User.objects.filter(membership__organization=organization)
        .select_related("membership__team", "invitation")
        .prefetch_related("membership__supervised_teams")
        .annotate(active_clients=_count_of(Client.objects.filter(active=True), "primary_therapist"))
        .order_by("last_name", "first_name", "username")
    )


def _count_of(rows: QuerySet, key: str) -> Coalesce:
    """How many of `rows` point by `key` at each row of the outer query: counted per row shown
    rather than grouped over the whole organisation, so the database counts a page's 50 after
    sorting and cutting, not all before (and two counts never multiply through a join)."""
    counted = (
        rows.filter(**{key: OuterRef("pk")})
        .order_by()
        .values(key)
        .annotate(count=Count("pk"))
        .values("count")
    )
    return Coalesce(Subquery(counted), 0)


def get_member(organization: Organization, pk: int) -> User | None:
    """A member of `organisation`, with their membership; None for anyone else."""
    return (
        User.objects.filter(membership__organization=organization, pk=pk)
        .select_related("membership__team", "invitation")
        .first()
    )


def clients_holding(user: User) -> QuerySet[Client]:
    """The clients who keep `user` from leaving: those they are primary therapist of while the
    client is active, and those whose open episode is theirs."""
    open_episodes = Episode.objects.filter(therapist=user, closed__isnull=True)
    return Client.objects.filter(
        Q(primary_therapist=user, active=True) | Q(pk__in=open_episodes.values("client_id"))
    ).order_by("code")


@dataclass(frozen=True)
class StaffDetails:
    first_name: str
    last_name: str
    email: str
    role: str
    team: Team | None
    supervised_teams: list[Team]


def staff_update(*, member: User, details: StaffDetails) -> list[str]:
    """Change a colleague's name, e-mail, role and teams; what changed, in words for the audit
    trail (empty when nothing did). Supervised teams are kept for supervisors only. Bad input is
    refused with the reasons, and nothing is stored."""
    errors = staff_errors(member=member, details=details)
    if errors:
        raise ValidationError(errors)
    supervised = details.supervised_teams if details.role == Role.SUPERVISOR else []
    changed = _changes(member, details, supervised)
    if not changed:
        return []
    membership = member.membership
    with transaction.atomic():
        member.first_name, member.last_name = details.first_name, details.last_name
        member.email = details.email
        member.save(update_fields=["first_name", "last_name", "email"])
        membership.role, membership.team = details.role, details.team
        membership.save(update_fields=["role", "team"])
        membership.supervised_teams.set(supervised)
    return changed


def staff_errors(*, member: User, details: StaffDetails) -> dict[str, str]:
    """What is wrong with these details of a colleague, field by field; empty when nothing."""
    membership = member.membership
    organization = membership.organization
    errors = {}
    if details.role not in Role.values:
        errors["role"] = _("Choose one of the roles listed.")
    elif (
        membership.role == Role.ADMIN
        and details.role != Role.ADMIN
        and member.is_active
        and not _other_active_admins(organization, member).exists()
    ):
        errors["role"] = last_admin()
    teams = [details.team] if details.team is not None else []
    if any(team.organization_id != organization.pk for team in teams):
        errors["team"] = _("Choose one of this organisation's teams.")
    if any(team.organization_id != organization.pk for team in details.supervised_teams):
        errors["supervised_teams"] = _("Choose among this organisation's teams.")
    if (
        details.email
        and User.objects.filter(email__iexact=details.email).exclude(pk=member.pk).exists()
    ):
        errors["email"] = _("The address %(email)s is already used by another account.") % {
            "email": details.email
        }
    return errors


def last_admin() -> str:
    return _(
        "This is the organisation's last active admin: make someone else an admin first, so "
        "that somebody can still manage staff and settings."
    )


def _other_active_admins(organization: Organization, member: User) -> QuerySet[Membership]:
    return Membership.objects.filter(
        organization=organization, role=Role.ADMIN, user__is_active=True
    ).exclude(user=member)


def _changes(member: User, details: StaffDetails, supervised: list[Team]) -> list[str]:
    membership = member.membership
    changed = []
    if membership.role != details.role:
        changed.append(
            _("role %(old)s → %(new)s")
            % {"old": membership.get_role_display(), "new": Role(details.role).label}
        )
    if membership.team_id != (details.team.pk if details.team else None):
        changed.append(
            _("team %(old)s → %(new)s")
            % {"old": membership.team or "—", "new": details.team or "—"}
        )
    before = {team.pk for team in membership.supervised_teams.all()}
    if before != {team.pk for team in supervised}:
        changed.append(_("supervised teams"))
    if (member.first_name, member.last_name) != (details.first_name, details.last_name):
        changed.append(_("name"))
    if member.email != details.email:
        changed.append(_("e-mail address"))
    return changed


def staff_deactivate(*, member: User, by: User) -> None:
    """Deactivate a colleague: they can no longer log in, and their login sessions end now.
    Refused while clients are still theirs (`clients_holding`), and for oneself."""
    if member.pk == by.pk:
        raise ValidationError(_("You cannot deactivate yourself."))
    if clients_holding(member).exists():
        raise ValidationError(
            _("%(name)s still has clients: hand them to another therapist first.")
            % {"name": member}
        )
    member.is_active = False
    member.save(update_fields=["is_active"])
    login_sessions_end(member)


def staff_reactivate(*, member: User) -> None:
    """Let a deactivated colleague log in again. An invited colleague becomes active by
    accepting their invitation, not here."""
    if staff_status(member) != StaffStatus.DEACTIVATED:
        raise ValidationError(_("Only a deactivated colleague can be reactivated."))
    member.is_active = True
    member.save(update_fields=["is_active"])


def login_sessions_end(user: User) -> int:
    """End every login session of `user`; how many there were.

    Through the configured session engine, so that with Redis (`cached_db`) the cached copy goes
    too and not only the database row. Sessions are stored encoded: each unexpired one is read.
    """
    engine = import_module(settings.SESSION_ENGINE)
    ended = 0
    for key, data in Session.objects.filter(expire_date__gt=timezone.now()).values_list(
        "session_key", "session_data"
    ):
        store = engine.SessionStore()
        if store.decode(data).get("_auth_user_id") == str(user.pk):
            engine.SessionStore(session_key=key).delete()
            ended += 1
    return ended


def teams_of(organization: Organization) -> QuerySet[Team]:
    """The organisation's teams with their counts of members and of supervisors."""
    supervising = Membership.supervised_teams.through.objects.all()
    return (
        Team.objects.filter(organization=organization)
        .annotate(
            member_count=_count_of(Membership.objects.all(), "team"),
            supervisor_count=_count_of(supervising, "team"),
        )
        .order_by("name")
    )


def team_name_errors(*, organization: Organization, name: str, exclude_pk=None) -> dict:
    if not name:
        return {"name": _("Give the team a name.")}
    if (
        Team.objects.filter(organization=organization, name__iexact=name)
        .exclude(pk=exclude_pk)
        .exists()
    ):
        return {"name": team_name_taken(name)}
    return {}


def team_name_taken(name: str) -> str:
    return _("There is already a team called %(name)s here; choose another name.") % {"name": name}


def team_create(*, organization: Organization, name: str) -> Team:
    """A new team; a name already used in the organisation is refused in words."""
    return _team_save(Team(organization=organization), name.strip())


def team_rename(*, team: Team, name: str) -> Team:
    return _team_save(team, name.strip())


def _team_save(team: Team, name: str) -> Team:
    errors = team_name_errors(organization=team.organization, name=name, exclude_pk=team.pk)
    if errors:
        raise ValidationError(errors)
    team.name = name
    try:
        with transaction.atomic():
            team.save()
    except IntegrityError:
        # Another request took the name between the check and the save.
        raise ValidationError({"name": team_name_taken(name)}) from None
    return team


@dataclass(frozen=True)
class MergeCounts:
    members: int
    clients: int
    supervisors: int


def team_merge_counts(team: Team) -> MergeCounts:
    """What merging `team` into another moves: its members, their active clients (who follow
    their therapists), and the supervisors whose supervision moves."""
    members = Membership.objects.filter(team=team)
    return MergeCounts(
        members=members.count(),
        clients=Client.objects.filter(
            primary_therapist__in=members.values("user_id"), active=True
        ).count(),
        supervisors=team.supervisors.count(),
    )


def team_merge(*, team: Team, into: Team) -> MergeCounts:
    """Move `team`'s members into `into`, let its supervisors supervise `into`, and delete
    `team`, in one transaction. The dashboards read teams from memberships when they draw a
    page, so the members' figures count for `into` from then on."""
    if into.pk == team.pk or into.organization_id != team.organization_id:
        raise ValidationError({"into": _("Choose another team of this organisation.")})
    with transaction.atomic():
        # Locked so that nobody renames or merges either team meanwhile.
        list(Team.objects.select_for_update().filter(pk__in=[team.pk, into.pk]))
        counts = team_merge_counts(team)
        Membership.objects.filter(team=team).update(team=into)
        through = Membership.supervised_teams.through
        supervising = set(through.objects.filter(team=team).values_list("membership_id", flat=True))
        already = set(
            through.objects.filter(team=into, membership_id__in=supervising).values_list(
                "membership_id", flat=True
            )
        )
        through.objects.bulk_create(
            through(membership_id=pk, team=into) for pk in sorted(supervising - already)
        )
        team.delete()
    return counts
