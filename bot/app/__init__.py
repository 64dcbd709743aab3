"""The use cases: `Bot.handle` and the handlers, sweeps, outbox and digest it runs in units
of work. Imports the domain, the commands and the ports; never a store or an adapter."""
