"""Roles: one module per service, each a pyinfra @deploy function; deploy.py calls them."""
