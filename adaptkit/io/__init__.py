"""Adapter files on disk (and, later, on the Hub)."""
