"""Events the accounts app announces to apps built on it. `accounts` never imports `mailing`
(DESIGN.md), so mailing listens here for what it must do when an account changes (release held mail)."""

from django.dispatch import Signal

# Sent after commit, with `account`: sending may start again for this account.
account_resumed = Signal()
