"""Settings for every host, whatever the inventory.

Each role documents the settings it reads, with their defaults, in its DEFAULTS
(roles/base.py, roles/firewall.py). Override them here for every host, in group_data/<group>.py
for one group, or per host in the inventory. For example:

    ssh_admin_allowlist = ["198.51.100.0/24"]   # only these sources may reach sshd
    unattended_reboot = True                     # reboot at 03:30 when an update needs it
    security_contact = "mailto:security@example.com,https://example.com/security"  # security.txt
    hsts_preload = True                          # once the API's domain is on the HSTS preload list
"""
