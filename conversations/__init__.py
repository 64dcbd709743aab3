"""A pure conversation engine and the declarative flows it runs (intake, profile).

engine (the state machine), answers (reading and checking one answer), amounts (the
small language of money amounts), spans (styled text), loader (flow files), flows/ (YAML).
"""
