"""Speed benchmark of langchain-tokencal: ``python -m benchmarks.speed [--quick]``."""
