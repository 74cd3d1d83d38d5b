"""The agency's brand: set by its owners and admins, checked on upload, served safely, and worn by its
own customers' pages and emails only."""

import io
import re
from urllib.parse import urlencode

import pytest
from django.urls import reverse
from PIL import Image

from accounts import branding
from accounts.errors import PermissionDenied, ValidationError
from accounts.lifecycle import close_subaccount, create_subaccount, send_password_reset_email
from accounts.models import AuditEvent, Brand, Membership
from tests.factories import MasterFactory, MembershipFactory, subaccount_with_owner

pytestmark = pytest.mark.django_db


def png(width=64, height=32, color=(14, 116, 144)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), color).save(out, "PNG")
    return out.getvalue()


def branded_master(*, name="Northwind Mail", color="#0e7490", support="help@northwind.test", logo=True):
    master = MasterFactory()
    admin = MembershipFactory(account=master, role=Membership.Role.ADMIN).user
    brand = branding.set_brand(
        actor=admin, master=master, name=name, accent_color=color, support_email=support,
        logo=png() if logo else None,
    )  # fmt: skip
    return master, admin, brand


# --- the service ------------------------------------------------------------------------------------------


def test_an_admin_sets_the_brand_and_it_is_audited():
    master, admin, brand = branded_master()
    assert brand.name == "Northwind Mail" and brand.accent_color == "#0e7490"
    assert brand.logo_type == "image/png" and len(brand.logo_hash) == 64
    event = AuditEvent.objects.get(action="brand.changed")
    assert event.actor == admin and event.account == master and event.after["accent_color"] == "#0e7490"


def test_a_viewer_cannot_change_the_brand():
    master, _admin, _brand = branded_master()
    viewer = MembershipFactory(account=master, role=Membership.Role.VIEWER).user
    with pytest.raises(PermissionDenied):
        branding.set_brand(actor=viewer, master=master, name="Hijacked", accent_color="#ff0000")
    assert Brand.objects.get(account=master).name == "Northwind Mail"


def test_another_agencys_admin_cannot_change_this_brand():
    master, _admin, _brand = branded_master()
    stranger = MembershipFactory(role=Membership.Role.OWNER).user
    with pytest.raises(PermissionDenied):
        branding.set_brand(actor=stranger, master=master, name="Mine now")


@pytest.mark.parametrize("color", ["red", "#12345", "#1234567", "#ggg000", "#fff; } body { x", "url(x)"])
def test_a_colour_that_is_not_six_hex_digits_is_refused(color):
    master = MasterFactory()
    admin = MembershipFactory(account=master).user
    with pytest.raises(ValidationError) as refused:
        branding.set_brand(actor=admin, master=master, name="N", accent_color=color)
    assert refused.value.field == "accent_color"


SVG_WITH_SCRIPT = (
    b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'
)
HTML_NAMED_PNG = b"<!doctype html><html><script>alert(document.cookie)</script></html>"


@pytest.mark.parametrize(
    ("data", "says"),
    [
        (SVG_WITH_SCRIPT, "SVG and HTML files are not accepted"),
        (HTML_NAMED_PNG, "SVG and HTML files are not accepted"),
        (b"GIF89a" + b"\x00" * 100, "not a readable image"),
        (b"\x89PNG\r\n\x1a\n" + b"garbage" * 50, "not a readable image"),
        (b"\x00" * (branding.LOGO_MAX_BYTES + 1), "That file is 512 KB"),
        (b"", "empty"),
    ],
    ids=["svg-with-script", "html-named-png", "gif", "truncated-png", "oversize", "empty"],
)
def test_bad_logos_are_refused_with_a_reason(data, says):
    with pytest.raises(ValidationError) as refused:
        branding.clean_logo(data)
    assert says in refused.value.message
    assert "PNG, JPEG or WebP" in refused.value.message and refused.value.field == "logo"


def test_an_image_too_large_in_pixels_is_refused():
    with pytest.raises(ValidationError, match="2000 × 10 pixels"):
        branding.clean_logo(png(2000, 10))


def test_a_logo_is_reencoded_without_what_was_appended():
    data = png() + b"<script>alert(1)</script>"
    stored, content_type = branding.clean_logo(data)
    assert content_type == "image/png" and b"<script>" not in stored
    assert Image.open(io.BytesIO(stored)).size == (64, 32)


def test_jpeg_and_webp_keep_their_type():
    for fmt, content_type in (("JPEG", "image/jpeg"), ("WEBP", "image/webp")):
        out = io.BytesIO()
        Image.new("RGB", (10, 10), (1, 2, 3)).save(out, fmt)
        assert branding.clean_logo(out.getvalue())[1] == content_type


# --- the logo and theme endpoints -------------------------------------------------------------------------


def test_the_logo_is_served_with_safe_headers(client):
    _master, _admin, brand = branded_master()
    response = client.get(branding.logo_path(brand))
    assert response.status_code == 200
    assert response["Content-Type"] == "image/png"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Content-Disposition"] == 'inline; filename="logo.png"'
    assert "immutable" in response["Cache-Control"]
    assert response["Content-Security-Policy"] == "default-src 'none'; sandbox"
    assert bytes(response.content) == bytes(brand.logo)
    assert brand.logo_hash[:16] in branding.logo_path(brand)


def test_an_old_logo_url_is_a_404(client):
    master, admin, brand = branded_master()
    old = branding.logo_path(brand)
    branding.set_brand(actor=admin, master=master, name=brand.name, logo=png(color=(200, 0, 0)))
    assert client.get(old).status_code == 404
    assert client.get(branding.logo_path(Brand.objects.get(pk=brand.pk))).status_code == 200


def test_the_theme_is_a_stylesheet_with_the_validated_colour(client):
    _master, _admin, brand = branded_master(color="#0e7490")
    response = client.get(branding.theme_path(brand))
    assert response["Content-Type"] == "text/css; charset=utf-8"
    assert "--brand-accent: #0e7490;" in response.content.decode()


# --- whose brand is shown ----------------------------------------------------------------------------------


def test_customers_see_their_agencys_brand_and_never_another(client):
    master, _admin, brand = branded_master(name="Northwind Mail", color="#0e7490")
    _other_master, _other_admin, other = branded_master(name="Contoso Send", color="#b91c1c")
    _sub, owner = subaccount_with_owner(master)
    client.force_login(owner)
    page = client.get(reverse("accounts:dashboard")).content.decode()
    assert (
        "Northwind Mail" in page and branding.logo_path(brand) in page and branding.theme_path(brand) in page
    )
    assert "Contoso Send" not in page and branding.logo_path(other) not in page
    assert "help@northwind.test" in page


def test_the_agency_itself_and_unbranded_customers_see_ours(client):
    _master, admin, brand = branded_master()
    client.force_login(admin)
    page = client.get(reverse("accounts:subaccount_list")).content.decode()
    assert branding.theme_path(brand) not in page and "Reseller Dashboard" in page
    _sub, owner = subaccount_with_owner()  # another agency, no brand
    client.force_login(owner)
    page = client.get(reverse("accounts:dashboard")).content.decode()
    assert "Northwind Mail" not in page and "Reseller Dashboard" in page


def test_the_login_page_wears_the_brand_its_link_names(client):
    _master, _admin, brand = branded_master()
    page = client.get(reverse("account_login"), {"brand": branding.slug_of(brand)}).content.decode()
    assert "Log in to your Northwind Mail account" in page and branding.logo_path(brand) in page
    # the rest of the flow keeps it (a failed login re-renders the page)
    page = client.post(reverse("account_login"), {"login": "x@y.test", "password": "nope"}).content.decode()
    assert "Northwind Mail" in page
    # an unknown name shows ours, and clears the remembered one
    page = client.get(reverse("account_login"), {"brand": "no-such-agency"}).content.decode()
    assert "Northwind Mail" not in page and "Agency staff and their customers" in page


def test_a_brand_link_cannot_be_guessed_from_an_agencys_id(client):
    # given an agency whose id is easy to guess
    master, _admin, brand = branded_master()
    # when a stranger tries its id, or forges a signature
    for guess in (master.public_id, f"{master.public_id}:forged", branding.slug_of(brand) + "x"):
        page = client.get(reverse("account_login"), {"brand": guess}).content.decode()
        # then the page wears ours and confirms nothing about the agency
        assert "Northwind Mail" not in page and "Agency staff and their customers" in page
    assert branding.brand_named(branding.slug_of(brand)) == brand


def test_a_logged_in_customer_cannot_wear_another_brand_by_link(client):
    master, *_ = branded_master(name="Northwind Mail")
    other_master, *_ = branded_master(name="Contoso Send")
    _sub, owner = subaccount_with_owner(master)
    client.force_login(owner)
    page = client.get(
        reverse("accounts:dashboard"), {"brand": branding.slug_of(other_master.brand)}
    ).content.decode()
    assert "Northwind Mail" in page and "Contoso Send" not in page


# --- the emails ------------------------------------------------------------------------------------------


def _html(message) -> str:
    return message.alternatives[0][0]


def test_the_invite_email_wears_the_agencys_brand(mailoutbox, django_capture_on_commit_callbacks, settings):
    settings.SITE_URL = "https://dash.example.com"
    master, admin, brand = branded_master()
    with django_capture_on_commit_callbacks(execute=True):
        create_subaccount(
            actor=admin, master=master, name="Acme", contact_email="o@acme.test", monthly_limit=5
        )
    (message,) = mailoutbox
    assert message.subject == f"{master.name} invited you to send email with Northwind Mail"
    html = _html(message)
    assert "https://dash.example.com" + branding.logo_path(brand) in html
    assert "background:#0e7490" in html and "help@northwind.test" in html
    assert "Reseller Dashboard" not in html and "Reseller Dashboard" not in message.body
    (link,) = set(re.findall(r"https://\S+/invite/\S+", message.body))
    assert link.endswith(f"?{urlencode({'brand': branding.slug_of(brand)})}")


def test_the_reset_and_closed_emails_wear_the_brand(mailoutbox, django_capture_on_commit_callbacks):
    master, admin, brand = branded_master()
    sub, _owner = subaccount_with_owner(master)
    with django_capture_on_commit_callbacks(execute=True):
        send_password_reset_email(actor=admin, master=master, subaccount_id=sub.pk)
    with django_capture_on_commit_callbacks(execute=True):
        close_subaccount(actor=admin, master=master, subaccount_id=sub.pk)
    reset, closed = mailoutbox
    assert reset.subject == "Choose a new password for Northwind Mail"
    link = urlencode({"brand": branding.slug_of(brand)})
    assert f"?{link}" in reset.body and branding.logo_path(brand) in _html(reset)
    assert f"/accounts/login/?{link}" in closed.body
    assert branding.logo_path(brand) in _html(closed) and "help@northwind.test" in closed.body


def test_another_agencys_customers_get_our_emails(mailoutbox, django_capture_on_commit_callbacks):
    branded_master(name="Northwind Mail")
    other = MasterFactory()
    with django_capture_on_commit_callbacks(execute=True):
        create_subaccount(actor=MembershipFactory(account=other).user, master=other, name="B",
                          contact_email="b@b.test", monthly_limit=5)  # fmt: skip
    (message,) = mailoutbox
    assert "Northwind" not in _html(message) and "Reseller Dashboard" in message.subject


# --- the Brand page ------------------------------------------------------------------------------------------


def _upload(data: bytes, name: str):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile(name, data, content_type="image/png")


def test_the_brand_page_saves_a_logo(client):
    master = MasterFactory()
    client.force_login(MembershipFactory(account=master, role=Membership.Role.OWNER).user)
    response = client.post(reverse("accounts:brand"), {
        "name": "Northwind Mail", "accent_color": "#0E7490", "support_email": "", "logo": _upload(png(), "logo.png"),
    })  # fmt: skip
    assert response.status_code == 302
    brand = Brand.objects.get(account=master)
    assert brand.accent_color == "#0e7490" and brand.has_logo


def test_the_brand_page_refuses_html_named_png_beside_the_field(client):
    master = MasterFactory()
    client.force_login(MembershipFactory(account=master).user)
    response = client.post(
        reverse("accounts:brand"), {"name": "N", "logo": _upload(HTML_NAMED_PNG, "logo.png")}
    )
    assert response.status_code == 400
    assert 'id="id_logo_error"' in response.content.decode()
    assert "SVG and HTML files are not accepted" in response.content.decode()
    assert not Brand.objects.exists()


def test_a_viewer_sees_the_brand_page_without_the_form(client):
    master, *_ = branded_master()
    client.force_login(MembershipFactory(account=master, role=Membership.Role.VIEWER).user)
    page = client.get(reverse("accounts:brand")).content.decode()
    assert "Northwind Mail" in page and "Save brand" not in page
    assert client.post(reverse("accounts:brand"), {"name": "X"}).status_code == 200
    assert Brand.objects.get(account=master).name == "Northwind Mail"


def test_customers_have_no_brand_page(client):
    _sub, owner = subaccount_with_owner()
    client.force_login(owner)
    assert client.get(reverse("accounts:brand")).status_code == 404
