"""pacsbox benchmark harness (``make bench`` / ``python -m bench``); never part of the tests.

Scenarios register themselves in :mod:`bench.registry`; :mod:`bench.runner` repeats them
(interleaved, in one process run so every ratio compares figures from the same run) and
:mod:`bench.report` prints the medians and writes ``bench/results/latest.{json,md}``.
See ``bench/README.md``.
"""
