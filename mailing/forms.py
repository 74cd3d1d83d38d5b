"""Forms of the mailing pages. Shapes and types only: the rules are the services'."""

from django import forms

from .templates import MAX_LENGTHS


class TemplateForm(forms.Form):
    name = forms.CharField(max_length=255, help_text="Programs send it by its slug, made from the name.")
    subject = forms.CharField(max_length=MAX_LENGTHS["subject"], required=False)
    from_email = forms.EmailField(max_length=254, required=False, label="From address")
    from_name = forms.CharField(max_length=255, required=False, label="From name")
    code = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 14, "class": "mono", "spellcheck": "false"}),
        required=False,
        label="HTML",
        help_text="Merge tags such as *|FNAME|* and editable regions (mc:edit) are filled when it is sent.",
    )
    text = forms.CharField(widget=forms.Textarea(attrs={"rows": 5}), required=False, label="Plain text")
    labels = forms.CharField(
        max_length=1100, required=False, help_text="Comma-separated, e.g. billing, welcome."
    )

    def __init__(self, *args, editing: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        if editing:  # the slug programs use must not change under them
            self.fields["name"].disabled = True

    def clean_labels(self) -> list[str]:
        return [label.strip() for label in self.cleaned_data["labels"].split(",") if label.strip()]

    def add_domain_error(self, exc) -> None:
        field = exc.field if getattr(exc, "field", None) in self.fields else None
        self.add_error(field, exc.message)


class WebhookForm(forms.Form):
    url = forms.CharField(
        max_length=2000, label="URL", help_text="We check it answers (HEAD, or a test POST) before saving."
    )
    description = forms.CharField(max_length=200, required=False)
    events = forms.MultipleChoiceField(widget=forms.CheckboxSelectMultiple, required=False)
    include_subaccounts = forms.BooleanField(
        required=False, label="Also my subaccounts' message events (each carries msg.subaccount)"
    )

    def __init__(self, *args, event_choices: list[str], is_master: bool, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["events"].choices = [(name, name) for name in event_choices]
        if not is_master:
            del self.fields["include_subaccounts"]

    def add_domain_error(self, exc) -> None:
        field = exc.field if getattr(exc, "field", None) in self.fields else None
        self.add_error(field, exc.message)
