"""Template filters for the mailing pages: a message's state and its reason, in words."""

from django import template

from mailing.domains import DnsRecord, records_to_publish
from mailing.wording import Outcome, describe

register = template.Library()


@register.filter
def outcome(message) -> Outcome:
    return describe(message)


@register.filter
def dns_records(sender_domain) -> list[DnsRecord]:
    return records_to_publish(sender_domain)
