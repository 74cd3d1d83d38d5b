"""User agents that fetch a pixel or a link without a person: image proxies that prefetch every image of a
message, and security scanners that follow every link before the recipient sees it. Their events are
recorded (marked `data.bot = true`, so a webhook consumer can tell) but not counted as opens or clicks.

The list is small on purpose and matched as case-insensitive substrings; extend it when a proxy or scanner
shows up in the events. Apple Mail Privacy Protection fetches through Apple's proxy with a generic
"Mozilla/5.0" agent that cannot be told apart by its user agent alone; it is not recognised here.
"""

from __future__ import annotations

BOT_AGENTS = (
    "googleimageproxy",  # Gmail's image proxy (fetches once per message, then caches)
    "yahoomailproxy",  # Yahoo Mail's image proxy
    "ymailimageproxy",  # Yahoo's image proxy, older name
    "apple-mail-privacy",  # Apple Mail Privacy Protection, where it says so
    "outlook-ios-prefetch",  # Outlook's link prefetch
    "ms-office",  # Microsoft Office link checks (Safe Links preview)
    "microsoft office existence discovery",
    "barracuda",  # Barracuda link protection
    "mimecast",  # Mimecast URL protect
    "proofpoint",  # Proofpoint URL defense
    "symantec",  # Symantec/Broadcom email security
    "trendmicro",  # Trend Micro scanners
    "bot",  # crawlers and generic bots that say so ("Googlebot", "bingbot", "Slackbot"…)
    "crawler",
    "spider",
    "facebookexternalhit",
    "python-requests",  # scripts
    "curl/",
    "wget/",
)


def is_bot(user_agent: str) -> bool:
    """True for a known prefetcher or scanner, and for a request without a user agent (no mail client
    sends none)."""
    agent = (user_agent or "").lower()
    return not agent or any(marker in agent for marker in BOT_AGENTS)
