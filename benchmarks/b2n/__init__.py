"""The rows (:mod:`.rows`) and the report (:mod:`.report`) of the synthetic
base-to-novel benchmark, ``benchmarks/synthetic_b2n.py``."""
