"""The per-account defaults for open and click tracking, set by the agency where archiving is set."""

import pytest
from django.urls import reverse

from accounts import lifecycle
from accounts.errors import PermissionDenied
from accounts.models import Account, AuditEvent, Membership
from tests.factories import MembershipFactory, SubaccountFactory

pytestmark = pytest.mark.django_db


def test_an_admin_turns_tracking_on_from_the_subaccount_page(client):
    sub = SubaccountFactory()
    admin = MembershipFactory(account=sub.parent, role=Membership.Role.ADMIN).user
    client.force_login(admin)
    page = client.get(reverse("accounts:subaccount_detail", args=[sub.pk])).content.decode()
    assert "Open tracking: turn on" in page and "Click tracking: turn on" in page
    response = client.post(reverse("accounts:subaccount_open_tracking_on", args=[sub.pk]))
    assert response.status_code == 302
    sub.refresh_from_db()
    assert (sub.track_opens, sub.track_clicks) == (True, False)
    event = AuditEvent.objects.get(action="tracking.opens.enabled")
    assert (event.before, event.after) == ({"track_opens": False}, {"track_opens": True})
    client.post(reverse("accounts:subaccount_click_tracking_on", args=[sub.pk]))
    client.post(reverse("accounts:subaccount_open_tracking_off", args=[sub.pk]))
    sub.refresh_from_db()
    assert (sub.track_opens, sub.track_clicks) == (False, True)


def test_a_viewer_may_not_and_another_agency_gets_a_404(client):
    sub = SubaccountFactory()
    viewer = MembershipFactory(account=sub.parent, role=Membership.Role.VIEWER).user
    with pytest.raises(PermissionDenied):
        lifecycle.set_tracking(
            actor=viewer, master=sub.parent, subaccount_id=sub.pk, what="opens", enabled=True
        )
    stranger = MembershipFactory(account=SubaccountFactory().parent, role=Membership.Role.ADMIN).user
    client.force_login(stranger)
    assert client.post(reverse("accounts:subaccount_click_tracking_on", args=[sub.pk])).status_code == 404
    with pytest.raises(Account.DoesNotExist):
        lifecycle.set_tracking(
            actor=stranger,
            master=stranger.membership.account,
            subaccount_id=sub.pk,
            what="opens",
            enabled=True,
        )
    sub.refresh_from_db()
    assert (sub.track_opens, sub.track_clicks) == (False, False)
    assert not AuditEvent.objects.filter(action__startswith="tracking.").exists()
