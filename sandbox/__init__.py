"""Two-host sandbox for layerferry's integration tests, demo and benchmarks (see sandbox.py)."""
