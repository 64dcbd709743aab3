"""The terminal console: chat with the core as any member, interactively or from a script."""
