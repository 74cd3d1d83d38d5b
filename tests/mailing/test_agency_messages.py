"""The agency's messages: filtered by subaccount, status, dates and tag, sorted by whitelisted columns,
counted only as far as it is cheap, and exported as streamed CSV; and the drill-down's sending partial."""

import csv
import io
from datetime import timedelta

import pytest
from django.db import connection
from django.http import StreamingHttpResponse
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from accounts.models import Membership
from mailing import selectors
from mailing.models import ApiKey, Message, SenderDomain
from tests.conftest import requires_postgres
from tests.factories import MasterFactory, MembershipFactory, SubaccountFactory, subaccount_with_owner

pytestmark = pytest.mark.django_db


def _message(account, **fields):
    defaults = {"from_email": "shop@example.test", "to_email": "client@example.test", "subject": "Hello"}
    return Message.objects.create(account=account, **(defaults | fields))


def _staff(client, master, role=Membership.Role.VIEWER):
    client.force_login(MembershipFactory(account=master, role=role).user)
    return client


def _recipients(response) -> list[str]:
    return [message.to_email for message in response.context["page"].object_list]


def _csv(response) -> list[list[str]]:
    assert isinstance(response, StreamingHttpResponse)
    return list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))


@pytest.fixture
def agency(client):
    master = MasterFactory()
    acme = SubaccountFactory(parent=master, public_id="acme", name="Acme")
    bolt = SubaccountFactory(parent=master, public_id="bolt", name="Bolt")
    _message(acme, to_email="ana@example.test", status=Message.Status.SENT, tags=["order"])
    _message(acme, to_email="ben@example.test", status=Message.Status.FAILED)
    _message(bolt, to_email="cy@example.test", status=Message.Status.SENT, tags=["order"])
    _message(SubaccountFactory(public_id="acme"), to_email="stranger@example.test")  # another agency's "acme"
    _staff(client, master)
    return {"master": master, "acme": acme, "bolt": bolt}


def test_the_agency_filters_by_subaccount_status_and_tag(client, agency):
    url = reverse("mailing:message_list")
    assert sorted(_recipients(client.get(url, {"subaccount": "acme"}))) == [
        "ana@example.test",
        "ben@example.test",
    ]
    assert _recipients(client.get(url, {"subaccount": "acme", "status": "failed"})) == ["ben@example.test"]
    assert sorted(_recipients(client.get(url, {"tag": "order"}))) == ["ana@example.test", "cy@example.test"]
    assert _recipients(client.get(url, {"subaccount": "nobody"})) == []


def test_another_agencys_subaccount_id_finds_nothing_of_theirs(client, agency):
    found = _recipients(client.get(reverse("mailing:message_list"), {"subaccount": "acme"}))
    assert "stranger@example.test" not in found


def test_a_subaccount_cannot_use_the_subaccount_filter_to_see_a_sibling(client):
    sub, owner = subaccount_with_owner()
    sibling = SubaccountFactory(parent=sub.parent, public_id="sibling")
    _message(sub, to_email="mine@example.test")
    _message(sibling, to_email="theirs@example.test")
    client.force_login(owner)
    found = _recipients(client.get(reverse("mailing:message_list"), {"subaccount": "sibling"}))
    assert found == ["mine@example.test"]


def test_the_date_range_filters_and_a_backwards_range_is_explained_and_ignored(client, agency):
    old = _message(agency["acme"], to_email="old@example.test")
    Message.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=10))
    url = reverse("mailing:message_list")
    today = timezone.now().date()
    recent = _recipients(client.get(url, {"date_from": (today - timedelta(days=1)).isoformat()}))
    assert "old@example.test" not in recent and len(recent) == 3
    backwards = client.get(
        url, {"date_from": today.isoformat(), "date_to": (today - timedelta(days=20)).isoformat()}
    )
    assert "The first day must come before the last" in backwards.content.decode()
    assert len(_recipients(backwards)) == 4
    garbage = client.get(url, {"date_to": "not-a-date"})
    assert "Not a date" in garbage.content.decode() and len(_recipients(garbage)) == 4


@pytest.mark.parametrize(
    "sort, expected",
    [
        ("recipient", ["ana@example.test", "ben@example.test", "cy@example.test"]),
        ("-recipient", ["cy@example.test", "ben@example.test", "ana@example.test"]),
        (
            "subaccount",
            ["ben@example.test", "ana@example.test", "cy@example.test"],
        ),  # Acme (newest first), Bolt
        ("-subaccount", ["cy@example.test", "ben@example.test", "ana@example.test"]),
        ("created", ["ana@example.test", "ben@example.test", "cy@example.test"]),
        ("-created", ["cy@example.test", "ben@example.test", "ana@example.test"]),
        ("status", ["ben@example.test", "cy@example.test", "ana@example.test"]),  # failed, then sent
    ],
)
def test_whitelisted_sorts(client, agency, sort, expected):
    assert _recipients(client.get(reverse("mailing:message_list"), {"sort": sort})) == expected


@pytest.mark.parametrize("sort", ["to_email", "account__owner__password", "-id; DROP TABLE x", "html", ""])
def test_a_sort_outside_the_whitelist_is_ignored(client, agency, sort):
    response = client.get(reverse("mailing:message_list"), {"sort": sort})
    assert response.status_code == 200
    assert response.context["filters"].sort == "-created"
    assert _recipients(response) == ["cy@example.test", "ben@example.test", "ana@example.test"]


def test_the_column_heads_sort_and_say_which_way(client, agency):
    html = client.get(
        reverse("mailing:message_list"), {"sort": "recipient", "subaccount": "acme"}
    ).content.decode()
    assert 'aria-sort="ascending"><a href="/messages/?sort=-recipient&amp;subaccount=acme"' in html


def test_pagination_keeps_the_filters_and_the_sort(client, agency):
    for n in range(55):
        _message(agency["acme"], to_email=f"r{n:02}@example.test", tags=["bulk"])
    html = client.get(
        reverse("mailing:message_list"), {"subaccount": "acme", "tag": "bulk", "sort": "recipient"}
    ).content.decode()
    assert 'href="/messages/?subaccount=acme&amp;tag=bulk&amp;sort=recipient&amp;page=2"' in html
    second = client.get(
        reverse("mailing:message_list"), {"subaccount": "acme", "tag": "bulk", "sort": "recipient", "page": 2}
    )
    assert _recipients(second) == [f"r{n:02}@example.test" for n in range(50, 55)]


def test_the_total_is_exact_when_small(client, agency):
    response = client.get(reverse("mailing:message_list"), {"subaccount": "acme"})
    assert response.context["total"] == selectors.Total(count=2, exact=True)
    assert "2 messages" in response.content.decode()


def test_past_the_cap_the_total_is_only_more_than_or_about(client, agency, monkeypatch):
    monkeypatch.setattr(selectors, "TOTAL_CAP", 2)
    monkeypatch.setattr(selectors.total_of, "__kwdefaults__", {"cap": 2})
    response = client.get(reverse("mailing:message_list"))
    total = response.context["total"]
    assert not total.exact and total.count == 2
    html = response.content.decode()
    assert ("More than 2 messages" in html) or (f"About {total.estimate}" in html)


@requires_postgres()
def test_on_postgresql_a_large_total_is_the_planners_estimate_labelled_about(agency):
    sub = agency["acme"]
    Message.objects.bulk_create(
        [
            Message(account=sub, from_email="a@example.test", to_email=f"x{n}@example.test")
            for n in range(12_000)
        ]
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE mailing_message, accounts_account")
    total = selectors.total_of(Message.objects.for_account(sub))
    assert not total.exact and total.count == selectors.TOTAL_CAP
    assert total.estimate is not None and 9_000 < total.estimate < 20_000
    # the agency's semi-join is estimated loosely; an estimate under the cap is never shown
    agency_total = selectors.total_of(Message.objects.for_account(agency["master"]))
    assert not agency_total.exact and (agency_total.estimate is None or agency_total.estimate > 10_000)


def test_the_csv_export_is_the_filtered_sorted_list_streamed(client, agency):
    response = client.get(
        reverse("mailing:message_export"), {"tag": "order", "sort": "recipient", "page": "3"}
    )
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith(
        f'attachment; filename="{agency["master"].public_id}-messages-'
    )
    rows = _csv(response)
    assert rows[0] == ["created_at", "message_id", "subaccount_id", "account", "from_email", "to_email", "subject",
                       "status", "reason", "tags"]  # fmt: skip
    assert [(row[2], row[5], row[7], row[9]) for row in rows[1:]] == [
        ("acme", "ana@example.test", "sent", "order"),
        ("bolt", "cy@example.test", "sent", "order"),
    ]


def test_the_csv_export_neutralises_formulas(client, agency):
    _message(agency["bolt"], to_email="evil@example.test", subject='=HYPERLINK("http://evil","x")',
             tags=["-2+3", "@cmd"])  # fmt: skip
    rows = _csv(client.get(reverse("mailing:message_export"), {"recipient": "evil@"}))
    assert rows[1][6] == '\'=HYPERLINK("http://evil","x")'
    assert rows[1][9] == "'-2+3, @cmd"


def test_the_csv_export_is_tenant_scoped(client, agency):
    _staff(client, MasterFactory(), Membership.Role.ADMIN)
    assert _csv(client.get(reverse("mailing:message_export")))[1:] == []
    sub, owner = subaccount_with_owner(agency["master"])
    _message(sub, to_email="own@example.test")
    client.force_login(owner)
    rows = _csv(client.get(reverse("mailing:message_export")))
    assert [row[5] for row in rows[1:]] == ["own@example.test"]


def test_the_csv_export_reads_in_chunks(agency):
    lines = list(selectors.messages_csv(agency["master"], selectors.MessageFilters(), chunk_size=1))
    assert len(lines) == 4 and lines[0].startswith("created_at,")


# --- the drill-down's sending partial -----------------------------------------------------------------


def test_the_sending_partial_shows_messages_keys_and_domains_read_only(client, agency):
    acme = agency["acme"]
    ApiKey.objects.create(account=acme, label="Shop live", prefix="md-abc", key_hash="h" * 64)
    SenderDomain.objects.create(account=acme, domain="mail.acme.test", token="t")
    shared = SenderDomain.objects.create(account=agency["master"], domain="agency.test", token="t",
                                         verified_at=timezone.now())  # fmt: skip
    shared.shared_with.add(acme)
    SenderDomain.objects.create(account=agency["bolt"], domain="bolt.test", token="t")
    html = client.get(reverse("mailing:subaccount_sending", args=[acme.pk])).content.decode()
    assert "ana@example.test" in html and "cy@example.test" not in html
    assert "Shop live" in html and "md-abc" in html
    assert "mail.acme.test" in html and "agency.test" in html and "bolt.test" not in html
    assert "<form" not in html and "<html" not in html
    assert "/messages/?subaccount=acme" in html


def test_the_sending_partial_of_another_agencys_subaccount_is_a_404(client, agency):
    theirs = SubaccountFactory()
    assert client.get(reverse("mailing:subaccount_sending", args=[theirs.pk])).status_code == 404


def test_a_subaccount_owner_cannot_load_the_sending_partial(client):
    sub, owner = subaccount_with_owner()
    client.force_login(owner)
    assert client.get(reverse("mailing:subaccount_sending", args=[sub.pk])).status_code == 404


def test_the_sending_partial_costs_the_same_queries_for_few_and_many(client, agency):
    acme = agency["acme"]
    url = reverse("mailing:subaccount_sending", args=[acme.pk])
    client.get(url)
    with CaptureQueriesContext(connection) as few:
        client.get(url)
    for n in range(20):
        _message(acme, to_email=f"m{n}@example.test")
        ApiKey.objects.create(account=acme, label=f"k{n}", prefix=f"md-{n}", key_hash=f"{n:064d}")
        SenderDomain.objects.create(account=acme, domain=f"d{n}.test", token="t")
    with CaptureQueriesContext(connection) as many:
        client.get(url)
    assert len(few) == len(many)


def test_the_sort_menu_offers_exactly_the_whitelisted_sorts():
    from mailing.views import SORT_LABELS

    assert set(SORT_LABELS) == set(selectors.MESSAGE_SORTS)
