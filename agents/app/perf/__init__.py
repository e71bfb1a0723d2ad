"""Measurements of the environments themselves (not of agents): ``abn-gym perf``.

:mod:`agents.app.perf.measure` times the parts, :mod:`agents.app.perf.report` writes the report,
:mod:`agents.app.perf.cli` mounts the command; ``python -m agents.app.perf`` runs it as a script.
"""
