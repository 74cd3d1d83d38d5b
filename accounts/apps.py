from allauth.account.apps import AccountConfig as AllauthAccountConfig
from django.apps import AppConfig


class AccountsConfig(AppConfig):
    default = True  # this module defines (and imports) other configs too: "accounts" means this one
    name = "accounts"
    verbose_name = "Accounts, people and usage"

    def ready(self) -> None:
        from . import impersonation_session

        impersonation_session.connect_signals()


class LoginEmailsConfig(AllauthAccountConfig):
    """allauth's account app, named for what the admin shows of it: it is also called "Accounts",
    which gave the admin two sections of that name."""

    verbose_name = "Login email addresses"
