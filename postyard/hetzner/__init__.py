"""Hetzner Cloud: provisioning by label with hcloud, DNS records, teardown."""
