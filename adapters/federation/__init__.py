"""The federation messenger: posts the core's signed messages to partner nodes."""
