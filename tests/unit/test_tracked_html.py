"""The HTML of a tracked email: only http(s) links of <a> change, the pixel goes before </body>, the rest stays
as written; the tokens open only what they were made for."""

from __future__ import annotations

import uuid

import pytest

from app.domain.tracking.html_links import tracked_html
from app.domain.tracking.links import Tracker, location, read_click, read_open, signer
from app.lib.crypto import Keyring
from app.lib.signed_links import BadLink, LinkSigner

KEYRING = Keyring({"k1": b"k" * 32}, "k1")


def _click(url: str) -> str:
    return f"https://t.example/c?{url}"


def test_only_http_links_of_anchors_change_and_the_rest_stays_byte_for_byte():
    html = ('<!doctype html>\n<html><body>\r\n<p>Hi <a class=x href="https://a.example/?b=1&amp;c=2">go</a>'
            "<a href='mailto:x@y.example'>mail</a> <a href=\"#top\">top</a> <A TITLE=t HREF=HTTP://B.example\n"
            ' data-x>B</A>\n<!-- <a href="https://hidden.example"> --><script>"<a href=\'https://s.example\'>"'
            "</script><textarea><a href='https://text.example'></textarea><img src=\"https://img.example/x.png\">"
            "</p></body></html>")
    out = tracked_html(html, _click, None)
    assert '<a class=x href="https://t.example/c?https://a.example/?b=1&amp;c=2">' in out
    assert '<A TITLE=t HREF="https://t.example/c?HTTP://B.example"\n data-x>' in out
    assert out.count("https://t.example/c?") == 2
    assert out.replace('"https://t.example/c?https://a.example/?b=1&amp;c=2"', '"https://a.example/?b=1&amp;c=2"') \
        .replace('"https://t.example/c?HTTP://B.example"', "HTTP://B.example") == html


def test_a_link_keeps_the_references_a_browser_keeps():
    html = '<a href="https://a.example/?a=1&region=eu&param=2&amp;x=&copy;">x</a>'
    seen: list[str] = []
    tracked_html(html, lambda url: seen.append(url) or url, None)
    assert seen == ["https://a.example/?a=1&region=eu&param=2&x=\u00a9"]


def test_markup_the_parser_cannot_read_keeps_its_links_and_still_gets_the_pixel():
    html = "<![ if mso]><a href='https://x.example'>x</a><![1"
    assert tracked_html(html, _click, "https://t.example/o") == html + tracked_html("", None, "https://t.example/o")


def test_the_pixel_goes_before_the_body_end_tag_or_at_the_end():
    assert tracked_html('<p title="</body>">a</p></BODY></html>', None, "https://t.example/o").startswith(
        '<p title="</body>">a</p><img src="https://t.example/o"')
    assert tracked_html("<p>a</p>", None, "https://t.example/o").endswith('style="display:block;width:1px;height:1px;border:0">')


def test_a_link_with_a_control_character_is_left_alone():
    html = '<a href="https://a.example/&#10;Set-Cookie: x=1">x</a>'
    assert tracked_html(html, _click, None) == html


class _Settings:
    public_url = "https://api.example/"
    data_keys = KEYRING.keys
    active_data_key_id = KEYRING.active_id


def _tracker() -> Tracker:
    return Tracker(_Settings())  # type: ignore[arg-type]


def test_tokens_name_their_email_and_link_and_a_changed_one_is_refused():
    team, email = uuid.uuid4(), uuid.uuid4()
    out = _tracker().html('<a href="https://shop.example/a b">x</a></body>', team, email, opens=True, clicks=True)
    click_token = out.split('href="https://api.example/t/c/')[1].split('"')[0]
    open_token = out.split('src="https://api.example/t/o/')[1].split('"')[0]
    reader = signer(KEYRING)
    clicked, opened = read_click(reader, click_token), read_open(reader, open_token)
    assert (clicked.team_id, clicked.email_id, clicked.url) == (team, email, "https://shop.example/a b")
    assert (opened.team_id, opened.email_id) == (team, email)
    assert location(clicked.url) == "https://shop.example/a%20b"
    for bad in (click_token[:-2] + ("AA" if not click_token.endswith("AA") else "BB"), open_token + "x", ""):
        with pytest.raises(BadLink):
            read_click(reader, bad)
    with pytest.raises(BadLink):  # a pixel's token is no redirect, and the other way round
        read_click(reader, open_token)
    with pytest.raises(BadLink):
        read_open(reader, click_token)
    with pytest.raises(BadLink):  # a download link's key signs no tracking link
        read_click(LinkSigner(KEYRING, "download"), click_token)


def test_a_signed_link_that_is_not_http_is_refused():
    token = signer(KEYRING).sign([str(uuid.uuid4()), str(uuid.uuid4()), "javascript:alert(1)"])
    with pytest.raises(BadLink):
        read_click(signer(KEYRING), token)
