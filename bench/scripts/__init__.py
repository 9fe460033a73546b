"""Helper programs the benchmarks run as subprocesses."""
