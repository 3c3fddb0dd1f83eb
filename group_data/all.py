"""Settings for every host, whatever the inventory; each role's DEFAULTS documents the rest."""

# Sources allowed to reach sshd (addresses or networks); empty: any source, keys only.
ssh_admin_allowlist: list[str] = []

# Optional rows of the exposure table.
acme_http01 = False
mailboxes_enabled = False
