"""Measurements of the environments themselves (not of agents): ``abn-gym perf``.

:mod:`agents.perf.measure` times the parts, :mod:`agents.perf.report` writes the report,
:mod:`agents.perf.cli` mounts the command; ``python -m agents.perf`` runs it as a script.
"""
