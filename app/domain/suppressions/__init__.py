"""The suppression list of each team."""
