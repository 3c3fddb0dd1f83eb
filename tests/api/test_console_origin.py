"""The console's cross-site check as a real browser meets it: under the API's `Referrer-Policy: no-referrer`
Chromium sends `Origin: null` with a same-origin form, and `Sec-Fetch-Site` is what tells the sites apart."""

from __future__ import annotations

import pytest
from console_pages import PASSWORD, console_owner, new_email


@pytest.mark.parametrize(("headers", "status"), [
    ({"origin": "null", "sec-fetch-site": "same-origin"}, 303),  # Chromium's same-origin form
    ({"origin": "null", "sec-fetch-site": "cross-site"}, 403),
    ({"origin": "https://evil.example"}, 403),  # a browser without Sec-Fetch-Site: Origin decides
    ({}, 303),  # no browser headers at all (a script): the CSRF token guards signed-in forms
])
async def test_the_sign_in_form_is_judged_by_sec_fetch_site_then_origin(client, headers, status):
    email = new_email()
    await console_owner(client, email)
    client.cookies.clear()
    response = await client.post("/console/login", data={"email": email, "password": PASSWORD}, headers=headers,
                                 follow_redirects=False)
    assert response.status_code == status, response.text
