"""Scorers, one per module (owned by the scorers work)."""
