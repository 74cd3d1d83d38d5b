"""Start a deployment: a master account and its owner."""

import secrets

from allauth.account.models import EmailAddress
from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.management.base import BaseCommand, CommandError
from django.core.validators import validate_email
from django.db import transaction
from django.utils.text import slugify

from accounts.audit import record
from accounts.models import Account, Membership, User


class Command(BaseCommand):
    help = "Create a master (agency) account and its owner. Prints the account's id."

    def add_arguments(self, parser):
        parser.add_argument("name", help="The agency's name")
        parser.add_argument("email", help="The owner's login email")
        parser.add_argument(
            "--password", help="The owner's password (a random one is generated and printed if omitted)"
        )
        parser.add_argument("--monthly-limit", type=int, default=settings.MASTER_DEFAULT_MONTHLY_LIMIT)
        parser.add_argument("--id", dest="public_id", help="The account's id (default: from the name)")

    def handle(
        self,
        *args,
        name: str,
        email: str,
        password: str | None,
        monthly_limit: int,
        public_id: str | None,
        **options,
    ):
        email = email.strip().lower()
        try:
            validate_email(email)
        except DjangoValidationError:
            raise CommandError(f"{email!r} is not a valid email address.") from None
        if not name.strip():
            raise CommandError("The name may not be empty.")
        if monthly_limit <= 0:
            raise CommandError("--monthly-limit must be greater than zero.")
        if User.objects.filter(email__iexact=email).exists():
            raise CommandError(f"A login for {email} already exists.")
        public_id = public_id or slugify(name) or "master"
        if Account.objects.filter(parent__isnull=True, public_id=public_id).exists():
            raise CommandError(f"An account with id {public_id} already exists; pass --id.")
        generated = password is None
        password = password or secrets.token_urlsafe(12)
        with transaction.atomic():
            master = Account.objects.create(
                kind=Account.Kind.MASTER, public_id=public_id, name=name.strip(), contact_email=email,
                monthly_limit=monthly_limit, alert_thresholds=[80, 95],
            )  # fmt: skip
            owner = User.objects.create_user(email=email, password=password)
            Membership.objects.create(user=owner, account=master, role=Membership.Role.OWNER)
            EmailAddress.objects.create(user=owner, email=email, primary=True, verified=True)
            record(
                actor=None,
                account=master,
                action="master.created",
                after={"name": master.name, "owner": email},
            )
        self.stdout.write(f"Created master account {master.name} for {email}.")
        if generated:
            self.stdout.write(f"Password: {password}")
        self.stdout.write(master.public_id)
