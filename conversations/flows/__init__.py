"""The packaged flow definitions (intake.yaml, profile.yaml), read by conversations.loader."""
