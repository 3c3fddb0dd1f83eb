"""Settings for the local testbed's hosts (systemd-nspawn containers on one machine)."""

# The testbed wires eth0 to its public bridge and eth1 to its private bridge.
public_interface = "eth0"
private_interface = "eth1"

# Testbed hosts see the whole machine's RAM; size the services for a small server instead.
postgresql_memory_mb = 1024
redis_maxmemory = "64mb"
