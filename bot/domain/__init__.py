"""The pure rules of a factory: ids, records, the SIF ledger, routing of review requests and
the request lifecycle. No I/O, no ports, no settings: everything here is a plain function
or value, tested without a database."""
