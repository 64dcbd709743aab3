"""A pure conversation engine and the declarative flows it runs (intake, profile)."""
