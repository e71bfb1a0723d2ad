"""Measurements of the environments themselves (not of agents): ``abn-gym perf``.

:mod:`benchmarks.measure` times the parts, :mod:`benchmarks.report` writes the report,
:mod:`benchmarks.cli` mounts the command; ``benchmarks/throughput.py`` runs it as a script.
"""
