"""The dashboard's 30-day chart and this month's widgets show what became of the mail (delivered,
bounced, complained about, rejected), read from the Usage counters and never from events or messages."""

import json
import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from accounts.models import Usage
from accounts.quota import hour_start
from accounts.selectors import daily_sent, outcomes_this_month
from tests.factories import MasterFactory, MembershipFactory, subaccount_with_owner

pytestmark = pytest.mark.django_db


def _hour(sub, hours_ago, **counts):
    Usage.objects.create(account=sub, billed_to=sub.parent, window=Usage.Window.HOUR,
                         start=hour_start(timezone.now()) - timedelta(hours=hours_ago), **counts)  # fmt: skip


def test_the_chart_series_come_from_usage_counters():
    sub, _ = subaccount_with_owner()
    _hour(sub, 0, sent=10, delivered=7, hard_bounced=1, soft_bounced=1, complained=1, rejected=2)
    _hour(sub, 1, sent=5, delivered=5)
    _hour(sub, 24 * 40, sent=100, delivered=100)  # outside the 30 days
    days = daily_sent(sub)
    assert len(days) == 30
    totals = {
        key: sum(day[key] for day in days)
        for key in ("sent", "delivered", "bounced", "complained", "rejected")
    }
    assert totals == {"sent": 15, "delivered": 12, "bounced": 2, "complained": 1, "rejected": 2}


def test_the_widgets_count_this_month_only_and_never_events(client):
    from mailing.models import Message, MessageEvent

    sub, owner = subaccount_with_owner()
    _hour(sub, 0, delivered=1234, hard_bounced=3, soft_bounced=2, complained=1, rejected=7, opens=40,
          unique_opens=30, clicks=9, unique_clicks=6, unsubs=2)  # fmt: skip
    # events without counters (what a page must not count)
    message = Message.objects.create(account=sub, from_email="a@shop.test", to_email="b@example.test")
    MessageEvent.objects.bulk_create(
        MessageEvent(message=message, account=sub, kind="hard_bounce") for _ in range(50)
    )
    assert outcomes_this_month(sub)["bounced"] == 5
    client.force_login(owner)
    page = client.get(reverse("accounts:dashboard")).content.decode()
    found = dict(re.findall(r"<dt>(\w+)</dt><dd>([\d,]+)</dd>", page))
    assert found == {"Delivered": "1,234", "Bounced": "5", "Complaints": "1", "Rejected": "7",
                     "Opened": "30", "Clicked": "6", "Unsubscribed": "2"}  # fmt: skip
    data = json.loads(
        re.search(r'<script id="daily-data" type="application/json">(.*?)</script>', page).group(1)
    )
    assert data[-1]["delivered"] == 1234 and data[-1]["bounced"] == 5
    assert (data[-1]["opened"], data[-1]["clicked"]) == (30, 6)  # the chart's lines


def test_the_master_sees_a_subaccounts_outcomes_on_its_page(client):
    master = MasterFactory()
    admin = MembershipFactory(account=master).user
    sub, _ = subaccount_with_owner(master)
    _hour(sub, 0, delivered=40, hard_bounced=2)
    client.force_login(admin)
    page = client.get(reverse("accounts:subaccount_detail", args=[sub.pk])).content.decode()
    assert "<dt>Delivered</dt><dd>40</dd>" in page and "<dt>Bounced</dt><dd>2</dd>" in page
