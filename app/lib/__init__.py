"""Building blocks shared by the domain packages."""
