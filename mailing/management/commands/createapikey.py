from django.core.management.base import BaseCommand, CommandError

from accounts.errors import DomainError
from accounts.models import Membership, User
from mailing.keys import create_api_key


class Command(BaseCommand):
    help = "Create an API key for the account EMAIL's user belongs to. Prints the key alone on the last line."

    def add_arguments(self, parser):
        parser.add_argument("email")
        parser.add_argument("--label", default="Created from the command line")

    def handle(self, *args, email: str, label: str, **options):
        user = User.objects.filter(email__iexact=email.strip()).first()
        membership = Membership.objects.select_related("account").filter(user=user).first() if user else None
        if membership is None:
            raise CommandError(f"No account has a member with the email {email}.")
        if not membership.can_manage:
            # An operator's command acts for the account's owner: the key is the account's, not the user's.
            owner = Membership.objects.filter(account=membership.account, role=Membership.Role.OWNER).first()
            user = owner.user if owner else user
        try:
            api_key, secret = create_api_key(actor=user, account=membership.account, label=label)
        except DomainError as exc:
            raise CommandError(exc.message) from None
        self.stdout.write(
            f"API key “{api_key.label}” for {membership.account} (username {membership.account.public_id}):"
        )
        self.stdout.write(secret)
