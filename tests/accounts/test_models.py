import pytest
from django.db import IntegrityError, transaction

from accounts.models import Account, Membership
from tests.factories import MasterFactory, MembershipFactory, SubaccountFactory, UserFactory

pytestmark = pytest.mark.django_db


def _violates(**fields) -> bool:
    try:
        with transaction.atomic():
            Account.objects.create(name="X", contact_email="x@example.test", monthly_limit=10, **fields)
    except IntegrityError:
        return True
    return False


def test_a_subaccount_must_have_a_parent():
    assert _violates(kind=Account.Kind.SUBACCOUNT, public_id="orphan")


def test_a_master_must_not_have_a_parent():
    assert _violates(kind=Account.Kind.MASTER, public_id="child-master", parent=MasterFactory())


def test_a_standalone_account_must_not_have_a_parent():
    assert _violates(kind=Account.Kind.STANDALONE, public_id="child-standalone", parent=MasterFactory())


def test_public_id_is_unique_within_a_master():
    sub = SubaccountFactory(public_id="shop")
    with pytest.raises(IntegrityError):
        SubaccountFactory(parent=sub.parent, public_id="shop")


def test_the_same_public_id_is_allowed_under_two_masters():
    SubaccountFactory(public_id="shop")
    SubaccountFactory(public_id="shop")
    assert Account.objects.filter(public_id="shop").count() == 2


def test_top_level_public_ids_are_unique():
    MasterFactory(public_id="agency")
    with pytest.raises(IntegrityError):
        MasterFactory(public_id="agency")


@pytest.mark.parametrize("field, value", [("monthly_limit", 0), ("hourly_limit", 0)])
def test_limits_must_be_positive(field, value):
    master = MasterFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        SubaccountFactory(parent=master, **{field: value})


def test_unknown_status_is_refused_by_the_database():
    assert _violates(kind=Account.Kind.MASTER, public_id="weird", status="frozen")


def test_an_agency_may_have_several_owners():
    # the team page keeps at least one and a subaccount at one (accounts/team.py, tests/accounts/test_team.py)
    master = MasterFactory()
    MembershipFactory(account=master, role=Membership.Role.OWNER)
    MembershipFactory(account=master, role=Membership.Role.OWNER)
    assert master.memberships.filter(role=Membership.Role.OWNER).count() == 2


def test_a_user_belongs_to_one_account():
    membership = MembershipFactory()
    with pytest.raises(IntegrityError):
        MembershipFactory(user=membership.user, account=MasterFactory())


def test_emails_are_unique_whatever_their_case():
    UserFactory(email="someone@example.test")
    with pytest.raises(IntegrityError):
        UserFactory(email="SOMEONE@example.test")
