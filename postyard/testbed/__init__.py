"""The testbed: real Debian 12 hosts booted with systemd-nspawn on this machine."""
