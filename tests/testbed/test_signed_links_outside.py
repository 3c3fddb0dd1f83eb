"""Signed links from the outside: an attacker on another host (the testbed's outside network namespace, which sees
the public ports alone) against the three routes that take no API key, only a signed token in the query: an
attachment's download (`/emails/{id}/attachments/{aid}/content`, the `download_url` the API hands out), a shared
email's page (`/shared`, the `url` of `POST /emails/{id}/share`) and its HTML (`/shared/html`).

The genuine link opens what it was made for, served so that no browser renders it on the API's origin. A token with
one character changed, none, an empty or a garbage one, a token moved to another attachment, email or team (by its
path, or by rewriting its readable payload), one made for the other purpose and one past its expiry are refused 403
without a byte of the email; an overlong one gets a 4xx; and no answer is a 5xx or carries a traceback.

Two teams send an email with two attachments through the API. Each test's anonymous client leaves from an address
of its own in the outside namespace, so the per-address budget of these routes (30 a minute) never answers for it.
"""

from __future__ import annotations

import base64
import html
import ipaddress
import os
import re
import ssl
import time
import uuid
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import parse_qs, urlsplit

import httpcore
import httpx
import pytest
from itsdangerous.encoding import base64_decode, base64_encode

from postyard.testbed import internet
from tests.testbed.appliance_support import Appliance, open_appliance, verified_domain
from tests.testbed.outside_http import OutsideHttp, fresh_sources

# Addresses of the outside namespace this module takes: below the outside's own, clear of the abuse suite's and
# the load balancer suite's, which count up from it.
FIRST_SOURCE_OFFSET = -100
ROUTES = ["download", "page", "html"]
SHARED_PATHS = {"page": "/shared", "html": "/shared/html"}
TOKEN_PARTS = ["payload", "timestamp", "signature"]
# Raw query strings that carry no token the app made, and the app's answer: 403 `invalid_link`, but 422 for a NUL,
# which its guard on every route refuses before any handler runs (app/lib/storable_text.py).
BAD_QUERIES = {
    "no token": ("", 403),
    "an empty token": ("token=", 403),
    "a word": ("token=garbage", 403),
    "dots alone": ("token=..", 403),
    "a token's shape, signed by no one": ("token=.eJyLVkpUitVRSlKKBQAK9AKT.aUT0nQ.q1dY2S7Mh2Jm3bQeYKxj4Dd9b3c", 403),
    "bytes that are not UTF-8": ("token=%FF%FE", 403),
    "a JSON list": ("token=%5B%22a%22%2C%22b%22%5D", 403),
    "the parameter as an array": ("token%5B%5D=garbage", 403),
    "a NUL byte": ("token=%00", 422),
}
REFUSALS = {403: "invalid_link", 422: "validation_error"}
# An overlong token: below the server's limit on a request's target (the app reads it), above it, and above the
# limit on a request's head.
OVERLONG = [60_000, 100_000, 1_000_000]
# Past this, httpx refuses to send a URL at all.
HTTPX_URL_LIMIT = 65_536


@dataclass(frozen=True)
class Attachment:
    """One attachment of a sent email, and its download link's token."""

    id: str
    filename: str
    content_type: str
    content: bytes
    link: str  # the path and query of its download_url
    token: str


@dataclass(frozen=True)
class SentEmail:
    """An email one team sent with two attachments, and the signed links the API handed out for it."""

    team_id: str
    id: str
    marker: str  # in its subject, both bodies and every attachment
    html: str
    text: str
    attachments: list[Attachment]
    share_link: str  # the path and query of its shared url
    share_token: str


# -- the teams, and the attacker's vantage point ---------------------------------------------------


@pytest.fixture(scope="module")
def bed(single_testbed):
    return single_testbed


@pytest.fixture(scope="module")
def opened(bed, tmp_path_factory, monkeypatch_module) -> Appliance:
    return open_appliance(bed, tmp_path_factory.mktemp("ca"), monkeypatch_module)


@pytest.fixture(scope="module")
def new_source(bed) -> Iterator[Callable[[], str]]:
    """A fresh address of the outside namespace for each call, removed after the module."""
    with fresh_sources(bed.outside_netns, str(ipaddress.ip_address(bed.outside_address) + FIRST_SOURCE_OFFSET)) as new:
        yield new


@pytest.fixture(scope="module")
def outside(bed, opened, new_source) -> Iterator[Callable[..., OutsideHttp]]:
    """HTTPS clients from the outside, each from an address of its own; without `key`, anonymous (no key, no
    cookie)."""
    clients: list[OutsideHttp] = []

    def make(key: str | None = None, source: str | None = None) -> OutsideHttp:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        clients.append(OutsideHttp(bed.outside_netns, opened.url, opened.ca_bundle, source or new_source(), headers,
                                   workers=4))
        return clients[-1]

    yield make
    for client in clients:
        client.close()


@pytest.fixture(scope="module")
def api(opened, outside) -> OutsideHttp:
    """Our team's own API key, from the outside."""
    return outside(opened.api_key)


@pytest.fixture(scope="module")
def ours(opened, api) -> SentEmail:
    """The email our team sent, and its links."""
    return send_with_attachments(api, opened, verified_domain(opened))


@pytest.fixture(scope="module")
def theirs(opened, outside) -> SentEmail:
    """An email another team sent, and its links."""
    sender = opened.mail.new_sender()
    return send_with_attachments(outside(sender.api_key), opened, sender.domain)


def path_and_query(url: str, opened: Appliance) -> tuple[str, str]:
    """The path and query of a link the API handed out, and its token; the link must point at the API itself."""
    parts, api_url = urlsplit(url), urlsplit(opened.url)
    assert (parts.scheme, parts.netloc) == (api_url.scheme, api_url.netloc), url
    return f"{parts.path}?{parts.query}", parse_qs(parts.query)["token"][0]


def ok(answer: httpx.Response) -> httpx.Response:
    assert answer.status_code in (200, 201), (answer.request.url.path, answer.status_code, answer.text[:500])
    return answer


def send_with_attachments(api: OutsideHttp, opened: Appliance, domain: str) -> SentEmail:
    """An email sent through the API with an HTML file and a binary one attached, its attachments' download links
    and a shared link, all as the API gives them."""
    marker = uuid.uuid4().hex
    files = {"invoice.html": f'<script>alert("{marker}")</script>'.encode(),
             "data.bin": os.urandom(32) + marker.encode() + bytes(range(256))}
    body_html = f'<p>Dear customer {marker}</p><script>alert("{marker}")</script>'
    body_text = f"Dear customer {marker}"
    sent = ok(api.post("/emails", json={
        "from": f"Acme <hello@{domain}>", "to": [f"inbox@{internet.MX_DOMAIN}"], "subject": f"<b>Invoice {marker}</b>",
        "html": body_html, "text": body_text,
        "attachments": [{"filename": name, "content": base64.b64encode(data).decode()} for name, data in files.items()],
    })).json()
    listed = ok(api.get(f"/emails/{sent['id']}/attachments")).json()["data"]
    assert [item["filename"] for item in listed] == list(files), listed
    attachments = []
    for item in listed:
        one = ok(api.get(f"/emails/{sent['id']}/attachments/{item['id']}")).json()
        link, token = path_and_query(one["download_url"], opened)
        assert link.startswith(download_path(sent["id"], item["id"]) + "?"), link
        attachments.append(Attachment(item["id"], item["filename"], item["content_type"], files[item["filename"]],
                                      link, token))
    shared = ok(api.post(f"/emails/{sent['id']}/share", json={"expires_in": "2 hours"})).json()
    share_link, share_token = path_and_query(shared["url"], opened)
    team = ok(api.get("/team")).json()["id"]
    return SentEmail(team, sent["id"], marker, body_html, body_text, attachments, share_link, share_token)


# -- what a refusal looks like -----------------------------------------------------------------------


def download_path(email_id: str, attachment_id: str) -> str:
    return f"/emails/{email_id}/attachments/{attachment_id}/content"


def route_path(sent: SentEmail, route: str) -> str:
    """Where the route's genuine link points (an attachment's download: the first attachment's)."""
    return download_path(sent.id, sent.attachments[0].id) if route == "download" else SHARED_PATHS[route]


def genuine_token(sent: SentEmail, route: str) -> str:
    return sent.attachments[0].token if route == "download" else sent.share_token


def with_token(path: str, token: str) -> str:
    return f"{path}?token={token}"  # the app's tokens are URL-safe; each test's own stay so


def no_server_error(answer: httpx.Response) -> None:
    """Not a 5xx, and no Python traceback or source line in the body."""
    assert answer.status_code < 500, (answer.status_code, answer.text[:500])
    assert b"Traceback" not in answer.content and b'File "/' not in answer.content, answer.text[:2000]


def refused(answer: httpx.Response, *kept_from_it: SentEmail, status: int = 403) -> None:
    """The app's refusal of a link (403 `invalid_link` unless told), with nothing of these emails in it."""
    no_server_error(answer)
    assert answer.status_code == status, (answer.request.url.path, answer.status_code, answer.text[:500])
    assert answer.json()["name"] == REFUSALS[status], answer.text
    assert "content-disposition" not in answer.headers
    for sent in kept_from_it:
        assert sent.marker.encode() not in answer.content, answer.text[:500]
        for attachment in sent.attachments:
            assert attachment.content not in answer.content


def served(answer: httpx.Response) -> httpx.Response:
    """A genuine link's answer, to a client that showed no key and no cookie."""
    no_server_error(answer)
    assert answer.status_code == 200, (answer.request.url.path, answer.status_code, answer.text[:500])
    assert "authorization" not in answer.request.headers and "cookie" not in answer.request.headers
    return answer


def only_policy(answer: httpx.Response) -> dict[str, list[str]]:
    """The answer's one Content-Security-Policy, by directive."""
    policies = answer.headers.get_list("content-security-policy")
    assert len(policies) == 1, policies
    return {name: values for name, *values in (item.split() for item in policies[0].split(";") if item.strip())}


def changed(token: str, part: str) -> str:
    """The token with one character of one of its parts changed: one in the middle, whose every bit counts (the
    last character of a base64 part may carry bits that decoding drops)."""
    parts = token.rsplit(".", 2)
    value = parts[TOKEN_PARTS.index(part)]
    middle = len(value) // 2
    parts[TOKEN_PARTS.index(part)] = value[:middle] + ("B" if value[middle] == "A" else "A") + value[middle + 1:]
    return ".".join(parts)


def repointed(token: str, replacements: dict[str, str]) -> str:
    """The token with values of its payload replaced, its timestamp and signature kept: the payload is compressed
    JSON, not encrypted, so whoever holds a link can read and rewrite it."""
    payload, timestamp, signature = token.rsplit(".", 2)
    compressed = payload.startswith(".")
    data = base64_decode(payload.removeprefix("."))
    text = (zlib.decompress(data) if compressed else data).decode()
    for old, new in replacements.items():
        assert old in text, (old, text)
        text = text.replace(old, new)
    raw = zlib.compress(text.encode()) if compressed else text.encode()
    return f"{'.' if compressed else ''}{base64_encode(raw).decode()}.{timestamp}.{signature}"


# -- the genuine links -------------------------------------------------------------------------------------


def test_a_download_link_serves_the_attachment_from_outside_as_a_file_never_rendered(ours, outside):
    stranger = outside()
    for attachment in ours.attachments:
        answer = served(stranger.get(attachment.link))
        assert answer.content == attachment.content
        assert answer.headers["content-type"].split(";")[0] == attachment.content_type
        assert answer.headers["content-disposition"] == (
            f"attachment; filename=\"{attachment.filename}\"; filename*=UTF-8''{attachment.filename}")
        assert answer.headers["x-content-type-options"] == "nosniff"
        policy = only_policy(answer)
        assert policy["sandbox"] == [] and policy["default-src"] == ["'none'"], policy
        assert "no-store" in answer.headers["cache-control"]
    assert ours.attachments[0].content_type == "text/html"  # the file a browser would run, were it rendered


def test_a_shared_link_opens_the_page_and_its_html_only_in_a_sandbox_from_outside(ours, outside):
    stranger = outside()
    page = served(stranger.get(ours.share_link))
    assert page.headers["content-type"].startswith("text/html")
    assert f"&lt;b&gt;Invoice {ours.marker}&lt;/b&gt;" in page.text and "<b>Invoice" not in page.text
    assert f"<pre>{ours.text}</pre>" in page.text and "<script" not in page.text
    page_policy = only_policy(page)
    assert page_policy["default-src"] == ["'none'"] and page_policy["frame-ancestors"] == ["'none'"], page_policy
    assert "script-src" not in page_policy
    frame_src = re.search(r'<iframe sandbox [^>]*src="([^"]+)"', page.text)
    assert frame_src is not None, page.text
    frame = served(stranger.get(html.unescape(frame_src[1])))
    assert frame.request.url.path == "/shared/html"
    assert frame.text == ours.html
    frame_policy = only_policy(frame)
    # A bare `sandbox`: no allow-scripts, no allow-same-origin; nothing loaded from anywhere.
    assert frame_policy["sandbox"] == [] and frame_policy["default-src"] == ["'none'"], frame_policy
    assert "script-src" not in frame_policy and frame_policy["frame-ancestors"] == ["'self'"], frame_policy
    assert frame.headers["x-frame-options"] == "SAMEORIGIN"


# -- tokens the app did not make -----------------------------------------------------------------------------


@pytest.mark.parametrize("route", ROUTES)
def test_a_token_with_one_character_changed_is_refused_without_the_email(ours, outside, route):
    stranger = outside()
    path, token = route_path(ours, route), genuine_token(ours, route)
    served(stranger.get(with_token(path, token)))  # the link works: what follows fails for the change alone
    for part in TOKEN_PARTS:
        tampered = changed(token, part)
        assert tampered != token and len(tampered) == len(token)
        refused(stranger.get(with_token(path, tampered)), ours)


@pytest.mark.parametrize("route", ROUTES)
def test_no_token_an_empty_or_a_garbage_one_is_refused(ours, outside, route):
    stranger = outside()
    path = route_path(ours, route)
    answers = {name: stranger.get(f"{path}?{query}" if query else path) for name, (query, _) in BAD_QUERIES.items()}
    assert {name: a.status_code for name, a in answers.items()} == {
        name: status for name, (_, status) in BAD_QUERIES.items()}
    for name, answer in answers.items():
        refused(answer, ours, status=BAD_QUERIES[name][1])


# -- genuine tokens, somewhere else ------------------------------------------------------------------


def test_a_download_token_opens_its_attachment_alone(ours, theirs, outside):
    stranger = outside()
    own, sibling, foreign = ours.attachments[0], ours.attachments[1], theirs.attachments[0]
    served(stranger.get(own.link))
    elsewhere = {
        "the email's other attachment": download_path(ours.id, sibling.id),
        "another team's email and attachment": download_path(theirs.id, foreign.id),
        "another team's email, the same attachment id": download_path(theirs.id, own.id),
        "the same email, another team's attachment id": download_path(ours.id, foreign.id),
        "an email that does not exist": download_path(str(uuid.uuid4()), own.id),
    }
    answers = {name: stranger.get(with_token(path, own.token)) for name, path in elsewhere.items()}
    # Rewritten to name their attachment, its signature kept.
    forged = repointed(own.token, {ours.team_id: theirs.team_id, ours.id: theirs.id, own.id: foreign.id})
    answers["a token rewritten to name another team's attachment"] = stranger.get(
        with_token(download_path(theirs.id, foreign.id), forged))
    assert {name: a.status_code for name, a in answers.items()} == dict.fromkeys(answers, 403)
    for answer in answers.values():
        refused(answer, ours, theirs)


@pytest.mark.parametrize("route", ["page", "html"])
def test_a_shared_link_of_one_team_opens_nothing_of_another(ours, theirs, outside, route):
    stranger = outside()
    path = SHARED_PATHS[route]
    mine = served(stranger.get(with_token(path, ours.share_token)))
    assert ours.marker in mine.text and theirs.marker not in mine.text
    served(stranger.get(with_token(path, theirs.share_token)))  # their link works, for its holder
    rewritten = repointed(ours.share_token, {ours.team_id: theirs.team_id, ours.id: theirs.id})
    # Their payload and timestamp under our signature.
    spliced = f"{theirs.share_token.rsplit('.', 1)[0]}.{ours.share_token.rsplit('.', 1)[1]}"
    for forged in (rewritten, spliced):
        refused(stranger.get(with_token(path, forged)), theirs)


def test_a_token_made_for_one_kind_of_link_opens_no_other(ours, outside):
    stranger = outside()
    download = ours.attachments[0]
    answers = {"a share token as a download's": stranger.get(with_token(route_path(ours, "download"),
                                                                          ours.share_token)),
               **{f"a download token as a shared {route}'s": stranger.get(with_token(path, download.token))
                  for route, path in SHARED_PATHS.items()}}
    assert {name: a.status_code for name, a in answers.items()} == dict.fromkeys(answers, 403)
    for answer in answers.values():
        refused(answer, ours)


def test_a_shared_link_past_its_expiry_is_refused(ours, api, opened, outside):
    shared = ok(api.post(f"/emails/{ours.id}/share", json={"expires_in": "1m"})).json()
    link, token = path_and_query(shared["url"], opened)
    stranger = outside()
    served(stranger.get(link))
    expires = datetime.fromisoformat(shared["expires_at"]).timestamp()
    time.sleep(max(0.0, expires - time.time()) + 2)
    for path in SHARED_PATHS.values():
        refused(stranger.get(with_token(path, token)), ours)


# -- overlong tokens ---------------------------------------------------------------------------------------


def long_get(client: OutsideHttp, opened: Appliance, source: str, target: str) -> tuple[int, bytes]:
    """GET `target` from the client's namespace and `source`, with httpcore: httpx sends no URL over 64 kB."""
    host = urlsplit(opened.url).hostname or ""

    def get() -> tuple[int, bytes]:
        trust = ssl.create_default_context(cafile=opened.ca_bundle)
        with httpcore.ConnectionPool(ssl_context=trust, local_address=source) as pool:
            answer = pool.request("GET", httpcore.URL(scheme=b"https", host=host.encode(), port=443,
                                                      target=target.encode()), headers=[(b"Host", host.encode())])
            return answer.status, answer.content

    return client.run(get)


@pytest.mark.parametrize("size", OVERLONG)
def test_an_overlong_token_gets_a_4xx_never_a_5xx(ours, opened, outside, new_source, size):
    source = new_source()
    stranger = outside(source=source)
    for route in ROUTES:
        token = "A" * size + genuine_token(ours, route)
        target = with_token(route_path(ours, route), token)
        if len(target) < HTTPX_URL_LIMIT:
            refused(stranger.get(target), ours)  # the app itself reads it
            continue
        status, body = long_get(stranger, opened, source, target)
        assert 400 <= status < 500 and status != 429, (route, status, body[:500])
        assert b"Traceback" not in body and ours.marker.encode() not in body, body[:500]
