import factory
from allauth.account.models import EmailAddress

from accounts.models import Account, Membership, User

PASSWORD = "correct-horse-battery-9"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"user{n}@example.test")
    password = factory.PostGenerationMethodCall("set_password", PASSWORD)

    @factory.post_generation
    def verified(self, create, extracted, **kwargs):
        if create:
            self.save()
            EmailAddress.objects.get_or_create(
                user=self, email=self.email, defaults={"primary": True, "verified": True}
            )


class MasterFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Account

    kind = Account.Kind.MASTER
    name = factory.Sequence(lambda n: f"Agency {n}")
    public_id = factory.Sequence(lambda n: f"agency-{n}")
    contact_email = factory.Sequence(lambda n: f"agency{n}@example.test")
    monthly_limit = 1_000_000
    alert_thresholds = [80, 95]


class SubaccountFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Account

    kind = Account.Kind.SUBACCOUNT
    parent = factory.SubFactory(MasterFactory)
    name = factory.Sequence(lambda n: f"Customer {n}")
    public_id = factory.Sequence(lambda n: f"customer-{n}")
    contact_email = factory.Sequence(lambda n: f"customer{n}@example.test")
    monthly_limit = 1000


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    user = factory.SubFactory(UserFactory)
    account = factory.SubFactory(MasterFactory)
    role = Membership.Role.ADMIN


def subaccount_with_owner(
    master: Account | None = None, *, accepted: bool = True, **fields
) -> tuple[Account, User]:
    """A subaccount and its owner; `accepted=False` gives an owner who has not set a password yet."""
    sub = SubaccountFactory(parent=master or MasterFactory(), **fields)
    owner = UserFactory(email=sub.contact_email)
    if not accepted:
        owner.set_unusable_password()
        owner.save()
    MembershipFactory(user=owner, account=sub, role=Membership.Role.OWNER)
    return sub, owner


BODY_FIELDS = ("text", "html", "headers", "attachments")


def _stored_body(fields: dict) -> dict:
    """`fields` with its body fields (text, html, headers, attachments: any of them) stored once as the
    account's MessageContent, as the accept path stores them, and replaced by the content's id."""
    from django.utils import timezone

    from mailing import bodies

    given = {name: fields.pop(name) for name in BODY_FIELDS if name in fields}
    if given:
        body = bodies.body(
            text=given.get("text", ""),
            html=given.get("html", ""),
            headers=given.get("headers", {}),
            attachments=given.get("attachments", []),
        )
        account_id = fields["account"].pk if "account" in fields else fields["account_id"]
        [fields["content_id"]] = bodies.store(account_id, [body], now=timezone.now())
    return fields


def create_message(**fields):
    """A Message with its body stored as the accept path stores it."""
    from mailing.models import Message

    return Message.objects.create(**_stored_body(fields))


def create_archived(**fields):
    """An ArchivedMessage pointing at its body, stored as the accept path stores it."""
    from mailing.models import ArchivedMessage

    return ArchivedMessage.objects.create(**_stored_body(fields))
