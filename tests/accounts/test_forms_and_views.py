"""The master's pages: the Add subaccount form, the list (search, filter, sort, pages), the row and bulk
actions (htmx and plain), the activity and delete pages, and who may see what."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from accounts.lifecycle import create_subaccount, delete_subaccount, update_subaccount
from accounts.models import Account, AuditEvent, Membership, User
from accounts.views import PAGE_SIZE, ROW_ACTIONS
from tests.factories import MasterFactory, MembershipFactory, SubaccountFactory, subaccount_with_owner

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}


def _log_in(client, master: Account | None = None, role: str = Membership.Role.ADMIN) -> User:
    user = MembershipFactory(account=master or MasterFactory(), role=role).user
    client.force_login(user)
    return user


def _master_of(user: User) -> Account:
    return user.membership.account


# --- Add subaccount -----------------------------------------------------------------------------------

VALID = {
    "name": "Acme Shop",
    "contact_email": "owner@acme.test",
    "monthly_limit": "1000",
    "hourly_limit": "",
    "public_id": "",
    "notes": "",
}
ADD = reverse("accounts:subaccount_create")


def _add(client, **changes):
    return client.post(ADD, {**VALID, **changes})


def test_the_add_form_creates_a_subaccount_and_goes_back_to_its_row(client):
    master = _master_of(_log_in(client))
    response = _add(client)
    sub = Account.objects.subaccounts_of(master).get()
    assert response.status_code == 302
    assert response["Location"] == reverse("accounts:subaccount_list") + f"#sub-{sub.pk}"
    assert (sub.public_id, sub.monthly_limit, sub.hourly_limit) == ("acme-shop", 1000, None)


def test_the_add_page_has_a_title_and_labelled_fields(client):
    _log_in(client)
    page = client.get(ADD).content.decode()
    assert "<title>Add subaccount" in page
    for field in VALID:
        assert f'<label for="id_{field}"' in page


def test_a_duplicate_id_within_the_master_is_refused_beside_the_id_field(client):
    master = _master_of(_log_in(client))
    SubaccountFactory(parent=master, public_id="shop")
    response = _add(client, public_id="shop")
    assert response.status_code == 200
    assert response.context["form"].errors == {"public_id": ["A subaccount with id shop already exists"]}
    assert 'id="id_public_id_error"' in response.content.decode()
    assert Account.objects.subaccounts_of(master).count() == 1


def test_the_same_id_is_allowed_under_two_masters(client):
    SubaccountFactory(public_id="shop")
    master = _master_of(_log_in(client))
    assert _add(client, public_id="shop").status_code == 302
    assert Account.objects.subaccounts_of(master).get().public_id == "shop"


@pytest.mark.parametrize(
    "field, value",
    [
        ("contact_email", "not-an-email"),
        ("contact_email", ""),
        ("monthly_limit", "0"),
        ("monthly_limit", "-5"),
        ("monthly_limit", "lots"),
        ("monthly_limit", ""),
        ("hourly_limit", "0"),
        ("hourly_limit", "-1"),
        ("hourly_limit", "1.5"),
        ("name", ""),
        ("name", "n" * 256),
        ("public_id", "i" * 256),
        ("public_id", "has space"),
        ("public_id", "slash/id"),
        ("public_id", "ünicode"),
        ("public_id", "semi;colon"),
    ],
)
def test_bad_input_is_refused_beside_its_field(client, field, value):
    master = _master_of(_log_in(client))
    response = _add(client, **{field: value})
    assert response.status_code == 200
    assert list(response.context["form"].errors) == [field]
    assert f'id="id_{field}_error"' in response.content.decode()
    assert not Account.objects.subaccounts_of(master).exists()
    assert not AuditEvent.objects.exists()


def test_the_longest_allowed_name_and_id_are_accepted(client):
    master = _master_of(_log_in(client))
    assert _add(client, name="n" * 255, public_id="i" * 255).status_code == 302
    assert Account.objects.subaccounts_of(master).get().public_id == "i" * 255


def test_an_address_that_already_has_a_login_is_refused_beside_the_email(client):
    admin = _log_in(client)
    response = _add(client, contact_email=admin.email)
    assert list(response.context["form"].errors) == ["contact_email"]


def test_a_viewer_cannot_add_a_subaccount(client):
    master = _master_of(_log_in(client, role=Membership.Role.VIEWER))
    response = _add(client)
    assert response.status_code == 200
    assert b"Only an owner or admin" in response.content
    assert not Account.objects.subaccounts_of(master).exists()


# --- Edit details -------------------------------------------------------------------------------------


def test_edit_saves_changed_fields_only(client):
    master = _master_of(_log_in(client))
    sub, _owner = subaccount_with_owner(master, name="Acme", public_id="acme", monthly_limit=1000)
    data = {
        "name": "Acme",
        "contact_email": sub.contact_email,
        "monthly_limit": "10",
        "hourly_limit": "",
        "public_id": "acme",
        "notes": "",
    }
    response = client.post(reverse("accounts:subaccount_edit", args=[sub.pk]), data)
    assert response.status_code == 302
    sub.refresh_from_db()
    assert sub.monthly_limit == 10
    assert AuditEvent.objects.get().after == {"monthly_limit": 10}


def test_edit_locks_the_contact_email_once_the_owner_has_accepted(client):
    master = _master_of(_log_in(client))
    sub, owner = subaccount_with_owner(master, accepted=True, name="Acme", public_id="acme")
    data = {
        "name": "Acme",
        "contact_email": "hijacked@example.test",
        "monthly_limit": "10",
        "public_id": "acme",
    }
    client.post(reverse("accounts:subaccount_edit", args=[sub.pk]), data)
    owner.refresh_from_db()
    assert owner.email == sub.contact_email != "hijacked@example.test"
    page = client.get(reverse("accounts:subaccount_edit", args=[sub.pk])).content.decode()
    assert "only they can change their login" in page


def test_editing_a_closed_subaccount_says_why_not(client):
    master = _master_of(_log_in(client))
    sub = SubaccountFactory(parent=master, status=Account.Status.CLOSED, monthly_limit=1000)
    data = {
        "name": sub.name,
        "contact_email": sub.contact_email,
        "monthly_limit": "5",
        "public_id": sub.public_id,
    }
    response = client.post(reverse("accounts:subaccount_edit", args=[sub.pk]), data)
    assert b"Reopen it to change its details" in response.content
    sub.refresh_from_db()
    assert sub.monthly_limit == 1000


# --- the list -----------------------------------------------------------------------------------------

LIST = reverse("accounts:subaccount_list")


def _names(response) -> list[str]:
    return [sub.name for sub in response.context["page"].object_list]


@pytest.fixture
def three(client):
    master = _master_of(_log_in(client))
    return (
        SubaccountFactory(
            parent=master, name="Bravo Bakery", public_id="bakery", contact_email="b@bake.test"
        ),
        SubaccountFactory(
            parent=master,
            name="Alpha Shop",
            public_id="alpha",
            contact_email="shopkeeper@alpha.test",
            status=Account.Status.PAUSED,
            monthly_limit=5000,
        ),
        SubaccountFactory(
            parent=master,
            name="Charlie Cars",
            public_id="cars-x",
            contact_email="c@cars.test",
            status=Account.Status.CLOSED,
        ),
    )


@pytest.mark.parametrize(
    "query, expected",
    [
        ("bakery", ["Bravo Bakery"]),  # name and id
        ("ALPHA", ["Alpha Shop"]),  # any case
        ("cars-x", ["Charlie Cars"]),  # id
        ("shopkeeper@", ["Alpha Shop"]),  # contact email
        ("zzz", []),
    ],
)
def test_the_list_searches_name_id_and_contact_email(client, three, query, expected):
    response = client.get(LIST, {"q": query})
    assert _names(response) == expected
    if not expected:
        assert b"No subaccount matches" in response.content


def test_the_list_filters_by_status(client, three):
    assert _names(client.get(LIST, {"status": "paused"})) == ["Alpha Shop"]
    assert _names(client.get(LIST, {"status": "closed"})) == ["Charlie Cars"]
    assert _names(client.get(LIST, {"status": "nonsense"})) == ["Alpha Shop", "Bravo Bakery", "Charlie Cars"]


@pytest.mark.parametrize(
    "sort, expected",
    [
        ("name", ["Alpha Shop", "Bravo Bakery", "Charlie Cars"]),
        ("-name", ["Charlie Cars", "Bravo Bakery", "Alpha Shop"]),
        ("id", ["Alpha Shop", "Bravo Bakery", "Charlie Cars"]),
        ("status", ["Bravo Bakery", "Charlie Cars", "Alpha Shop"]),
        ("-created", ["Charlie Cars", "Alpha Shop", "Bravo Bakery"]),
        ("created", ["Bravo Bakery", "Alpha Shop", "Charlie Cars"]),
        ("-monthly_limit", ["Alpha Shop", "Bravo Bakery", "Charlie Cars"]),
        ("bogus", ["Alpha Shop", "Bravo Bakery", "Charlie Cars"]),
    ],
)
def test_the_list_sorts(client, three, sort, expected):
    assert _names(client.get(LIST, {"sort": sort})) == expected


def test_the_list_is_paginated_and_keeps_the_filters_in_its_links(client):
    master = _master_of(_log_in(client))
    for n in range(PAGE_SIZE + 5):
        SubaccountFactory(parent=master, name=f"Shop {n:02}")
    first = client.get(LIST, {"q": "shop"})
    assert len(_names(first)) == PAGE_SIZE
    assert "1–25 of 30" in first.content.decode()
    assert 'href="?q=shop&amp;page=2"' in first.content.decode()
    second = client.get(LIST, {"q": "shop", "page": 2})
    assert _names(second) == [f"Shop {n}" for n in range(25, 30)]
    assert _names(client.get(LIST, {"page": "999"})) == _names(second)  # past the end: the last page


def test_the_page_links_encode_what_the_user_typed(client):
    master = _master_of(_log_in(client))
    for n in range(PAGE_SIZE + 1):
        SubaccountFactory(parent=master, name=f"Shop {n:02}")
    content = client.get(LIST, {"status": "x&page=9", "sort": "name&page=9"}).content.decode()
    assert 'href="?status=x%26page%3D9&amp;sort=name%26page%3D9&amp;page=2"' in content


def test_the_list_has_an_empty_state(client):
    _log_in(client)
    assert b"No subaccounts yet" in client.get(LIST).content


def test_an_htmx_search_returns_only_the_table(client, three):
    response = client.get(LIST, {"q": "alpha"}, **HTMX)
    content = response.content.decode()
    assert content.lstrip().startswith('<div id="subaccount-table">')
    assert "<html" not in content
    assert "Alpha Shop" in content and "Bravo Bakery" not in content


def test_the_list_costs_the_same_number_of_queries_for_3_and_30_subaccounts(client):
    master = _master_of(_log_in(client))

    def queries_with(n: int) -> int:
        existing = Account.objects.subaccounts_of(master).count()
        for i in range(existing, n):
            subaccount_with_owner(master, accepted=bool(i % 2))
        with CaptureQueriesContext(connection) as captured:
            response = client.get(LIST)
        assert response.status_code == 200
        assert len(_names(response)) == min(n, PAGE_SIZE)
        return len(captured)

    assert queries_with(3) == queries_with(30)


# --- row actions --------------------------------------------------------------------------------------


def _action(name: str, sub: Account) -> str:
    return reverse(f"accounts:subaccount_{name}", args=[sub.pk])


def test_an_htmx_row_action_returns_the_row_in_its_new_state_and_the_messages_out_of_band(client):
    master = _master_of(_log_in(client))
    sub = SubaccountFactory(parent=master, name="Acme Shop")
    # when
    response = client.post(_action("pause", sub), **HTMX)
    # then
    content = response.content.decode()
    assert response.status_code == 200
    assert content.lstrip().startswith(f'<tr id="sub-{sub.pk}">')
    assert 'badge-paused">Paused<' in content
    assert "Resume sending" in content and "Pause sending" not in content
    assert '<div id="messages" aria-live="polite" hx-swap-oob="true">' in content
    assert "Acme Shop: sending paused." in content
    assert "<html" not in content
    sub.refresh_from_db()
    assert sub.status == Account.Status.PAUSED


def test_a_refused_htmx_row_action_explains_why_and_leaves_the_row_as_it_was(client):
    master = _master_of(_log_in(client))
    sub = SubaccountFactory(parent=master, name="Acme Shop", status=Account.Status.CLOSED)
    content = client.post(_action("pause", sub), **HTMX).content.decode()
    assert content.lstrip().startswith(f'<tr id="sub-{sub.pk}">')
    assert 'badge-closed">Closed<' in content
    assert "Acme Shop is closed, not active" in content
    assert 'role="alert"' in content
    assert not AuditEvent.objects.exists()


def test_a_plain_row_action_redirects_to_the_row(client):
    master = _master_of(_log_in(client))
    sub = SubaccountFactory(parent=master)
    response = client.post(_action("close", sub))
    assert response.status_code == 302
    assert response["Location"] == LIST + f"#sub-{sub.pk}"
    sub.refresh_from_db()
    assert sub.status == Account.Status.CLOSED


def test_a_row_action_from_the_detail_page_goes_back_there(client):
    master = _master_of(_log_in(client))
    sub = SubaccountFactory(parent=master)
    detail = reverse("accounts:subaccount_detail", args=[sub.pk])
    assert client.post(_action("pause", sub), {"from": "detail"})["Location"] == detail
    htmx = client.post(_action("resume", sub), {"from": "detail"}, **HTMX)
    assert htmx["HX-Redirect"] == detail


@pytest.mark.parametrize("action", list(ROW_ACTIONS))
def test_every_row_action_is_post_only(client, action):
    master = _master_of(_log_in(client))
    sub = SubaccountFactory(parent=master)
    assert client.get(_action(action, sub)).status_code == 405
    assert not AuditEvent.objects.exists()


@pytest.mark.parametrize(
    "action, status, accepted, audited",
    [
        ("pause", "active", True, "subaccount.paused"),
        ("resume", "paused", True, "subaccount.resumed"),
        ("close", "active", True, "subaccount.closed"),
        ("reopen", "closed", True, "subaccount.reopened"),
        ("resend_invite", "active", False, "invite.resent"),
        ("password_reset", "active", True, "password_reset.sent"),
        ("archiving_on", "active", True, "archiving.enabled"),
    ],
)
def test_every_row_action_does_its_job(client, action, status, accepted, audited):
    master = _master_of(_log_in(client))
    sub, _owner = subaccount_with_owner(master, accepted=accepted, status=status)
    response = client.post(_action(action, sub), **HTMX)
    assert response.status_code == 200
    assert 'class="flash flash-success"' in response.content.decode()
    assert AuditEvent.objects.get().action == audited


def test_the_archiving_off_action_turns_it_off(client):
    master = _master_of(_log_in(client))
    sub = SubaccountFactory(parent=master, archiving_enabled=True)
    client.post(_action("archiving_off", sub), **HTMX)
    sub.refresh_from_db()
    assert sub.archiving_enabled is False


def test_a_viewer_is_told_no_and_sees_no_buttons(client):
    master = _master_of(_log_in(client, role=Membership.Role.VIEWER))
    sub = SubaccountFactory(parent=master, name="Acme Shop")
    # when a viewer posts an action anyway
    content = client.post(_action("pause", sub), **HTMX).content.decode()
    # then
    assert "Only an owner or admin" in content
    assert "Pause sending" not in content
    assert 'name="selected"' not in content
    sub.refresh_from_db()
    assert sub.status == Account.Status.ACTIVE
    detail = client.get(reverse("accounts:subaccount_detail", args=[sub.pk])).content.decode()
    for label in ("Pause sending", "Close subaccount", "Edit details", "Log in as", "Delete"):
        assert label not in detail
    list_page = client.get(LIST).content.decode()
    assert "bulk-form" not in list_page and "Add subaccount" not in list_page
    response = client.post(
        reverse("accounts:subaccount_delete", args=[sub.pk]), {"confirm_name": "Acme Shop"}
    )
    assert b"Only an owner or admin" in response.content
    assert Account.objects.filter(pk=sub.pk).exists()


# --- bulk actions -------------------------------------------------------------------------------------

BULK = reverse("accounts:subaccount_bulk")


def _messages(response) -> list[str]:
    return [str(message) for message in response.context["messages"]]


def test_bulk_pause_does_what_it_can_and_reports_each_refusal(client):
    master = _master_of(_log_in(client))
    a = SubaccountFactory(parent=master, name="Alpha")
    b = SubaccountFactory(parent=master, name="Bravo", status=Account.Status.PAUSED)
    c = SubaccountFactory(parent=master, name="Charlie")
    # when
    response = client.post(BULK, {"action": "pause", "selected": [a.pk, b.pk, c.pk]}, follow=True)
    # then
    assert response.redirect_chain[-1][0] == LIST
    assert _messages(response) == [
        "Pause sending: done for 2 — Alpha, Charlie.",
        "Pause sending refused: Bravo is paused, not active: only an active subaccount can be paused.",
    ]
    assert set(Account.objects.subaccounts_of(master).values_list("status", flat=True)) == {"paused"}
    assert AuditEvent.objects.filter(action="subaccount.paused").count() == 2


def test_bulk_set_monthly_limit_for_all_matching_the_current_filter(client):
    master = _master_of(_log_in(client))
    shop1 = SubaccountFactory(parent=master, name="Shop One", monthly_limit=1000)
    shop2 = SubaccountFactory(
        parent=master, name="Shop Two", monthly_limit=1000, status=Account.Status.PAUSED
    )
    bakery = SubaccountFactory(parent=master, name="Bakery", monthly_limit=1000)
    # when
    response = client.post(
        BULK,
        {
            "action": "set_monthly_limit",
            "monthly_limit": "250",
            "all_matching": "on",
            "q": "shop",
            "status": "",
        },
        follow=True,
    )
    # then
    assert _messages(response) == ["Set monthly limit: done for 2 — Shop One, Shop Two."]
    for sub, limit in ((shop1, 250), (shop2, 250), (bakery, 1000)):
        sub.refresh_from_db()
        assert sub.monthly_limit == limit


def test_bulk_all_matching_respects_the_status_filter(client):
    master = _master_of(_log_in(client))
    paused = SubaccountFactory(parent=master, status=Account.Status.PAUSED)
    active = SubaccountFactory(parent=master)
    client.post(BULK, {"action": "resume", "all_matching": "on", "q": "", "status": "paused"})
    paused.refresh_from_db()
    assert paused.status == Account.Status.ACTIVE
    assert AuditEvent.objects.get().account == paused
    assert active.status == Account.Status.ACTIVE


def test_bulk_refuses_another_masters_subaccount_and_changes_nothing_of_theirs(client):
    master = _master_of(_log_in(client))
    mine = SubaccountFactory(parent=master, name="Mine", monthly_limit=1000)
    theirs = SubaccountFactory(name="Theirs", monthly_limit=1000)
    response = client.post(
        BULK,
        {"action": "set_monthly_limit", "monthly_limit": "5", "selected": [mine.pk, theirs.pk]},
        follow=True,
    )
    assert _messages(response) == [
        "Set monthly limit: done for 1 — Mine.",
        f"Set monthly limit refused: #{theirs.pk}: no such subaccount",
    ]
    theirs.refresh_from_db()
    assert theirs.monthly_limit == 1000
    assert not AuditEvent.objects.filter(account=theirs).exists()


@pytest.mark.parametrize(
    "data, message",
    [
        ({"action": "pause"}, "Select at least one subaccount."),
        ({"action": "set_monthly_limit", "selected": ["1"]}, "Enter the new monthly limit."),
        (
            {"action": "set_monthly_limit", "selected": ["1"], "monthly_limit": "0"},
            "greater than or equal to 1",
        ),
        ({"action": "delete_everything", "selected": ["1"]}, "Select a valid choice"),
    ],
)
def test_bulk_refuses_an_incomplete_request(client, data, message):
    _log_in(client)
    response = client.post(BULK, data, follow=True)
    assert any(message in text for text in _messages(response))
    assert not AuditEvent.objects.exists()


def test_bulk_is_post_only(client):
    _log_in(client)
    assert client.get(BULK).status_code == 405


# --- activity -----------------------------------------------------------------------------------------


def test_the_activity_page_lists_who_did_what_newest_first(client, django_capture_on_commit_callbacks):
    admin = _log_in(client)
    master = _master_of(admin)
    with django_capture_on_commit_callbacks(execute=True):
        sub = create_subaccount(
            actor=admin, master=master, name="Acme", contact_email="o@acme.test", monthly_limit=1000
        )
    update_subaccount(actor=admin, master=master, subaccount_id=sub.pk, changes={"monthly_limit": 20})
    for url in (reverse("accounts:activity"), reverse("accounts:subaccount_activity", args=[sub.pk])):
        content = client.get(url).content.decode()
        table = content[content.index("<table") :]
        assert table.index("Details changed") < table.index("Subaccount created")
        assert admin.email in table
        assert "Monthly limit: 1,000 → 20" in table


def test_the_masters_activity_keeps_a_deleted_subaccounts_events(client):
    admin = _log_in(client)
    master = _master_of(admin)
    sub = SubaccountFactory(parent=master, name="Gone Shop", public_id="gone")
    update_subaccount(actor=admin, master=master, subaccount_id=sub.pk, changes={"monthly_limit": 20})
    delete_subaccount(actor=admin, master=master, subaccount_id=sub.pk)
    content = client.get(reverse("accounts:activity")).content.decode()
    table = content[content.index("<table") :]
    assert "Subaccount deleted" in table and "Details changed" in table
    assert "Gone Shop (gone)" in table


def test_the_masters_activity_shows_nothing_of_another_master(client):
    _log_in(client)
    other = SubaccountFactory(name="Theirs")
    update_subaccount(
        actor=MembershipFactory(account=other.parent).user,
        master=other.parent,
        subaccount_id=other.pk,
        changes={"monthly_limit": 3},
    )
    content = client.get(reverse("accounts:activity")).content.decode()
    assert "Nothing has happened yet" in content
    assert "Theirs" not in content


# --- delete -------------------------------------------------------------------------------------------


def test_the_delete_page_asks_for_the_name_and_deletes_only_with_it(client):
    master = _master_of(_log_in(client))
    sub, owner = subaccount_with_owner(master, name="Acme Shop")
    url = reverse("accounts:subaccount_delete", args=[sub.pk])
    page = client.get(url).content.decode()
    assert "Delete Acme Shop for good?" in page
    assert '<label for="id_confirm_name">' in page
    # a wrong name
    wrong = client.post(url, {"confirm_name": "Acme"})
    assert wrong.status_code == 200
    assert 'id="id_confirm_name_error"' in wrong.content.decode()
    assert Account.objects.filter(pk=sub.pk).exists()
    # the right name
    right = client.post(url, {"confirm_name": "Acme Shop"}, follow=True)
    assert right.redirect_chain[-1][0] == LIST
    assert "Acme Shop was deleted for good." in _messages(right)
    assert not Account.objects.filter(pk=sub.pk).exists()
    assert not User.objects.filter(pk=owner.pk).exists()


# --- who may open what --------------------------------------------------------------------------------


def _per_subaccount_requests(sub: Account) -> list[tuple[str, str]]:
    urls = [
        ("get", reverse("accounts:subaccount_detail", args=[sub.pk])),
        ("get", reverse("accounts:subaccount_edit", args=[sub.pk])),
        ("post", reverse("accounts:subaccount_edit", args=[sub.pk])),
        ("get", reverse("accounts:subaccount_delete", args=[sub.pk])),
        ("post", reverse("accounts:subaccount_delete", args=[sub.pk])),
        ("get", reverse("accounts:subaccount_activity", args=[sub.pk])),
        ("post", reverse("accounts:log_in_as", args=[sub.pk])),
    ]
    return urls + [("post", _action(action, sub)) for action in ROW_ACTIONS]


def test_another_masters_subaccount_is_a_404_on_every_page_and_action(client):
    theirs, _owner = subaccount_with_owner(name="Theirs", monthly_limit=1000)
    _log_in(client)
    for method, url in _per_subaccount_requests(theirs):
        data = {"confirm_name": "Theirs", "name": "X", "monthly_limit": "1"} if method == "post" else {}
        assert getattr(client, method)(url, data).status_code == 404, url
    assert Account.objects.filter(pk=theirs.pk, status="active", monthly_limit=1000).exists()
    assert not AuditEvent.objects.exists()


def test_a_subaccount_owner_gets_a_404_on_every_master_page(client):
    sub, owner = subaccount_with_owner()
    sibling = SubaccountFactory(parent=sub.parent)
    client.force_login(owner)
    requests = [
        ("get", LIST),
        ("get", ADD),
        ("post", ADD),
        ("post", BULK),
        *_per_subaccount_requests(sub),
        *_per_subaccount_requests(sibling),
    ]
    for method, url in requests:
        assert getattr(client, method)(url).status_code == 404, url
    assert not AuditEvent.objects.exists()


def test_the_password_reset_action_emails_the_owner_from_a_request(
    client, mailoutbox, django_capture_on_commit_callbacks
):
    master = _master_of(_log_in(client))
    sub, owner = subaccount_with_owner(master)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(_action("password_reset", sub), **HTMX)
    assert f"A password reset email is on its way to {owner.email}." in response.content.decode()
    (message,) = mailoutbox
    assert message.to == [owner.email]
    assert "/accounts/password/reset/key/" in message.body


# --- the closed page and Renew My Account -------------------------------------------------------------


def test_a_closed_subaccounts_owner_sees_only_the_closed_page_and_can_renew(
    client, mailoutbox, django_capture_on_commit_callbacks
):
    # given
    sub, owner = subaccount_with_owner(name="Acme Shop", status=Account.Status.CLOSED)
    client.force_login(owner)
    for url in (reverse("home"), reverse("accounts:dashboard"), reverse("accounts:activity")):
        assert client.get(url)["Location"] == reverse("accounts:closed")
    page = client.get(reverse("accounts:closed")).content.decode()
    assert "This account is closed" in page and "Renew My Account" in page
    # when
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("accounts:renew"), follow=True)
    # then
    assert response.redirect_chain[-1][0] == reverse("accounts:dashboard")
    assert "Welcome back: Acme Shop is now your own account and can send again." in _messages(response)
    sub.refresh_from_db()
    assert (sub.kind, sub.status) == (Account.Kind.STANDALONE, Account.Status.ACTIVE)
    assert client.get(reverse("accounts:closed"))["Location"] == reverse("home")


def test_renew_is_post_only_and_refused_for_an_open_subaccount(client):
    sub, owner = subaccount_with_owner()
    client.force_login(owner)
    assert client.get(reverse("accounts:renew")).status_code == 405
    response = client.post(reverse("accounts:renew"), follow=True)
    assert "Only a closed subaccount can be renewed." in _messages(response)
    sub.refresh_from_db()
    assert sub.kind == Account.Kind.SUBACCOUNT


def test_a_viewer_gets_no_submit_button_on_the_add_edit_and_delete_pages(client):
    master = _master_of(_log_in(client, role=Membership.Role.VIEWER))
    sub = SubaccountFactory(parent=master)
    for name, args in (
        ("accounts:subaccount_create", []),
        ("accounts:subaccount_edit", [sub.pk]),
        ("accounts:subaccount_delete", [sub.pk]),
    ):
        page = client.get(reverse(name, args=args)).content.decode()
        assert 'type="submit"' not in page.split("<main", 1)[1], name  # the header's Log out is a button
        assert "Only an owner or admin of" in page
