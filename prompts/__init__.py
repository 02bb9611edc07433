"""Packaged prompt templates: one Jinja file per task (a user folder can override any of them)."""
