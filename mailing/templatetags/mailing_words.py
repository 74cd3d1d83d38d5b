"""Template filters for the mailing pages: a message's state and its reason, in words."""

from django import template

from mailing.wording import Outcome, describe

register = template.Library()


@register.filter
def outcome(message) -> Outcome:
    return describe(message)
