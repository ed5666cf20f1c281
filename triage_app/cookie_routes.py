"""The two routes that set and clear the session cookie from the server (see :mod:`triage_app.server`).

A ticket posted by the page (:func:`triage_app.sessions.issue_ticket`, one minute) becomes the
session token in an ``HttpOnly; SameSite=Strict`` cookie, ``Secure`` when the request came over
HTTPS; a request from another origin, or with a forged or stale ticket, gets 403.
"""

from __future__ import annotations

from urllib.parse import urlparse

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from triage_app import sessions
from triage_app.settings import resolve


def _secret() -> str:
    return sessions.load_secret(resolve(None).store_path.parent)


def _same_origin(request: Request) -> bool:
    """Whether the request comes from a page of this server (the browser's Origin header says so)."""
    origin = request.headers.get("origin")
    return origin is not None and urlparse(origin).netloc == request.headers.get("host")


def _cookie_response(request: Request, token: str | None) -> Response:
    """204 setting the session cookie to ``token`` (HttpOnly, Strict, Secure over HTTPS), or clearing it."""
    response = Response(status_code=204)
    https = request.headers.get("x-forwarded-proto", request.url.scheme) == "https"
    response.set_cookie(sessions.COOKIE, token or "", max_age=sessions.MAX_AGE_S if token else 0, path="/",
                        httponly=True, secure=https, samesite="strict")
    return response


async def set_session_cookie(request: Request) -> Response:
    """Exchange a ticket (the request body) for the session cookie; 403 for another origin or a bad ticket."""
    if not _same_origin(request):
        return Response(status_code=403)
    token = sessions.token_for_ticket(_secret(), (await request.body()).decode(errors="replace"))
    return Response(status_code=403) if token is None else _cookie_response(request, token)


async def clear_session_cookie(request: Request) -> Response:
    """Clear the session cookie (the sessions themselves end in the database at logout)."""
    return _cookie_response(request, None) if _same_origin(request) else Response(status_code=403)


ROUTES = [Route(sessions.SESSION_ROUTE, set_session_cookie, methods=["POST"]),
          Route(sessions.LOGOUT_ROUTE, clear_session_cookie, methods=["POST"])]
