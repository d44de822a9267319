"""The cases of ``tools/analysis/benchmark_promptkd.py``, one per module."""
