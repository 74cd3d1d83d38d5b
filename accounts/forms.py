from allauth.account import forms as allauth_forms
from allauth.account.adapter import get_adapter
from allauth.core.exceptions import ImmediateHttpResponse
from django import forms
from django.core.validators import RegexValidator
from django.db import transaction

from . import reports
from .errors import ValidationError
from .models import Account, Membership, User
from .validation import (
    BRAND_NAME_MAX_LENGTH,
    EMAIL_MAX_LENGTH,
    MAX_LIMIT,
    NAME_MAX_LENGTH,
    NOTES_MAX_LENGTH,
    PUBLIC_ID_HELP,
    PUBLIC_ID_PATTERN,
    PUBLIC_ID_RULE,
    TIME_ZONE_CHOICES,
)


class SubaccountForm(forms.Form):
    """Add subaccount / Edit details. Shapes and types only: the rules are the service's."""

    name = forms.CharField(
        max_length=NAME_MAX_LENGTH, help_text="Your customer's name, as you want to see it."
    )
    contact_email = forms.EmailField(
        max_length=EMAIL_MAX_LENGTH,
        label="Contact email",
        help_text="The owner's login. They get an invite to set a password.",
    )
    monthly_limit = forms.IntegerField(
        min_value=1,
        max_value=MAX_LIMIT,
        label="Monthly email limit",
        help_text="Emails per calendar month (UTC).",
    )
    hourly_limit = forms.IntegerField(
        min_value=1,
        max_value=MAX_LIMIT,
        required=False,
        label="Hourly limit",
        help_text="Leave empty for none.",
    )
    public_id = forms.CharField(
        max_length=255,
        required=False,
        label="Id",
        validators=[RegexValidator(rf"\A{PUBLIC_ID_PATTERN.pattern}\Z", PUBLIC_ID_RULE)],
        help_text=f"The id programs use to send as this subaccount. Generated from the name if empty. {PUBLIC_ID_HELP}",
    )
    notes = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}), required=False, max_length=NOTES_MAX_LENGTH
    )

    def __init__(self, *args, subaccount: Account | None = None, email_locked: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        if subaccount is not None:
            self.fields["public_id"].required = True
            self.fields["public_id"].help_text = PUBLIC_ID_HELP
        if email_locked:
            self.fields["contact_email"].disabled = True
            self.fields[
                "contact_email"
            ].help_text = "The owner has accepted the invite: only they can change their login."

    def add_domain_error(self, exc) -> None:
        field = exc.field if getattr(exc, "field", None) in self.fields else None
        self.add_error(field, exc.message)


class DeleteSubaccountForm(forms.Form):
    """Deleting is for good: the person must type the name, so a slip of the mouse deletes nothing."""

    confirm_name = forms.CharField(label="Type the subaccount's name to confirm", max_length=NAME_MAX_LENGTH)

    def __init__(self, *args, subaccount_name: str, **kwargs):
        super().__init__(*args, **kwargs)
        self.subaccount_name = subaccount_name

    def clean_confirm_name(self) -> str:
        typed = self.cleaned_data["confirm_name"].strip()
        if typed != self.subaccount_name:
            raise forms.ValidationError(f"Type the subaccount's name, {self.subaccount_name}, to confirm.")
        return typed


BULK_ACTIONS = [
    ("pause", "Pause sending"),
    ("resume", "Resume sending"),
    ("set_monthly_limit", "Set monthly limit"),
]


class BulkActionForm(forms.Form):
    action = forms.ChoiceField(choices=BULK_ACTIONS)
    selected = forms.TypedMultipleChoiceField(coerce=int, required=False, choices=[])
    all_matching = forms.BooleanField(required=False)
    monthly_limit = forms.IntegerField(min_value=1, max_value=MAX_LIMIT, required=False)
    q = forms.CharField(required=False, max_length=NAME_MAX_LENGTH)
    status = forms.CharField(required=False, max_length=12)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Any integer is accepted here; the service looks each one up inside the master, so a foreign id fails there.
        self.fields["selected"].valid_value = lambda value: True

    def clean(self):
        data = super().clean()
        if data.get("action") == "set_monthly_limit" and not data.get("monthly_limit"):
            self.add_error("monthly_limit", "Enter the new monthly limit.")
        if not data.get("selected") and not data.get("all_matching"):
            raise forms.ValidationError("Select at least one subaccount.")
        return data


class SetPasswordForm(forms.Form):
    password1 = forms.CharField(
        label="Choose a password",
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text="At least 10 characters; not a common password, not all digits.",
    )
    password2 = forms.CharField(
        label="Type it again", strip=False, widget=forms.PasswordInput(attrs={"autocomplete": "new-password"})
    )

    def clean(self):
        data = super().clean()
        if data.get("password1") and data.get("password2") and data["password1"] != data["password2"]:
            self.add_error("password2", "The two passwords differ.")
        return data


class DomainErrorsForm(forms.Form):
    """A form whose rules are a service's: the service's ValidationError lands beside its field."""

    def add_domain_error(self, exc) -> None:
        field = exc.field if getattr(exc, "field", None) in self.fields else None
        self.add_error(field, exc.message)


class BrandForm(DomainErrorsForm):
    """The Brand page. Shapes only: the colour, the address and the logo are checked by the service."""

    name = forms.CharField(
        max_length=BRAND_NAME_MAX_LENGTH,
        label="Brand name",
        help_text="What your customers see instead of ours: on their dashboard, their login page and emails.",
    )
    accent_color = forms.CharField(
        max_length=7,
        required=False,
        label="Accent colour",
        widget=forms.TextInput(attrs={"placeholder": "#0e7490", "size": 8}),
        help_text="A hex colour such as #0e7490, for buttons, links and the top bar. Empty: our colours.",
    )
    support_email = forms.EmailField(
        max_length=EMAIL_MAX_LENGTH,
        required=False,
        label="Support email",
        help_text="Where your customers write for help; shown on their pages and in their emails.",
    )
    logo = forms.FileField(
        required=False,
        label="Logo",
        widget=forms.ClearableFileInput(attrs={"accept": "image/png,image/jpeg,image/webp"}),
        help_text="PNG, JPEG or WebP, at most 512 KB and 1024 × 1024 pixels. SVG is not accepted.",
    )
    remove_logo = forms.BooleanField(required=False, label="Remove the logo")


class InviteMemberForm(DomainErrorsForm):
    email = forms.EmailField(max_length=EMAIL_MAX_LENGTH, label="Email address")
    role = forms.ChoiceField(choices=Membership.Role.choices, initial=Membership.Role.VIEWER)


class ChangeRoleForm(DomainErrorsForm):
    role = forms.ChoiceField(choices=Membership.Role.choices)


class ProfileForm(DomainErrorsForm):
    full_name = forms.CharField(max_length=150, required=False, label="Your name")
    time_zone = forms.ChoiceField(
        label="Time zone",
        help_text="Dates on every page are shown in this zone.",
        choices=[(zone, zone.replace("_", " ")) for zone in TIME_ZONE_CHOICES],
    )


class AlertThresholdsForm(forms.Form):
    thresholds = forms.CharField(
        required=False,
        max_length=100,
        label="Alert at these percentages of the monthly limit",
        help_text="Comma-separated, e.g. 80, 95. An alert at 100% is always sent.",
    )


class AutoPauseForm(forms.Form):
    """The limits past which a subaccount is paused by itself. The bounds are the service's
    (accounts/validation.clean_auto_pause_rates): an empty field means "the agency's" or the default."""

    hard_bounce = forms.CharField(
        required=False, max_length=10, label="Hard-bounce rate limit (%)",
        widget=forms.TextInput(attrs={"inputmode": "decimal"}),
    )  # fmt: skip
    complaint = forms.CharField(
        required=False, max_length=10, label="Complaint rate limit (%)",
        widget=forms.TextInput(attrs={"inputmode": "decimal"}),
    )  # fmt: skip
    window_days = forms.CharField(
        required=False, max_length=3, label="Measured over the last (days)",
        widget=forms.TextInput(attrs={"inputmode": "numeric"}),
    )  # fmt: skip


class SentenceCaseLabels:
    """allauth labels its fields in Title Case ("Remember Me", "New Password"); every other label of the
    product is a sentence."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for field in self.fields.values():
            if field.label:
                field.label = field.label[:1].upper() + field.label[1:].lower()


class LoginForm(SentenceCaseLabels, allauth_forms.LoginForm):
    pass


class ChangePasswordForm(SentenceCaseLabels, allauth_forms.ChangePasswordForm):
    pass


class ResetPasswordForm(SentenceCaseLabels, allauth_forms.ResetPasswordForm):
    pass


class ResetPasswordKeyForm(SentenceCaseLabels, allauth_forms.ResetPasswordKeyForm):
    """allauth's "choose a new password" form behind a reset link, made single use under concurrency.

    allauth checks the link when the view is dispatched and sets the password later, after validating
    it, so every post of one link that arrives in that window passes the check and sets its own
    password. Here the user's row is locked and the link checked again just before the password is set:
    the token hashes the password (and the last login), so once one post has set it the others find it
    invalid and are shown allauth's "link no longer works" page, from the adapter."""

    def save(self) -> None:
        if self.temp_key is None:  # the reset-by-code flow shares this form; it holds no link to consume
            super().save()
            return
        with transaction.atomic():
            self.user.refresh_from_db(from_queryset=User.objects.select_for_update())
            if not allauth_forms.UserTokenForm.token_generator.check_token(self.user, self.temp_key):
                raise ImmediateHttpResponse(get_adapter().respond_password_reset_link_used())
            super().save()


class DateRangeForm(forms.Form):
    """The overview's range: the last 7, 30 or 90 days, or a custom from-to (the rules are the service's:
    accounts/reports.date_range). An unusable range leaves the errors beside its fields and the page on
    the default range."""

    range = forms.ChoiceField(
        choices=[("7", "Last 7 days"), ("30", "Last 30 days"), ("90", "Last 90 days"), ("custom", "From–to")],
        required=False,
        label="Period",
    )
    date_from = forms.DateField(required=False, label="From", widget=forms.DateInput(attrs={"type": "date"}))
    date_to = forms.DateField(required=False, label="To", widget=forms.DateInput(attrs={"type": "date"}))

    def clean(self):
        data = super().clean()
        if self.errors:
            return data
        try:
            data["span"] = reports.date_range(
                preset=data.get("range") or reports.DEFAULT_PRESET,
                date_from=data.get("date_from"),
                date_to=data.get("date_to"),
            )
        except ValidationError as exc:
            self.add_error(exc.field, exc.message)
        return data

    @property
    def span(self) -> reports.DateRange:
        """The range to show: the one asked for, or the default when it cannot be used."""
        if self.is_valid():
            return self.cleaned_data["span"]
        return reports.last_days(reports.PRESET_DAYS[reports.DEFAULT_PRESET], preset=reports.DEFAULT_PRESET)
