"""Open and click tracking: signed pixel and redirect links in a tracked email's HTML, and the routes that
record `opened` and `clicked` when a reader follows them."""
