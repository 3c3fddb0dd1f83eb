"""Services that run on the mail hosts and read the platform's mail views."""
