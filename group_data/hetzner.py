"""Settings for Hetzner Cloud hosts (pyinfra puts every host of inventory/hetzner.py in this group).

`python -m postyard up --target hetzner` reads the provisioning settings below too; POSTYARD_DOMAIN,
POSTYARD_PROJECT, POSTYARD_ENVIRONMENT and POSTYARD_SECRETS_DIR override them from the environment.
"""

# Hetzner's interface names on Debian 12: the public NIC, and the private network's NIC.
public_interface = "eth0"
private_interface = "enp7s0"

# Certificates by ACME HTTP-01 (roles/tls.py): port 80 opens on mail and api hosts for certbot.
# Let's Encrypt needs a contact address for the account: set acme_email too.
acme_http01 = True

# The DNS zone managed through the Cloud API; the mail host is mail.<domain>, the API api.<domain>.
domain = "example.com"
# Domains mail is sent from; the first gets MX, SPF, DKIM, DMARC, MTA-STS, TLS-RPT and CAA records.
sending_domains = ["example.com"]

# Server type per group; "single" is the one host of the single topology, "default" the fallback.
hcloud_server_types = {"single": "cx33", "default": "cx23"}
# Location of every host, and per-group exceptions (e.g. {"api": "fsn1"}); one network zone only.
hcloud_location = "nbg1"
hcloud_locations = {}
hcloud_network_zone = "eu-central"
hcloud_image = "debian-12"
hcloud_network_ip_range = "10.0.0.0/16"
hcloud_subnet_ip_range = "10.0.1.0/24"
# Size in GB of the (LUKS-encrypted) data volume of each db host.
hcloud_volume_size = 10
# In front of the api hosts when there are more than one.
hcloud_load_balancer_type = "lb11"
# Seconds to wait for one API action (server creation and the like) before giving up.
hcloud_action_timeout = 600

# DKIM selector of the first sending domain; DMARC policy; MTA-STS mode (testing, then enforce).
dkim_selector = "postyard"
dmarc_policy = "quarantine"
mta_sts_mode = "testing"
