"""A bounce's diagnostic in words, with its codes, and the timeline's entries for any kind of event."""

import pytest

from mailing.models import MessageEvent
from mailing.wording import describe_diagnostic, timeline_entry


@pytest.mark.parametrize(
    ("diagnostic", "status", "code", "words"),
    [
        ("550 5.1.1 <jane@example.com>: user unknown", None, None, "Mailbox does not exist (550 5.1.1)"),
        ("Recipient address rejected", "5.1.1", 550, "Mailbox does not exist (550 5.1.1)"),
        ("552 5.2.2 Quota exceeded", None, None, "The mailbox is full (552 5.2.2)"),
        (
            "RESOLVER.ADR.RecipientNotFound",
            "5.1.10",
            550,
            "The recipient's domain accepts no mail (550 5.1.10)",
        ),
        ("451 4.7.0 try later", None, None, "Refused for security or policy reasons (451 4.7.0)"),
        ("5.9.9 odd", None, None, "The recipient's server refused the message (5.9.9)"),
        (
            "554: delivery error: dd This user doesn't have an account",
            None,
            554,
            "Refused by the recipient's server (554)",
        ),
        ("", None, None, "The recipient's server gave no reason"),
    ],
)
def test_a_diagnostic_in_words(diagnostic, status, code, words):
    assert describe_diagnostic(diagnostic, status=status, smtp_code=code) == words


def test_the_timeline_reads_any_kind_even_one_it_does_not_know():
    bounce = MessageEvent(kind="hard_bounce", diagnostic="550 5.1.1 no such user", data={})
    assert timeline_entry(bounce).label == "Hard bounce"
    assert timeline_entry(bounce).words == "Mailbox does not exist (550 5.1.1)"
    click = MessageEvent(kind="click", data={"url": "https://shop.test/offer"})
    assert (timeline_entry(click).label, timeline_entry(click).words) == (
        "Clicked",
        "Followed https://shop.test/offer",  # open and click words come with tracking (mailing/tracking/)
    )
    scanner = MessageEvent(kind="click", data={"url": "https://shop.test/offer", "bot": True})
    assert timeline_entry(scanner).words == (
        "Followed https://shop.test/offer (by a mail proxy or link scanner, not counted)"
    )
    assert timeline_entry(MessageEvent(kind="reject", data={"reason": "unsub"})).words == (
        "Not sent: the recipient unsubscribed."
    )
    future = MessageEvent(kind="whitelist", data={})
    assert timeline_entry(future).label == "whitelist"
