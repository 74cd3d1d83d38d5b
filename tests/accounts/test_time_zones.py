"""Each person sees dates in their own zone, named; UTC until they choose one."""

from datetime import UTC, datetime

import pytest
from django.urls import reverse

from accounts import people
from accounts.errors import ValidationError
from accounts.models import AuditEvent
from tests.factories import MembershipFactory, subaccount_with_owner

pytestmark = pytest.mark.django_db


def _activity_with_one_event_at(client, when: datetime, time_zone: str) -> str:
    membership = MembershipFactory()
    user = membership.user
    user.time_zone = time_zone
    user.save()
    AuditEvent.objects.create(account=membership.account, master=membership.account, action="brand.changed",
                              actor_label="someone", created_at=when)  # fmt: skip
    client.force_login(user)
    return client.get(reverse("accounts:activity")).content.decode()


def test_a_user_in_prague_sees_local_time_with_the_zone_named(client):
    page = _activity_with_one_event_at(client, datetime(2026, 1, 15, 9, 30, tzinfo=UTC), "Europe/Prague")
    assert "15 Jan 2026, 10:30 CET" in page
    assert 'title="Europe/Prague"' in page


def test_summer_time_is_applied(client):
    page = _activity_with_one_event_at(client, datetime(2026, 7, 15, 9, 30, tzinfo=UTC), "Europe/Prague")
    assert "15 Jul 2026, 11:30 CEST" in page


def test_utc_by_default(client):
    page = _activity_with_one_event_at(client, datetime(2026, 1, 15, 9, 30, tzinfo=UTC), "UTC")
    assert "15 Jan 2026, 09:30 UTC" in page


def test_the_settings_page_saves_the_zone_and_audits_it(client):
    _sub, owner = subaccount_with_owner()
    client.force_login(owner)
    response = client.post(reverse("accounts:profile"), {"full_name": "Ann", "time_zone": "Europe/Prague"})
    assert response.status_code == 302
    owner.refresh_from_db()
    assert owner.time_zone == "Europe/Prague"
    assert AuditEvent.objects.get(action="profile.changed").after == {
        "full_name": "Ann",
        "time_zone": "Europe/Prague",
    }
    assert "Dates are shown in Europe/Prague" in client.get(reverse("accounts:profile")).content.decode()


@pytest.mark.parametrize("zone", ["Mars/Olympus", "", "../../etc/passwd", "europe/prague"])
def test_a_bad_zone_is_refused(client, zone):
    _sub, owner = subaccount_with_owner()
    with pytest.raises(ValidationError):
        people.update_profile(user=owner, full_name="", time_zone=zone)
    client.force_login(owner)
    response = client.post(reverse("accounts:profile"), {"full_name": "", "time_zone": zone})
    assert response.status_code == 400 and 'id="id_time_zone_error"' in response.content.decode()
    owner.refresh_from_db()
    assert owner.time_zone == "UTC"


def test_the_activity_filter_means_days_in_the_readers_zone(client):
    # given an event at 23:30 UTC on 14 January: already 15 January in Prague
    membership = MembershipFactory()
    membership.user.time_zone = "Europe/Prague"
    membership.user.save()
    AuditEvent.objects.create(account=membership.account, master=membership.account, action="brand.changed",
                              actor_label="late@night.test", created_at=datetime(2026, 1, 14, 23, 30, tzinfo=UTC))  # fmt: skip
    client.force_login(membership.user)
    # when the reader asks for 15 January, then it is there; for 14 January, it is not
    on_15th = client.get(reverse("accounts:activity"), {"date_from": "2026-01-15", "date_to": "2026-01-15"})
    on_14th = client.get(reverse("accounts:activity"), {"date_from": "2026-01-14", "date_to": "2026-01-14"})
    assert "late@night.test" in on_15th.content.decode().split("<tbody>")[-1]
    assert "15 Jan 2026, 00:30 CET" in on_15th.content.decode()
    assert "15 Jan 2026, 00:30" not in on_14th.content.decode()


@pytest.mark.parametrize("page", ["mailing:message_list", "mailing:suppression_list"])
def test_the_message_and_suppression_filters_mean_days_in_the_readers_zone(client, page):
    from mailing.models import Message, Suppression

    # given a message and a suppression at 23:30 UTC on 14 January: already 15 January in Prague
    sub, owner = subaccount_with_owner()
    owner.time_zone = "Europe/Prague"
    owner.save()
    late = datetime(2026, 1, 14, 23, 30, tzinfo=UTC)
    message = Message.objects.create(account=sub, from_email="a@shop.test", to_email="late@night.test")
    Message.objects.filter(pk=message.pk).update(created_at=late)  # the field is auto_now_add
    Suppression.objects.create(account=sub, email="late@night.test", reason="custom", created_at=late)
    client.force_login(owner)
    # when the reader asks for 15 January, then it is there; for 14 January, it is not
    on_15th = client.get(reverse(page), {"date_from": "2026-01-15", "date_to": "2026-01-15"}).content.decode()
    on_14th = client.get(reverse(page), {"date_from": "2026-01-14", "date_to": "2026-01-14"}).content.decode()
    assert "late@night.test" in on_15th
    assert "late@night.test" not in on_14th
