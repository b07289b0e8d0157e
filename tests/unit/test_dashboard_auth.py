"""Who may see the dashboard (ember_dashboard.web_auth)."""

from ember_dashboard import web_auth

TOKEN = "s3cret-token"


def test_bearer_token_and_login_cookie_open_it():
    assert web_auth.authorized(f"Bearer {TOKEN}", None, TOKEN)
    assert web_auth.authorized(f"bearer   {TOKEN} ", None, TOKEN)
    cookie = web_auth.login_cookie(TOKEN).split(";")[0]
    assert web_auth.authorized(None, f"other=1; {cookie}; x=y", TOKEN)


def test_anything_else_does_not():
    cookie_value = web_auth.session_cookie_value(TOKEN)
    for authorization, cookie in [(None, None), ("", ""), (f"Basic {TOKEN}", None), (f"Bearer {TOKEN}x", None),
                                  ("Bearer ", None), (TOKEN, None), (None, f"{web_auth.COOKIE_NAME}={TOKEN}"),
                                  (None, f"{web_auth.COOKIE_NAME}={cookie_value}0"),
                                  (None, f"x{web_auth.COOKIE_NAME}={cookie_value}"),
                                  (None, web_auth.login_cookie("another-token").split(";")[0])]:
        assert not web_auth.authorized(authorization, cookie, TOKEN), (authorization, cookie)


def test_the_cookie_is_not_the_token_and_is_httponly_strict():
    header = web_auth.login_cookie(TOKEN)
    assert TOKEN not in header
    assert "HttpOnly" in header and "SameSite=Strict" in header and "Path=/" in header
    assert "Max-Age=0" in web_auth.logout_cookie()
    assert web_auth.token_matches(TOKEN, TOKEN) and not web_auth.token_matches(TOKEN[:-1], TOKEN)
    assert not web_auth.token_matches("ü", TOKEN)  # (non-ASCII compares, never raises)
