import pytest

from accounts.models import Membership
from mailing.keys import create_api_key
from tests.factories import MasterFactory, MembershipFactory, subaccount_with_owner


@pytest.fixture
def master_key(db):
    """A master account with an owner and an API key: (master, secret)."""
    master = MasterFactory(public_id="northwind")
    owner = MembershipFactory(account=master, role=Membership.Role.OWNER).user
    _, secret = create_api_key(actor=owner, account=master, label="tests")
    return master, secret


@pytest.fixture
def subaccount_key(master_key):
    master, _ = master_key
    sub, owner = subaccount_with_owner(master, public_id="acme", monthly_limit=1000)
    _, secret = create_api_key(actor=owner, account=sub, label="shop")
    return sub, secret
