from .impersonation_session import impersonation_context


def current_account(request) -> dict:
    return {
        "current_account": getattr(request, "account", None),
        "current_membership": getattr(request, "membership", None),
        "brand": getattr(request, "brand", None),
        **impersonation_context(request),
    }
