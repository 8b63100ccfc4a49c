"""The user's jobs, each a composition of sources, destinations and the copy engine."""
