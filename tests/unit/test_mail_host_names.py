"""Every mail host's name (POSTYARD_MAIL_HOSTNAMES): one order on every host, this host's name when unset."""

from __future__ import annotations

import pytest

from app.config import SPF_MAX_LOOKUPS, Settings


def test_unset_it_is_this_hosts_name_alone():
    settings = Settings.from_env({"POSTYARD_MAIL_HOSTNAME": "mail.example.com"})
    assert settings.mail_host_names == ("mail.example.com",)
    assert Settings.from_env({"POSTYARD_MAIL_HOSTNAMES": " , "}).mail_host_names == ("mail.postyard.test",)


def test_the_names_come_sorted_and_once_whatever_order_they_are_written_in():
    settings = Settings.from_env({"POSTYARD_MAIL_HOSTNAME": "mx2.example.com",
                                  "POSTYARD_MAIL_HOSTNAMES": "mx2.example.com, mx1.example.com,mx2.example.com,"})
    assert settings.mail_host_names == ("mx1.example.com", "mx2.example.com")
    assert settings.mail_hostname == "mx2.example.com"


def test_more_mail_hosts_than_an_spf_record_may_look_up_are_refused():
    names = [f"mx{n}.example.com" for n in range(SPF_MAX_LOOKUPS + 1)]
    assert len(Settings.from_env({"POSTYARD_MAIL_HOSTNAMES": ",".join(names[:-1])}).mail_host_names) == 10
    with pytest.raises(ValueError, match="more than 10 mail hosts"):
        Settings.from_env({"POSTYARD_MAIL_HOSTNAMES": ",".join(names)})
