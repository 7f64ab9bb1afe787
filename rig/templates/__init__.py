"""Jinja templates of the report pages (package data)."""
