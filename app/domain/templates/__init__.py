"""Templates: stored drafts and published versions that emails are rendered from."""
