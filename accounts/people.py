"""A person's own settings: their name and the time zone the dashboard shows their dates in."""

from __future__ import annotations

from django.db import transaction

from .audit import diff, record
from .errors import ValidationError
from .models import Membership, User
from .validation import clean_time_zone, is_storable


@transaction.atomic(durable=True)
def update_profile(*, user: User, full_name: str, time_zone: str, real_actor: User | None = None) -> User:
    """Change the person's own name and time zone. Raises ValidationError (an unknown zone)."""
    user = User.objects.select_for_update().get(pk=user.pk)
    full_name = " ".join((full_name or "").split())
    if len(full_name) > 150 or not is_storable(full_name):
        raise ValidationError("At most 150 characters, please.", field="full_name")
    before = {"full_name": user.full_name, "time_zone": user.time_zone}
    user.full_name, user.time_zone = full_name, clean_time_zone(time_zone)
    before, after = diff(before, {"full_name": user.full_name, "time_zone": user.time_zone})
    if not after:
        return user
    user.save(update_fields=list(after))
    membership = Membership.objects.select_related("account").filter(user=user).first()
    if membership is not None:  # the trail is an account's; an operator without one has none
        record(actor=user, real_actor=real_actor, account=membership.account, action="profile.changed",
               before=before, after=after)  # fmt: skip
    return user
