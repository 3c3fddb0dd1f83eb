"""Webhook endpoints, signed deliveries and their retries."""
