"""The domain's exceptions. Each carries a sentence a user can read; the edges map them to HTTP,
to the API's error names and to SMTP reply codes, each in one place."""


class DomainError(Exception):
    """Base of every refusal the domain makes on purpose."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class PermissionDenied(DomainError):
    """The actor may not do this (role, impersonation, or account kind)."""


class InvalidTransition(DomainError):
    """The account is not in a state this action starts from."""


class ValidationError(DomainError):
    """The input breaks a domain rule (a duplicate id, a limit that is not positive...)."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class QuotaExceeded(DomainError):
    """The send does not fit in the account's allowance. `reason` is Mandrill's word for it."""

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


class UnknownSubaccount(DomainError):
    """A master named a subaccount it does not have (never had, deleted, or renewed away)."""

    def __init__(self, public_id: str) -> None:
        super().__init__(f"No subaccount exists with the id '{public_id}'")
        self.public_id = public_id


class AccountClosed(InvalidTransition):
    """The account may not send: closed by its master, or gone."""


class UnknownTemplate(DomainError):
    """No template of the account (or shared with it) has that name or slug."""

    def __init__(self, name: str) -> None:
        super().__init__(f'No such template "{name}"')
        self.name = name


class DuplicateTemplate(ValidationError):
    """The account already has a template with that name (or a name with the same slug)."""

    def __init__(self, name: str) -> None:
        super().__init__(f'A template with name "{name}" already exists', field="name")


class NotSuppressed(DomainError):
    """The address is not on the account's suppression list (Mandrill's Invalid_Reject)."""

    def __init__(self, email: str) -> None:
        super().__init__("Email address is not in the rejection list and is not invalid")
        self.email = email
