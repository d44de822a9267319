"""The cases of ``python -m benchmarks speed``, one per module."""
