"""The studies and benchmarks behind the figures in ``docs/``.

They are not part of the installed package: run them from the repository
root with the one entry point, ``python -m benchmarks NAME [ARGS]``
(``python -m benchmarks`` lists the names).
"""
