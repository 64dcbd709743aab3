"""Doors into the core: one package per chat platform, plus the terminal console."""
