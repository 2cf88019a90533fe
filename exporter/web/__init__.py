"""HTTP: the server, its TLS and basic-auth config, and the status page."""
