"""Template filters shared by the dashboard's pages."""

from django import template

register = template.Library()


@register.filter
def percent_of(used: int | None, limit: int | None) -> int:
    """Whole percent of `limit` used, rounded down: 89.9 % used is "89%", never a premature 100."""
    if not limit:
        return 0
    return (used or 0) * 100 // limit
