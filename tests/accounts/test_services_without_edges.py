"""Rules that used to live in an edge, now services any edge can call: many targets at once, Mandrill's
no-op pause and resume, the log-in-as time box, and the registry of API calls."""

from datetime import timedelta

import pytest
from django.utils import timezone

from accounts import impersonation, lifecycle
from accounts.models import Account, AuditEvent, Membership
from mailing.api import endpoint  # noqa: F401  (registers the handlers)
from mailing.api.registry import api_call
from tests.factories import MasterFactory, MembershipFactory, SubaccountFactory

pytestmark = pytest.mark.django_db


def _admin(master):
    return MembershipFactory(account=master, role=Membership.Role.ADMIN).user


def test_apply_to_many_reports_each_target_and_one_refusal_stops_nothing():
    # given: one active, one already paused, and another agency's subaccount
    master = MasterFactory()
    admin = _admin(master)
    active = SubaccountFactory(parent=master, name="Active")
    paused = SubaccountFactory(parent=master, name="Paused", status=Account.Status.PAUSED)
    foreign = SubaccountFactory(name="Foreign")
    # when
    outcomes = lifecycle.apply_to_many(
        actor=admin, master=master, action="pause", subaccount_ids=[active.pk, paused.pk, foreign.pk]
    )
    # then
    assert [(o.subaccount_id, o.done) for o in outcomes] == [
        (active.pk, True),
        (paused.pk, False),
        (foreign.pk, False),
    ]
    assert outcomes[0].name == "Active"
    assert "not active" in outcomes[1].reason
    assert outcomes[2].reason == f"#{foreign.pk}: no such subaccount"
    active.refresh_from_db()
    foreign.refresh_from_db()
    assert active.status == Account.Status.PAUSED and foreign.status == Account.Status.ACTIVE
    assert list(AuditEvent.objects.values_list("action", flat=True)) == ["subaccount.paused"]


def test_apply_to_many_sets_a_monthly_limit_and_refuses_a_viewer_for_each():
    master = MasterFactory()
    subs = [SubaccountFactory(parent=master, monthly_limit=10) for _ in range(2)]
    outcomes = lifecycle.apply_to_many(
        actor=_admin(master), master=master, action="set_monthly_limit",
        subaccount_ids=[s.pk for s in subs], monthly_limit=500,
    )  # fmt: skip
    assert all(o.done for o in outcomes)
    assert set(
        Account.objects.filter(pk__in=[s.pk for s in subs]).values_list("monthly_limit", flat=True)
    ) == {500}
    viewer = MembershipFactory(account=master, role=Membership.Role.VIEWER).user
    refused = lifecycle.apply_to_many(
        actor=viewer, master=master, action="pause", subaccount_ids=[subs[0].pk]
    )
    assert not refused[0].done and "owner or admin" in refused[0].reason


def test_pause_if_needed_leaves_a_paused_subaccount_alone_and_audits_nothing():
    master = MasterFactory()
    sub = SubaccountFactory(parent=master, status=Account.Status.PAUSED)
    lifecycle.pause_subaccount(actor=_admin(master), master=master, subaccount_id=sub.pk, if_needed=True)
    assert not AuditEvent.objects.exists()
    with pytest.raises(lifecycle.InvalidTransition):  # without if_needed it is still a wrong state
        lifecycle.pause_subaccount(actor=_admin(master), master=master, subaccount_id=sub.pk)


def test_resume_if_needed_still_refuses_a_closed_subaccount():
    master = MasterFactory()
    sub = SubaccountFactory(parent=master, status=Account.Status.CLOSED)
    with pytest.raises(lifecycle.InvalidTransition):
        lifecycle.resume_subaccount(actor=_admin(master), master=master, subaccount_id=sub.pk, if_needed=True)


def test_the_visit_time_box_is_a_rule_without_a_request(settings):
    settings.IMPERSONATION_MAX_MINUTES = 60
    started = timezone.now() - timedelta(minutes=59)
    assert impersonation.visit_ends_at(started) == started + timedelta(minutes=60)
    assert not impersonation.visit_has_expired(started)
    assert impersonation.visit_has_expired(started, now=started + timedelta(minutes=61))
    assert not impersonation.visit_has_expired(None)


def test_the_registry_takes_only_mandrills_calls():
    with pytest.raises(ValueError, match="not a Mandrill call"):
        api_call("users", "make-coffee")
    with pytest.raises(ValueError, match="two handlers"):
        api_call("users", "ping")(lambda call: None)
