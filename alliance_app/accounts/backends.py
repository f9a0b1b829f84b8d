"""Sign-in by username and password, loading the user's membership with the user."""

from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend


class MembershipBackend(ModelBackend):
    """Django's model backend; a signed-in user comes with their membership, organisation and
    team in the same query, since nearly every page asks for them (`access.request_membership`).
    """

    def get_user(self, user_id):
        users = get_user_model()._default_manager.select_related(
            "membership__organization", "membership__team"
        )
        try:
            user = users.get(pk=user_id)
        except users.model.DoesNotExist:
            return None
        return user if self.user_can_authenticate(user) else None
