from django.apps import AppConfig


class MailingConfig(AppConfig):
    name = "mailing"
    verbose_name = "Mailing"

    def ready(self) -> None:
        from accounts.signals import account_resumed

        account_resumed.connect(_release_held_mail, dispatch_uid="mailing.release_held_mail")


def _release_held_mail(sender, account, **kwargs) -> None:
    """A resumed account's held mail goes out, oldest first. Released in the database here (not in a task)
    so that a broker outage at that moment only delays it: the sweep picks up queued mail."""
    from .delivery import release_held
    from .tasks import enqueue_delivery

    enqueue_delivery(release_held(account))
