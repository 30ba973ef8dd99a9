"""Soak benchmark: latency under load, memory across models, stores at scale."""
