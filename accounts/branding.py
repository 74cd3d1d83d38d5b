"""The agency's own brand: what its customers see instead of ours (DESIGN.md, "the agency's brand").

Whose brand a page or an email carries is decided here, once: a subaccount's people see their master's
brand, a master's own staff and standalone accounts see ours, and a visitor who is not logged in sees
the brand their link named (the login page reached from a customer's email). Nothing else picks a brand,
so one agency's brand never reaches another agency's customers.

A logo is checked and re-encoded before it is stored: PNG, JPEG or WebP only (SVG is refused: it can
carry script), at most LOGO_MAX_BYTES and LOGO_MAX_SIDE pixels a side, decoded by Pillow so a file that
only claims to be an image is refused, and re-encoded so nothing but pixels survives (no metadata, no
trailing payload).
"""

from __future__ import annotations

import hashlib
import io
import warnings

from django.core import signing
from django.db import transaction
from django.urls import reverse
from PIL import Image, UnidentifiedImageError

from .audit import diff, record
from .errors import ValidationError
from .models import Account, Brand, Membership, User
from .permissions import require_role
from .validation import clean_accent_color, clean_brand_name, clean_support_email

LOGO_MAX_BYTES = 512 * 1024
LOGO_MAX_SIDE = 1024
LOGO_FORMATS = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp"}
LOGO_RULE = "The logo must be a PNG, JPEG or WebP image of at most 512 KB and 1024 × 1024 pixels."


# --- whose brand -------------------------------------------------------------------------------------------


def brand_for_account(account: Account | None) -> Brand | None:
    """The brand a member of `account` sees: its master's, for a subaccount; none (ours) otherwise."""
    if account is None or not account.is_subaccount:
        return None
    return Brand.objects.filter(account_id=account.parent_id).first()


# The links our emails carry name the agency with a signature: without it, anyone could try agency ids
# on the login page and learn which exist and how they look.
_LINK_SIGNER = signing.Signer(salt="accounts.branding.link")


def brand_named(slug: str | None) -> Brand | None:
    """The brand a link names (`?brand=<the master's id, signed>`), for pages seen before logging in;
    None for a link we did not make."""
    slug = (slug or "").strip()
    if not slug or len(slug) > 400:
        return None
    try:
        public_id = _LINK_SIGNER.unsign(slug)
    except signing.BadSignature:
        return None
    return (
        Brand.objects.select_related("account")
        .filter(account__kind=Account.Kind.MASTER, account__public_id=public_id)
        .first()
    )


def slug_of(brand: Brand | None) -> str:
    """What a link carries to name `brand` (readable, and only we can make it)."""
    return _LINK_SIGNER.sign(brand.account.public_id) if brand else ""


def logo_path(brand: Brand) -> str:
    """The logo's URL: named by its content's hash, so it is cached for good and a new logo is a new URL."""
    return reverse(
        "accounts:brand_logo",
        kwargs={"brand_id": brand.pk, "digest": brand.logo_hash[:16], "ext": brand.logo_extension},
    )


def theme_path(brand: Brand) -> str:
    return reverse("accounts:brand_theme", kwargs={"brand_id": brand.pk, "version": brand.theme_version})


# --- the logo ----------------------------------------------------------------------------------------------


def _refuse(detail: str) -> ValidationError:
    return ValidationError(f"{detail} {LOGO_RULE}", field="logo")


def clean_logo(data: bytes) -> tuple[bytes, str]:
    """Check an uploaded logo and re-encode it. Returns (bytes to store, content type).
    Raises ValidationError (field "logo") saying what is wrong."""
    if len(data) > LOGO_MAX_BYTES:
        raise _refuse(f"That file is {len(data) // 1024} KB.")
    if not data:
        raise _refuse("That file is empty.")
    head = data[:512].lstrip().lower()
    if head.startswith((b"<", b"\xef\xbb\xbf<")) or b"<svg" in data[:4096].lower():
        raise _refuse("SVG and HTML files are not accepted.")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=list(LOGO_FORMATS)) as probe:
                image_format, size = probe.format, probe.size
                probe.verify()
            if size[0] > LOGO_MAX_SIDE or size[1] > LOGO_MAX_SIDE:
                raise _refuse(f"That image is {size[0]} × {size[1]} pixels.")
            with Image.open(io.BytesIO(data), formats=[image_format]) as image:
                image.load()
                return _reencode(image, image_format), LOGO_FORMATS[image_format]
    except ValidationError:
        raise
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombWarning,
            Image.DecompressionBombError):  # fmt: skip
        raise _refuse("That file is not a readable image.") from None


def _reencode(image: Image.Image, image_format: str) -> bytes:
    """Only the pixels, in the format they came in: metadata and anything appended are dropped."""
    out = io.BytesIO()
    if image_format == "JPEG":
        image.convert("RGB").save(out, "JPEG", quality=90)
    else:
        has_alpha = image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info
        image.convert("RGBA" if has_alpha else "RGB").save(out, image_format, **(
            {"optimize": True} if image_format == "PNG" else {"quality": 90}
        ))  # fmt: skip
    encoded = out.getvalue()
    if len(encoded) > LOGO_MAX_BYTES:
        raise _refuse(f"Re-encoded, that image is {len(encoded) // 1024} KB.")
    return encoded


# --- the one action ----------------------------------------------------------------------------------------


def _snapshot(brand: Brand) -> dict:
    return {
        "name": brand.name,
        "accent_color": brand.accent_color,
        "support_email": brand.support_email,
        "logo": brand.logo_hash[:12],
    }


@transaction.atomic(durable=True)
def set_brand(
    *,
    actor: User,
    master: Account,
    name: str,
    accent_color: str = "",
    support_email: str = "",
    logo: bytes | None = None,
    remove_logo: bool = False,
    real_actor: User | None = None,
) -> Brand:
    """Create or change the master's brand. `logo` replaces the logo (checked by clean_logo); with
    `remove_logo` the brand has none. Raises PermissionDenied (a viewer, or not a member of the master),
    ValidationError (a bad field: the field is named)."""
    master = Account.objects.select_for_update().get(pk=master.pk, kind=Account.Kind.MASTER)
    require_role(actor, master, Membership.Role.ADMIN)
    cleaned = {
        "name": clean_brand_name(name),
        "accent_color": clean_accent_color(accent_color),
        "support_email": clean_support_email(support_email),
    }
    new_logo = clean_logo(logo) if logo is not None else None
    brand = Brand.objects.filter(account=master).first() or Brand(account=master, name=cleaned["name"])
    before = _snapshot(brand) if brand.pk else {}
    for field, value in cleaned.items():
        setattr(brand, field, value)
    if new_logo is not None:
        brand.logo, brand.logo_type = new_logo
        brand.logo_hash = hashlib.sha256(brand.logo).hexdigest()
    elif remove_logo:
        brand.logo, brand.logo_type, brand.logo_hash = None, "", ""
    changed_before, changed_after = diff(before, _snapshot(brand))
    if brand.pk and not changed_after:
        return brand
    brand.save()
    record(
        actor=actor,
        real_actor=real_actor,
        account=master,
        action="brand.changed",
        before=changed_before,
        after=changed_after,
    )
    return brand


# --- the theme ---------------------------------------------------------------------------------------------


def text_color_on(hex_color: str) -> str:
    """Black or white, whichever reads better on the colour (WCAG relative luminance)."""

    def channel(value: int) -> float:
        c = value / 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (int(hex_color[i : i + 2], 16) for i in (1, 3, 5))
    luminance = 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b)
    return "#000000" if luminance > 0.179 else "#ffffff"


def theme_css(brand: Brand) -> str:
    """The brand's colour as CSS custom properties, served as a stylesheet (the CSP forbids inline
    styles). Only a validated "#rrggbb" is ever written into it."""
    color = clean_accent_color(brand.accent_color)
    if not color:
        return "/* this brand uses the default colours */\n"
    text = text_color_on(color)
    return (
        ':root[data-theme="light"] {\n'
        f"  --brand-accent: {color};\n  --brand-accent-text: {text};\n"
        # as link colour only when it reads on white (a dark colour); buttons carry their own text colour
        + (f"  --pico-primary: {color};\n  --pico-primary-underline: {color};\n" if text == "#ffffff" else "")
        + f"  --pico-primary-background: {color};\n"
        f"  --pico-primary-border: {color};\n"
        f"  --pico-primary-hover-background: {color};\n  --pico-primary-hover-border: {color};\n"
        f"  --pico-primary-inverse: {text};\n"
        "}\n"
    )
