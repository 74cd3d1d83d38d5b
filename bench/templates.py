"""Templates and merge, in-process.

`messages/send`'s accept beside `send-template`'s (the template looked up,
its mc:edit regions filled, merged per recipient with their own merge vars), 1 and 100 recipients a call,
one thread, on one subaccount; and the rendering alone, per recipient, in both languages."""

from __future__ import annotations

import time
from unittest import mock

from bench import common

CALLS = {1: 600, 100: 20}
CODE = (
    '<html><body><h1 mc:edit="title">Your order</h1><p>Hello *|FNAME|*,</p>'
    "<p>*|IF:VIP|*Thanks for staying with us.*|ELSE:|*Thanks for your order.*|END:IF|*</p>"
    + "<p>Line of the receipt with some text in it.</p>" * 40
    + "<p>Order *|ORDER|*, *|CURRENT_YEAR|*</p></body></html>"
)
HANDLEBARS = (
    CODE.replace("*|FNAME|*", "{{fname}}")
    .replace("*|ORDER|*", "{{order}}")
    .replace(
        "*|IF:VIP|*Thanks for staying with us.*|ELSE:|*Thanks for your order.*|END:IF|*",
        "{{#if vip}}Thanks for staying with us.{{else}}Thanks for your order.{{/if}}",
    )
    .replace("*|CURRENT_YEAR|*", "{{date 'Y'}}")
)


def _outgoing(n: int, *, templated: bool):
    from mailing.outgoing import OutgoingMessage, Recipient

    recipients = [Recipient(email=f"customer{i}@example.test") for i in range(n)]
    merge_vars = [{"rcpt": r.email, "vars": [{"name": "FNAME", "content": f"Name {i}"}, {"name": "ORDER", "content": str(i)}]}
                  for i, r in enumerate(recipients)] if templated else None  # fmt: skip
    return OutgoingMessage(
        from_email="news@sender.example", subject="Your receipt *|ORDER|*" if templated else "Your receipt",
        text="Thanks", html="" if templated else CODE, recipients=recipients, merge_vars=merge_vars,
    )  # fmt: skip


def _rate(sub, template, n: int, templated: bool) -> float:
    from mailing import templates
    from mailing.sending import accept_messages

    calls = CALLS[n]
    started = time.perf_counter()
    with mock.patch("mailing.sending.enqueue_delivery"):
        for _ in range(calls):
            message = _outgoing(n, templated=templated)
            if templated:
                message = templates.message_from_template(
                    template, message, [{"name": "title", "content": "Receipt"}]
                )
            accept_messages(account=sub, message=message)
    return calls * n / (time.perf_counter() - started)


def _render_cost(language: str) -> float:
    """Microseconds to merge one recipient's subject, HTML and text."""
    from mailing.outgoing import OutgoingMessage, Recipient
    from mailing.personalisation import personalise

    recipients = [Recipient(email=f"r{i}@example.test") for i in range(500)]
    message = OutgoingMessage(
        from_email="a@b.example", subject="Order {{order}}" if language == "handlebars" else "Order *|ORDER|*",
        html=HANDLEBARS if language == "handlebars" else CODE, text="x", recipients=recipients, merge=True,
        merge_language=language, global_merge_vars=[{"name": "fname", "content": "Ana"}, {"name": "order", "content": "7"}],
    )  # fmt: skip
    from django.utils import timezone

    started = time.perf_counter()
    personalise(message, recipients, now=timezone.now())
    return (time.perf_counter() - started) / len(recipients) * 1e6


def main() -> None:
    from accounts.models import Account
    from mailing import templates

    common.progress("templates: resetting the database")
    common.reset_database()
    master, owner = common.make_master("Template Agency", "template-agency")
    sub = Account.objects.create(kind=Account.Kind.SUBACCOUNT, parent=master, public_id="tpl-shop", name="Shop",
                                 contact_email="tpl@bench.test", monthly_limit=2_000_000_000)  # fmt: skip
    template = templates.add_template(actor=owner, account=master, name="Receipt", code=CODE, subject="Receipt *|ORDER|*",
                                      from_email="news@sender.example")  # fmt: skip
    templates.share_template(
        actor=owner, master=master, name="receipt", subaccount_ids=[], all_subaccounts=True
    )
    rows = []
    for n in (1, 100):
        plain = _rate(sub, template, n, templated=False)
        merged = _rate(sub, template, n, templated=True)
        rows.append([n, f"{plain:,.0f}", f"{merged:,.0f}", f"{merged / plain:.2f}"])
        common.progress(f"templates: {n} recipients: send {plain:,.0f}/s, send-template {merged:,.0f}/s")
    costs = [[language, f"{_render_cost(language):,.0f}"] for language in ("mailchimp", "handlebars")]
    print("## Templates and merge (`bench/templates.py`)\n")
    print(__doc__.split("\n", 1)[1].strip() + f" The template is {len(CODE):,} characters of HTML.\n")
    print(
        common.table(
            ["recipients per call", "send (messages/s)", "send-template, merged (messages/s)", "ratio"], rows
        )
    )
    print()
    print(common.table(["language", "merge per recipient (µs)"], costs))
