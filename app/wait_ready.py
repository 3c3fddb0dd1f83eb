"""`python -m app.wait_ready`: wait until the API on this host answers its liveness path on loopback (the
API unit's ExecStartPost, so that systemd calls the unit active only once it accepts requests)."""

from __future__ import annotations

import argparse
import http.client
import ssl
import sys
import time
from collections.abc import Sequence

from app.host_layout import API_LIVENESS_PATH, API_PORT

__all__ = ["DEFAULT_TIMEOUT", "answers", "main", "wait_ready"]

# Well within systemd's default start timeout (90 s); the API takes about 11 s on a testbed host.
DEFAULT_TIMEOUT = 60.0


def answers(port: int = API_PORT, path: str = API_LIVENESS_PATH, timeout: float = 5) -> bool:
    """Whether the API on 127.0.0.1:port answers path with 200 over HTTPS."""
    # Loopback, and nothing secret crosses it: the certificate, which names the public host, is not checked.
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    connection = http.client.HTTPSConnection("127.0.0.1", port, timeout=timeout, context=context)
    try:
        connection.request("GET", path)
        return connection.getresponse().status == 200
    except (OSError, http.client.HTTPException):
        return False
    finally:
        connection.close()


def wait_ready(port: int = API_PORT, path: str = API_LIVENESS_PATH, timeout: float = DEFAULT_TIMEOUT,
               interval: float = 0.2) -> float | None:
    """Seconds until the API answered, or None when it did not within timeout."""
    started = time.monotonic()
    while not answers(port, path, timeout=min(5.0, timeout)):
        if time.monotonic() - started >= timeout:
            return None
        time.sleep(interval)
    return time.monotonic() - started


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app.wait_ready", description=__doc__)
    parser.add_argument("--port", type=int, default=API_PORT)
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT, help="seconds (default %(default)s)")
    args = parser.parse_args(argv)
    waited = wait_ready(args.port, timeout=args.timeout)
    if waited is None:
        print(f"the API did not answer {API_LIVENESS_PATH} on port {args.port} within {args.timeout:.0f} s",
              file=sys.stderr)
        return 1
    print(f"the API answered {API_LIVENESS_PATH} on port {args.port} after {waited:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
