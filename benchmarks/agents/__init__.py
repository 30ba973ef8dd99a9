"""Agent middleware benchmark: see `benchmarks.agents.run`."""
