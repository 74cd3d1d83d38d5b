"""The URLs in the mail itself, fetched by recipients' mail clients: the open pixel (`/t/o/<token>`), tracked
links (`/t/c/<token>`) and the unsubscribe page (`/t/u/<token>`). No login, no CSRF (mail providers'
one-click POSTs carry no token; the signed token is the credential), never cached. Each answers at once:
the pixel whatever the token (an image in a mail must not break), a click 302 to the message's own link or
404, the unsubscribe page whatever happened before (a repeat changes nothing)."""

from __future__ import annotations

import base64
import contextlib

from django.contrib.auth.decorators import login_not_required
from django.http import Http404, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import path
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods, require_safe

from .tracking import recording, tokens

# The smallest transparent GIF (43 bytes).
PIXEL = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")


def _visit(request) -> recording.Visit:
    return recording.Visit(
        ip=request.META.get("REMOTE_ADDR") or "", user_agent=request.META.get("HTTP_USER_AGENT") or ""
    )


def _no_store(response: HttpResponse) -> HttpResponse:
    response["Cache-Control"] = "no-store, no-cache, must-revalidate, private, max-age=0"
    response["Pragma"] = "no-cache"
    response["Expires"] = "0"
    # These paths skip CommonMiddleware (MACHINE_PATH_PREFIXES), which would otherwise say it: without
    # it the server frames a 43-byte answer as chunked.
    response["Content-Length"] = str(len(response.content))
    return response


@login_not_required
@require_safe
def open_pixel(request, token: str):
    if request.method == "GET":
        # A forged or damaged pixel shows the same image and records nothing.
        with contextlib.suppress(tokens.BadToken):
            recording.record_open(public_id=tokens.message_of_open(token), visit=_visit(request))
    return _no_store(HttpResponse(PIXEL, content_type="image/gif"))


@login_not_required
@require_safe
def click(request, token: str):
    try:
        public_id, index = tokens.link_of_click(token)
    except tokens.BadToken:
        raise Http404("This link is not valid.") from None
    if request.method == "HEAD":  # a scanner checking the link: answer where it goes, record nothing
        url = recording.link_of(public_id=public_id, index=index)
    else:
        url = recording.record_click(public_id=public_id, index=index, visit=_visit(request))
    if url is None:
        raise Http404("This link is not valid.")
    return _no_store(HttpResponseRedirect(url))


@login_not_required
@csrf_exempt
@never_cache
@require_http_methods(["GET", "HEAD", "POST"])
def unsubscribe(request, token: str):
    """GET asks (mail scanners follow links: a GET must never unsubscribe); POST unsubscribes, from our
    button or from a mail provider's one-click (RFC 8058: `List-Unsubscribe=One-Click` in the form body)."""
    try:
        public_id = tokens.message_of_unsubscribe(token)
    except tokens.BadToken:
        return render(request, "mailing/unsubscribe.html", {"state": "invalid"}, status=404)
    if request.method != "POST":
        if not recording.unsubscribable(public_id=public_id):
            return render(request, "mailing/unsubscribe.html", {"state": "invalid"}, status=404)
        return render(request, "mailing/unsubscribe.html", {"state": "ask"})
    message = recording.unsubscribe(public_id=public_id, visit=_visit(request))
    if message is None:
        return render(request, "mailing/unsubscribe.html", {"state": "invalid"}, status=404)
    continue_url = recording.redirect_after_unsubscribe(message, request.GET.get("redirect", ""))
    return render(
        request,
        "mailing/unsubscribe.html",
        {"state": "done", "email": message.to_email, "continue_url": continue_url},
    )


urlpatterns = [
    path("o/<str:token>", open_pixel, name="open"),
    path("c/<str:token>", click, name="click"),
    path("u/<str:token>", unsubscribe, name="unsubscribe"),
]
