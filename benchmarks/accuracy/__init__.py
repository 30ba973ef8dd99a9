"""Accuracy benchmark of langchain-tokencal against hidden real tokenizers and chat templates.

Run ``python -m benchmarks.accuracy`` (``--quick`` for a smoke run) from the
repository root; `run` documents the protocol and the output.
"""
