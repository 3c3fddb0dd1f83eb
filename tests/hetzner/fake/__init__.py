"""A stateful fake of the Hetzner Cloud API, checked against its OpenAPI description."""
