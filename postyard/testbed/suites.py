"""The testbeds `pytest --testbed` boots: every group on one host, and every group on its own host."""

SESSION_TESTBEDS: dict[str, str] = {"ci": "single", "cis": "split"}
