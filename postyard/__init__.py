"""Postyard: a self-hosted transactional mail platform, deployed as code."""
