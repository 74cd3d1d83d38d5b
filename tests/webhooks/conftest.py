import pytest
from django.utils import timezone

from accounts.models import Membership
from mailing.models import Message, MessageEvent
from tests.factories import MasterFactory, MembershipFactory, SubaccountFactory

from .receiver import Receiver, start


@pytest.fixture(autouse=True)
def _webhook_settings(settings):
    settings.WEBHOOK_SETTLE_SECONDS = 0
    settings.WEBHOOK_TIMEOUT_SECONDS = 1.0
    settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES = True


@pytest.fixture
def receiver():
    got = Receiver()
    server = start(got)
    yield got
    server.shutdown()
    server.server_close()


@pytest.fixture
def master_admin(db):
    master = MasterFactory()
    admin = MembershipFactory(account=master, role=Membership.Role.ADMIN).user
    return master, admin


def make_event(account, kind, *, to="rcpt@example.test", data=None, diagnostic="", **message_fields):
    message = Message.objects.create(
        account=account, from_email="news@shop.test", to_email=to, subject=message_fields.pop("subject", "Hello"),
        status=message_fields.pop("status", Message.Status.SENT), sent_at=timezone.now(), **message_fields,
    )  # fmt: skip
    return MessageEvent.objects.create(
        message=message, account=account, kind=kind, diagnostic=diagnostic, data=data or {}
    )


@pytest.fixture
def sub_of():
    def make(master, **fields):
        return SubaccountFactory(parent=master, **fields)

    return make
