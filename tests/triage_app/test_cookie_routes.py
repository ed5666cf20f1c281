"""The routes that set and clear the session cookie: HttpOnly and SameSite=Strict always, Secure over
HTTPS, and nothing for another origin or a ticket that is forged or stale."""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone

import pytest
from starlette.requests import Request

from triage_app import cookie_routes, sessions


@pytest.fixture(autouse=True)
def _secret(monkeypatch):
    monkeypatch.setenv(sessions.SECRET_ENV, "s3cret")


def _post(handler, body: bytes, *, origin: str | None = "http://127.0.0.1:8501", scheme: str = "http",
          forwarded: str | None = None):  # noqa: ANN001, ANN202 - a route handler and its Response
    """Call ``handler`` as the server would for a POST from ``origin`` to 127.0.0.1:8501."""
    headers = [(b"host", b"127.0.0.1:8501")]
    headers += [(b"origin", origin.encode())] if origin else []
    headers += [(b"x-forwarded-proto", forwarded.encode())] if forwarded else []
    scope = {"type": "http", "method": "POST", "path": "/auth/session", "scheme": scheme, "headers": headers,
             "query_string": b"", "server": ("127.0.0.1", 8501)}

    async def receive() -> dict:
        return {"type": "http.request", "body": body, "more_body": False}

    return asyncio.run(handler(Request(scope, receive)))


def _ticket() -> bytes:
    started = datetime.now(timezone.utc).timestamp()
    return sessions.issue_ticket("s3cret", user_id=7, version=2, started=started).encode()


def test_a_ticket_becomes_an_httponly_strict_cookie_holding_the_token():
    response = _post(cookie_routes.set_session_cookie, _ticket())
    assert response.status_code == 204
    cookie = response.headers["set-cookie"]
    name, token = cookie.split(";")[0].split("=", 1)
    assert name == sessions.COOKIE and "HttpOnly" in cookie and "SameSite=strict" in cookie
    assert f"Max-Age={sessions.MAX_AGE_S}" in cookie and "Secure" not in cookie
    assert sessions.token_started("s3cret", token) is not None


@pytest.mark.parametrize("scheme, forwarded", [("https", None), ("http", "https")])
def test_the_cookie_is_secure_over_https(scheme, forwarded):
    response = _post(cookie_routes.set_session_cookie, _ticket(), scheme=scheme, forwarded=forwarded)
    assert "Secure" in response.headers["set-cookie"]


@pytest.mark.parametrize("body, origin", [(b"forged", "http://127.0.0.1:8501"), (None, "http://evil.example"),
                                          (None, None)])
def test_a_bad_ticket_or_another_origin_gets_nothing(body, origin):
    response = _post(cookie_routes.set_session_cookie, body or _ticket(), origin=origin)
    assert response.status_code == 403 and "set-cookie" not in response.headers


def test_logout_clears_the_cookie_for_this_origin_only():
    cleared = _post(cookie_routes.clear_session_cookie, b"")
    assert cleared.status_code == 204 and "Max-Age=0" in cleared.headers["set-cookie"]
    assert _post(cookie_routes.clear_session_cookie, b"", origin="http://evil.example").status_code == 403
