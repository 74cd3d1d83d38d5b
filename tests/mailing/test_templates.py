"""Templates: the service (draft and published copies, labels, slugs, sharing, tenant isolation) and the
dashboard's Templates pages."""

import pytest
from django.urls import reverse

from accounts.errors import DuplicateTemplate, PermissionDenied, UnknownTemplate, ValidationError
from accounts.models import AuditEvent, Membership
from mailing import templates
from mailing.models import Message, Template
from tests.factories import MasterFactory, MembershipFactory, subaccount_with_owner

pytestmark = pytest.mark.django_db


def _admin(account):
    return MembershipFactory(account=account, role=Membership.Role.ADMIN).user


def test_add_makes_a_slug_publishes_by_default_and_audits():
    master = MasterFactory()
    template = templates.add_template(
        actor=_admin(master),
        account=master,
        name="Password Reset",
        code="<p>*|LINK|*</p>",
        labels=["Auth", "auth"],
    )
    assert (template.slug, template.labels, template.publish_code) == (
        "password-reset",
        ["auth"],
        "<p>*|LINK|*</p>",
    )
    assert template.published_at is not None
    assert AuditEvent.objects.filter(action="template.added").exists()


def test_a_draft_update_leaves_the_published_copy_until_published():
    master = MasterFactory()
    admin = _admin(master)
    templates.add_template(actor=admin, account=master, name="Welcome", subject="Hi")
    draft = templates.update_template(
        actor=admin, account=master, name="welcome", subject="Hello", publish=False
    )
    assert (draft.subject, draft.publish_subject) == ("Hello", "Hi")
    published = templates.publish_template(actor=admin, account=master, name="Welcome")
    assert published.publish_subject == "Hello"


@pytest.mark.parametrize(
    ("name", "error"), [("Welcome", DuplicateTemplate), ("  ", ValidationError), ("!!!", ValidationError)]
)
def test_names_must_be_unique_and_sluggable(name, error):
    master = MasterFactory()
    templates.add_template(actor=_admin(master), account=master, name="Welcome")
    with pytest.raises(error):
        templates.add_template(actor=_admin(master), account=master, name=name)


def test_a_viewer_cannot_add_and_another_tenant_cannot_see():
    master, other = MasterFactory(), MasterFactory()
    viewer = MembershipFactory(account=master, role=Membership.Role.VIEWER).user
    with pytest.raises(PermissionDenied):
        templates.add_template(actor=viewer, account=master, name="Welcome")
    templates.add_template(actor=_admin(other), account=other, name="Secret")
    with pytest.raises(UnknownTemplate):
        templates.template_of(master, "secret")
    with pytest.raises(UnknownTemplate):
        templates.template_for_sending(master, "secret")


def test_a_master_shares_with_chosen_or_all_subaccounts():
    master = MasterFactory()
    admin = _admin(master)
    chosen, _ = subaccount_with_owner(master)
    left_out, _ = subaccount_with_owner(master)
    templates.add_template(actor=admin, account=master, name="Reset")
    templates.share_template(
        actor=admin, master=master, name="reset", subaccount_ids=[chosen.pk], all_subaccounts=False
    )
    assert templates.template_for_sending(chosen, "reset").account == master
    with pytest.raises(UnknownTemplate):
        templates.template_for_sending(left_out, "reset")
    templates.share_template(
        actor=admin, master=master, name="reset", subaccount_ids=[], all_subaccounts=True
    )
    assert templates.template_for_sending(left_out, "reset").account == master


def test_a_subaccounts_own_template_wins_over_a_shared_one_with_the_same_slug():
    master = MasterFactory()
    sub, owner = subaccount_with_owner(master)
    templates.add_template(actor=_admin(master), account=master, name="Reset")
    templates.share_template(
        actor=_admin(master), master=master, name="reset", subaccount_ids=[], all_subaccounts=True
    )
    own = templates.add_template(actor=owner, account=sub, name="Reset")
    assert templates.template_for_sending(sub, "reset") == own


# --- the pages ------------------------------------------------------------------------------------------


def test_the_owner_creates_edits_publishes_and_previews_a_template(client):
    sub, owner = subaccount_with_owner()
    client.force_login(owner)
    created = client.post(
        reverse("mailing:template_create"),
        {"name": "Order shipped", "subject": "Shipped", "code": "<p>On its way</p>", "labels": "orders"},
    )
    assert created.status_code == 302
    template = Template.objects.get(account=sub)
    assert template.published_at is None  # "Save draft" is the default button
    page = client.get(reverse("mailing:template_edit", args=[template.slug])).content.decode()
    assert "never published" in page and "Send a test to me" in page
    client.post(
        reverse("mailing:template_edit", args=[template.slug]),
        {"name": "ignored", "subject": "Shipped!", "code": "<p>x</p>", "labels": "orders", "publish": "1"},
    )
    template.refresh_from_db()
    assert (template.name, template.publish_subject) == ("Order shipped", "Shipped!")
    preview = client.get(reverse("mailing:template_preview", args=[template.slug]))
    assert preview.content == b"<p>x</p>" and "sandbox" in preview["Content-Security-Policy"]
    listing = client.get(reverse("mailing:template_list")).content.decode()
    assert "order-shipped" in listing and "orders" in listing


def test_the_live_preview_shows_what_is_typed_in_the_sandbox_and_stores_nothing(client):
    _sub, owner = subaccount_with_owner()
    url = reverse("mailing:template_live_preview")
    assert client.post(url, {"code": "<p>x</p>"}).status_code == 302  # to the login page
    client.force_login(owner)
    assert client.get(url).status_code == 405
    html = client.post(url, {"code": "<h1>Typed</h1><script>alert(1)</script>"})
    policy = html["Content-Security-Policy"]
    assert html.content == b"<h1>Typed</h1><script>alert(1)</script>"
    assert "sandbox" in policy and "default-src 'none'" in policy and "script-src" not in policy
    text_only = client.post(url, {"code": "", "text": "Price < 5 & <b>bold</b>"})
    assert text_only.content == b"<pre>Price &lt; 5 &amp; &lt;b&gt;bold&lt;/b&gt;</pre>"
    assert not Template.objects.exists()


def test_another_tenants_template_pages_are_404(client):
    sub, _ = subaccount_with_owner()
    templates.add_template(actor=_admin(sub.parent), account=sub.parent, name="Agency only")
    _other, stranger = subaccount_with_owner()
    client.force_login(stranger)
    for name in ("mailing:template_edit", "mailing:template_preview"):
        assert client.get(reverse(name, args=["agency-only"])).status_code == 404
    assert client.post(reverse("mailing:template_action", args=["agency-only", "delete"])).status_code == 404
    assert Template.objects.count() == 1


def test_send_a_test_to_me_sends_the_draft_as_the_account(client):
    sub, owner = subaccount_with_owner()
    templates.add_template(
        actor=owner, account=sub, name="Hello", from_email="hi@shop.test", subject="Hello", code="<p>Hi</p>"
    )
    client.force_login(owner)
    client.post(reverse("mailing:template_action", args=["hello", "test"]))
    message = Message.objects.get()
    assert (message.to_email, message.subject, message.template) == (owner.email, "[Test] Hello", "hello")
