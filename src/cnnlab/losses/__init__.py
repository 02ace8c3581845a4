"""Losses that the course defines: localisation (and landmarks)."""
