"""The daily rollup of hourly Usage (accounts/rollup.py): the overview and its CSVs give the same
figures with and without it, across day boundaries, for the agency only, and stay exact when a
rolled-up day's hour changes afterwards."""

import threading
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.db import IntegrityError, connection, transaction

from accounts import quota, reports, rollup
from accounts.lifecycle import delete_subaccount
from accounts.models import DailyUsage, Membership, TrailingUsage, Usage, UsageRollup
from tests.conftest import requires_postgres
from tests.factories import MasterFactory, MembershipFactory, SubaccountFactory

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 24, 10, 30, tzinfo=UTC)


def _hour(sub, start, **counts):
    return Usage.objects.create(
        account=sub, billed_to=sub.parent or sub, window=Usage.Window.HOUR, start=start, **counts
    )


def _agency():
    """A master with two subaccounts sending on each side of two midnights (UTC), today included, and
    another agency sending in the same hours."""
    master = MasterFactory()
    shop, club = SubaccountFactory(parent=master), SubaccountFactory(parent=master)
    midnight = datetime(2026, 11, 24, tzinfo=UTC)
    for start, sub, counts in [
        (midnight - timedelta(days=1, hours=1), shop, {"sent": 3, "delivered": 2}),  # 22 Nov, 23:00
        (midnight - timedelta(days=1), shop, {"sent": 5, "hard_bounced": 1}),  # 23 Nov, 00:00
        (
            midnight - timedelta(hours=1),
            club,
            {"sent": 7, "unique_opens": 4, "complained": 1},
        ),  # 23 Nov, 23:00
        (midnight, club, {"sent": 11, "rejected": 2}),  # today, 00:00
        (midnight + timedelta(hours=10), shop, {"sent": 13, "soft_bounced": 1}),  # today, 10:00
    ]:
        _hour(sub, start, **counts)
    other = SubaccountFactory()
    for hours in range(-30, 10):
        _hour(other, midnight + timedelta(hours=hours), sent=1000, delivered=999)
    return master, shop


def _everything(master):
    """What the overview and its CSVs show for the last 7 days."""
    span = reports.last_days(7, now=NOW)
    return (
        reports.agency_daily(master, span),
        list(reports.daily_csv(master, span)),
        list(reports.subaccounts_csv(master, span)),
    )


def test_the_figures_are_the_same_with_and_without_the_rollup():
    # given
    master, _ = _agency()
    without = _everything(master)
    # when
    marked = rollup.roll_up_closed_days(now=NOW, lookback_days=10)
    # then
    assert marked == 10  # ten closed days, today not among them
    assert not UsageRollup.objects.filter(day=NOW.date()).exists()
    assert _everything(master) == without
    daily = {day["day"]: day for day in without[0]}
    assert daily["2026-11-22"]["sent"] == 3 and daily["2026-11-23"]["sent"] == 12
    assert daily["2026-11-23"]["bounced"] == 1 and daily["2026-11-23"]["opened"] == 4
    assert daily["2026-11-24"]["sent"] == 24 and daily["2026-11-24"]["rejected"] == 2


def test_the_rollup_reads_day_rows_for_closed_days_and_hours_only_for_the_others():
    master, _ = _agency()
    rollup.roll_up_closed_days(now=NOW, lookback_days=10)
    # The hours of closed days are no longer read: changing one behind the rollup's back shows nothing.
    Usage.objects.filter(billed_to=master, start__lt=datetime(2026, 11, 24, tzinfo=UTC)).update(sent=0)
    daily = {day["day"]: day["sent"] for day in reports.agency_daily(master, reports.last_days(7, now=NOW))}
    assert daily["2026-11-22"] == 3 and daily["2026-11-23"] == 12 and daily["2026-11-24"] == 24
    rows = DailyUsage.objects.filter(billed_to=master)
    assert {(row.day.isoformat(), row.sent, row.delivered) for row in rows} == {
        ("2026-11-22", 3, 2),
        ("2026-11-23", 12, 0),
        ("2026-11-24", 11, 0),  # today's row: the hours before 10:00 (the open hour at NOW) folded in
    }


def test_another_agencys_sending_is_never_counted():
    master, _ = _agency()
    other_master = MasterFactory()
    _hour(SubaccountFactory(parent=other_master), datetime(2026, 11, 23, 5, tzinfo=UTC), sent=500)
    rollup.roll_up_closed_days(now=NOW, lookback_days=10)
    mine = reports.agency_daily(master, reports.last_days(7, now=NOW))
    theirs = reports.agency_daily(other_master, reports.last_days(7, now=NOW))
    assert reports.totals(mine)["sent"] == 39
    assert reports.totals(theirs)["sent"] == 500


def test_running_the_rollup_again_changes_nothing():
    _agency()
    assert rollup.roll_up_closed_days(now=NOW, lookback_days=10) == 10
    rows = sorted(DailyUsage.objects.values_list("billed_to_id", "day", "sent"))
    assert rollup.roll_up_closed_days(now=NOW, lookback_days=10) == 0
    assert sorted(DailyUsage.objects.values_list("billed_to_id", "day", "sent")) == rows
    # the next day, only the day that closed meanwhile is rolled up
    assert rollup.roll_up_closed_days(now=NOW + timedelta(days=1), lookback_days=10) == 1


def test_a_scheduled_send_given_back_after_the_rollup_leaves_the_figures_exact():
    # given a send counted yesterday, rolled up
    master, shop = _agency()
    counted_at = datetime(2026, 11, 23, 0, 20, tzinfo=UTC)
    rollup.roll_up_closed_days(now=NOW, lookback_days=10)
    # when it is cancelled and its quota given back
    quota.release_quota(account=shop, n=2, counted_at=counted_at)
    # then the day row and the hour agree
    assert DailyUsage.objects.get(billed_to=master, day="2026-11-23").sent == 10
    assert (
        Usage.objects.get(account=shop, window=Usage.Window.HOUR, start=quota.hour_start(counted_at)).sent
        == 3
    )
    daily = {day["day"]: day["sent"] for day in reports.agency_daily(master, reports.last_days(7, now=NOW))}
    assert daily["2026-11-23"] == 10


def test_an_outcome_recorded_for_a_rolled_up_hour_reaches_its_day_row(monkeypatch):
    master, shop = _agency()
    rollup.roll_up_closed_days(now=NOW, lookback_days=10)
    # a new hour of a closed day (its bill had nothing else that hour) and an existing one
    quota.count_outcome(account=shop, outcome="delivered", n=3, now=datetime(2026, 11, 23, 5, 10, tzinfo=UTC))
    quota.count_outcomes(account=shop, counts={"opens": 2, "unique_opens": 1},
                         now=datetime(2026, 11, 22, 23, 59, tzinfo=UTC))  # fmt: skip
    with_rollup = reports.agency_daily(master, reports.last_days(7, now=NOW))
    # then: the same as read from the hours alone
    monkeypatch.setattr(rollup, "day_rows_reach", lambda first, last: (set(), None))
    assert with_rollup == reports.agency_daily(master, reports.last_days(7, now=NOW))
    assert {day["day"]: day["delivered"] for day in with_rollup}["2026-11-23"] == 3


def test_an_outcome_counted_before_the_rollup_is_counted_once():
    master, shop = _agency()
    quota.count_outcome(account=shop, outcome="delivered", n=3, now=datetime(2026, 11, 23, 5, 10, tzinfo=UTC))
    rollup.roll_up_closed_days(now=NOW, lookback_days=10)
    assert DailyUsage.objects.get(billed_to=master, day="2026-11-23").delivered == 3


def test_days_that_do_not_start_at_utc_midnight_cannot_use_the_day_rows():
    # a UTC day row cannot be split at Paris's midnight: such a range is read from its hours
    assert rollup.covers(datetime(2026, 11, 23, tzinfo=UTC))
    paris = datetime(2026, 11, 23, tzinfo=UTC).astimezone(ZoneInfo("Europe/Paris"))
    assert not rollup.covers(paris)
    assert rollup.covers(datetime(2026, 1, 5, tzinfo=ZoneInfo("Europe/London")))  # GMT in winter: aligned


def test_the_overview_costs_at_most_three_queries_for_its_days(django_assert_max_num_queries):
    master, _ = _agency()
    rollup.roll_up_closed_days(now=NOW, lookback_days=100)
    span = reports.last_days(90, now=NOW)
    with django_assert_max_num_queries(3):
        reports.agency_daily(master, span)


@requires_postgres()
@pytest.mark.django_db(transaction=True)
def test_a_late_write_racing_the_rollup_is_counted_exactly_once():
    # given: yesterday's hour being given back while the rollup runs, many times over
    master = MasterFactory()
    shop = SubaccountFactory(parent=master)
    yesterday = datetime(2026, 11, 23, 9, tzinfo=UTC)
    _hour(shop, yesterday, sent=1000)
    now = datetime.now(UTC)
    errors = []

    def give_back():
        try:
            for _ in range(20):
                quota.release_quota(account=shop, n=1, counted_at=yesterday)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connection.close()

    def roll_up():
        try:
            rollup.roll_up_closed_days(now=now, lookback_days=(now.date() - yesterday.date()).days + 1)
        except Exception as exc:  # pragma: no cover
            errors.append(exc)
        finally:
            connection.close()

    # when
    threads = [threading.Thread(target=give_back), threading.Thread(target=roll_up)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # then: the day row says what the hour says
    assert not errors
    assert Usage.objects.get(account=shop, window=Usage.Window.HOUR, start=yesterday).sent == 980
    assert DailyUsage.objects.get(billed_to=master, day=yesterday.date()).sent == 980


# --- the top subaccounts and the CSV by subaccount, from the trailing figures -------------------------


def _top_and_csv(master, preset="7"):
    span = reports.date_range(preset=preset)
    return reports.top_subaccounts(master, span, limit=2), list(reports.subaccounts_csv(master, span))


def _busy_agency():
    """Today's date is the real one here: the trailing figures are for ranges ending today."""
    master = MasterFactory()
    subs = [SubaccountFactory(parent=master, name=f"Shop {n}") for n in range(4)]
    now = quota.hour_start()
    for days_ago, sub, sent in [(1, subs[0], 50), (2, subs[1], 40), (3, subs[2], 30), (8, subs[3], 500),
                                (0, subs[2], 15), (0, subs[3], 1)]:  # fmt: skip
        _hour(sub, now - timedelta(days=days_ago), sent=sent, delivered=sent - 1, hard_bounced=1)
    other = SubaccountFactory()
    _hour(other, now - timedelta(days=1), sent=9999)
    return master, subs


def test_the_top_and_the_csv_are_the_same_from_trailing_figures_and_from_hours():
    # given
    master, _ = _busy_agency()
    from_hours = _top_and_csv(master)
    # when
    rollup.roll_up_closed_days(lookback_days=10)
    # then
    assert reports._trailing_reach(reports.date_range(preset="7")) is not None
    assert _top_and_csv(master) == from_hours
    top, csv_lines = from_hours
    # Shop 2 (30 + 15 today) passes Shop 1 (40); Shop 3's 500 was 8 days ago, its 1 today counts
    assert [(row["name"], row["sent"], row["bounced"]) for row in top] == [
        ("Shop 0", 50, 1),
        ("Shop 2", 45, 2),
    ]
    assert len(csv_lines) == 5 and "9999" not in "".join(csv_lines)


def test_a_subaccount_deleted_after_the_rollup_keeps_its_name_in_the_top():
    master, subs = _busy_agency()
    rollup.roll_up_closed_days(lookback_days=10)
    admin = MembershipFactory(account=master, role=Membership.Role.ADMIN).user
    delete_subaccount(actor=admin, master=master, subaccount_id=subs[0].pk)
    top, csv_lines = _top_and_csv(master)
    assert top[0]["name"].startswith("Shop 0") and top[0]["state"] == "deleted" and top[0]["sent"] == 50
    from_hours = list(reports._by_subaccount(master, reports.date_range(preset="7")))
    assert len(csv_lines) - 1 == len(from_hours) == 4


def test_an_outcome_recorded_late_reaches_the_trailing_figures():
    master, subs = _busy_agency()
    rollup.roll_up_closed_days(lookback_days=10)
    quota.count_outcome(account=subs[1], outcome="delivered", n=7, now=quota.hour_start() - timedelta(days=2))
    span = reports.date_range(preset="7")
    fast = reports.top_subaccounts(master, span, limit=4)
    slow = list(reports._by_subaccount(master, span).filter(sent__gt=0)[:4])
    assert [(row["account_id"], row["sent"], row["delivered"]) for row in fast] == [
        (row["account_id"], row["sent"], row["delivered"]) for row in slow
    ]


def test_the_trailing_presets_are_the_overviews():
    assert sorted(rollup.TRAILING_DAYS) == sorted(reports.PRESET_DAYS.values())


def test_a_custom_range_and_a_range_before_the_rollup_are_read_from_hours():
    master, _ = _busy_agency()
    assert reports._trailing_reach(reports.date_range(preset="7")) is None  # not rolled up yet
    rollup.roll_up_closed_days(lookback_days=10)
    today = rollup.today_utc()
    custom = reports.date_range(preset="custom", date_from=today - timedelta(days=6), date_to=today)
    assert reports._trailing_reach(custom) is None
    assert reports.top_subaccounts(master, custom, limit=2) == _top_and_csv(master)[0]


# --- today's closed hours folded into the trailing figures every hour -----------------------------------

MIDNIGHT = datetime(2026, 11, 24, tzinfo=UTC)


def _top_and_csv_at(master, preset="7"):
    span = reports.date_range(preset=preset)
    return (
        [
            (row["name"], row["sent"], row["delivered"])
            for row in reports.top_subaccounts(master, span, limit=4)
        ],
        list(reports.subaccounts_csv(master, span)),
    )


def _from_hours(master, monkeypatch, preset="7"):
    """The same figures read from the hours alone, as before any rollup."""
    with monkeypatch.context() as patched:
        patched.setattr(reports, "_trailing_reach", lambda span: None)
        return _top_and_csv_at(master, preset)


def _daily_from_hours(master, monkeypatch):
    with monkeypatch.context() as patched:
        patched.setattr(rollup, "day_rows_reach", lambda first, last: (set(), None))
        return reports.agency_daily(master, reports.date_range(preset="7"))


def _agency_sending_today():
    """Three subaccounts: one that sent on closed days and this morning, one only this morning (no row
    of its own in the trailing figures yet), one in the open hour; and a deleted one, told apart by its
    kept label."""
    master = MasterFactory()
    shop, club, late = (SubaccountFactory(parent=master, name=name) for name in ("Shop", "Club", "Late"))
    _hour(shop, MIDNIGHT - timedelta(days=2), sent=40, delivered=40)
    _hour(shop, MIDNIGHT + timedelta(hours=3), sent=5, delivered=4)
    _hour(club, MIDNIGHT + timedelta(hours=7), sent=30, delivered=30)
    _hour(late, MIDNIGHT + timedelta(hours=10), sent=50, delivered=1)  # the open hour at NOW (10:30)
    Usage.objects.create(account=None, account_label="Gone (deleted)", billed_to=master,
                         window=Usage.Window.HOUR, start=MIDNIGHT + timedelta(hours=4), sent=20)  # fmt: skip
    Usage.objects.create(account=None, account_label="Gone (deleted)", billed_to=master,
                         window=Usage.Window.HOUR, start=MIDNIGHT + timedelta(hours=10), sent=3)  # fmt: skip
    return master, shop, club, late


def test_todays_closed_hours_are_folded_and_the_figures_stay_the_same(monkeypatch):
    with time_machine.travel(NOW, tick=False):
        # given
        master, shop, club, _ = _agency_sending_today()
        expected = _from_hours(master, monkeypatch)
        # when
        rollup.roll_up_closed_days(lookback_days=10)
        # then: hours before 10:00 are in the trailing figures, the open hour is not
        reach = reports._trailing_reach(reports.date_range(preset="7"))
        assert reach.hours_until == MIDNIGHT + timedelta(hours=10)
        trailing = TrailingUsage.objects.filter(days=7, through=reach.through)
        assert trailing.get(account=shop).sent == 45
        assert trailing.get(account=club).sent == 30  # created by the fold: nothing on closed days
        assert trailing.get(account=None, account_label="Gone (deleted)").sent == 20
        assert not trailing.filter(account__name="Late").exists()
        assert _top_and_csv_at(master) == expected
        assert expected[0] == [("Late", 50, 1), ("Shop", 45, 44), ("Club", 30, 30), ("Gone (deleted)", 23, 0)]
        # and today's row of the bill holds the same hours, which the chart adds to the open hour's
        assert DailyUsage.objects.get(billed_to=master, day=MIDNIGHT.date()).sent == 5 + 30 + 20
        daily = reports.agency_daily(master, reports.date_range(preset="7"))
        assert daily == _daily_from_hours(master, monkeypatch)
        assert daily[-1]["sent"] == 5 + 30 + 20 + 50 + 3


def test_each_hour_is_folded_once_however_often_the_rollup_runs(monkeypatch):
    with time_machine.travel(NOW, tick=False) as clock:
        master, _, club, late = _agency_sending_today()
        rollup.roll_up_closed_days(lookback_days=10)
        rollup.roll_up_closed_days(lookback_days=10)
        # two hours later, with sending in between
        clock.move_to(NOW + timedelta(hours=2))
        _hour(club, MIDNIGHT + timedelta(hours=11), sent=6, delivered=6)
        expected = _from_hours(master, monkeypatch, preset="30")
        rollup.roll_up_closed_days(lookback_days=10)
        rollup.roll_up_closed_days(lookback_days=10)
        reach = reports._trailing_reach(reports.date_range(preset="30"))
        assert reach.hours_until == MIDNIGHT + timedelta(hours=12)
        assert TrailingUsage.objects.get(account=club, days=30).sent == 36
        assert TrailingUsage.objects.get(account=late, days=30).sent == 50
        assert _top_and_csv_at(master, preset="30") == expected
        # a fold never waits less than FOLD_GRACE after an hour closes: at 12:03, 12:00 is too fresh
        clock.move_to(MIDNIGHT + timedelta(hours=13, minutes=3))
        rollup.roll_up_closed_days(lookback_days=10)
        assert reports._trailing_reach(reports.date_range(preset="30")).hours_until == reach.hours_until


def test_an_outcome_recorded_late_for_a_folded_hour_of_today_is_counted_once(monkeypatch):
    with time_machine.travel(NOW, tick=False):
        master, shop, club, _ = _agency_sending_today()
        rollup.roll_up_closed_days(lookback_days=10)
        # a folded hour (03:00) and an hour of today nobody had sent in (06:00), then the open hour
        quota.count_outcome(
            account=shop, outcome="delivered", n=7, now=MIDNIGHT + timedelta(hours=3, minutes=5)
        )
        quota.count_outcome(account=club, outcome="delivered", n=2, now=MIDNIGHT + timedelta(hours=6))
        quota.count_outcome(account=club, outcome="delivered", n=9, now=NOW)
        assert TrailingUsage.objects.get(account=shop, days=7).delivered == 44 + 7
        assert TrailingUsage.objects.get(account=club, days=7).delivered == 30 + 2
        assert _top_and_csv_at(master) == _from_hours(master, monkeypatch)
        assert DailyUsage.objects.get(billed_to=master, day=MIDNIGHT.date()).delivered == 4 + 30 + 7 + 2
        assert reports.agency_daily(master, reports.date_range(preset="7")) == _daily_from_hours(
            master, monkeypatch
        )


def test_a_write_to_the_open_hour_costs_no_query_to_keep_in_step(django_assert_num_queries):
    with time_machine.travel(NOW, tick=False):
        master, shop, _, _ = _agency_sending_today()
        rollup.roll_up_closed_days(lookback_days=10)
        with django_assert_num_queries(0):
            rollup.keep_in_step(account_id=shop.pk, billed_to_id=master.pk, start=quota.hour_start(),
                                changes={"delivered": 1})  # fmt: skip


def test_the_trailing_figures_hold_one_row_per_account_and_preset():
    with time_machine.travel(NOW, tick=False):
        _, shop, _, _ = _agency_sending_today()
        rollup.roll_up_closed_days(lookback_days=10)
        row = TrailingUsage.objects.filter(account=shop, days=7).values("billed_to_id", "through").get()
        with pytest.raises(IntegrityError), transaction.atomic():
            TrailingUsage.objects.create(account=shop, days=7, **row)


@requires_postgres()
@pytest.mark.django_db(transaction=True)
def test_a_late_write_to_todays_hour_racing_the_fold_is_counted_exactly_once():
    # given: an hour of this morning counted late, many times over, while the rollup folds the morning
    # (the clock set to 10:30 and ticking, in every thread)
    with time_machine.travel(NOW, tick=True):
        master = MasterFactory()
        shop = SubaccountFactory(parent=master)
        morning = MIDNIGHT + timedelta(minutes=10)
        _hour(shop, quota.hour_start(morning), sent=100)
        rollup.roll_up_closed_days(now=MIDNIGHT + timedelta(minutes=1), lookback_days=2)  # built, none folded
        errors = []

        def count_late():
            try:
                for _ in range(20):
                    quota.count_outcome(account=shop, outcome="delivered", n=1, now=morning)
            except Exception as exc:  # pragma: no cover - reported below
                errors.append(exc)
            finally:
                connection.close()

        def fold():
            try:
                rollup.roll_up_closed_days(lookback_days=2)
            except Exception as exc:  # pragma: no cover
                errors.append(exc)
            finally:
                connection.close()

        threads = [threading.Thread(target=count_late), threading.Thread(target=fold)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        # then: the morning was folded, and the trailing figures and today's row say what the hour says
        assert not errors
        assert rollup.trailing_for(MIDNIGHT.date()).hours_until == MIDNIGHT + timedelta(hours=10)
        hour = Usage.objects.get(account=shop, window=Usage.Window.HOUR, start=quota.hour_start(morning))
        assert hour.delivered == 20
        for days in rollup.TRAILING_DAYS:
            assert TrailingUsage.objects.get(account=shop, days=days).delivered == 20
        assert DailyUsage.objects.get(billed_to=master, day=MIDNIGHT.date()).delivered == 20


@pytest.mark.parametrize("seed", range(8))
def test_the_top_found_among_few_candidates_is_the_top_of_every_account(seed, monkeypatch):
    # given: subaccounts with random sending on closed days, this morning (folded) and in the open hour,
    # some only in the open hour, one deleted; ranks close enough for the open hour to change them
    import random

    rng = random.Random(seed)
    with time_machine.travel(NOW, tick=False):
        master = MasterFactory()
        subs = [SubaccountFactory(parent=master, name=f"Shop {n}") for n in range(9)]
        for sub in subs:
            for _ in range(rng.randrange(3)):
                _hour(sub, MIDNIGHT - timedelta(days=rng.randrange(1, 6), hours=rng.randrange(24)),
                      sent=rng.randrange(1, 40), delivered=rng.randrange(5))  # fmt: skip
            if rng.random() < 0.5:
                _hour(sub, MIDNIGHT + timedelta(hours=rng.randrange(10)), sent=rng.randrange(1, 20))
            if rng.random() < 0.5:
                _hour(sub, MIDNIGHT + timedelta(hours=10), sent=rng.randrange(1, 60), delivered=1)
        Usage.objects.create(account=None, account_label="Gone (deleted)", billed_to=master, window=Usage.Window.HOUR,
                             start=MIDNIGHT + timedelta(hours=10), sent=rng.randrange(1, 60))  # fmt: skip
        expected = _from_hours(master, monkeypatch)
        # when
        rollup.roll_up_closed_days(lookback_days=10)
        # then
        assert reports._trailing_reach(reports.date_range(preset="7")) is not None
        assert _top_and_csv_at(master) == expected


@pytest.mark.parametrize("preset", ["7", "30", "90"])
def test_the_range_and_the_month_are_read_together_with_the_same_figures(
    preset, django_assert_max_num_queries
):
    with time_machine.travel(NOW, tick=False):
        master, *_ = _agency_sending_today()
        _hour(SubaccountFactory(parent=master), datetime(2026, 11, 2, 5, tzinfo=UTC), sent=7)  # this month
        rollup.roll_up_closed_days(lookback_days=100)
        span = reports.date_range(preset=preset)
        month = reports.DateRange(first=MIDNIGHT.date().replace(day=1), last=MIDNIGHT.date())
        with django_assert_max_num_queries(3):
            daily, month_days = reports.range_and_month(master, span)
        assert daily == reports.agency_daily(master, span)
        assert month_days == reports.agency_daily(master, month)
        assert reports.totals(month_days)["sent"] == 40 + 5 + 30 + 50 + 20 + 3 + 7
    # a range that does not end today leaves the month to its reader
    past = reports.date_range(
        preset="custom", date_from=date(2026, 10, 1), date_to=date(2026, 10, 31), now=NOW
    )
    with time_machine.travel(NOW, tick=False):
        assert reports.range_and_month(master, past)[1] is None
