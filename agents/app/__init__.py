"""The application: train, compare and benchmark the controllers of :mod:`agents.controllers`.

The benchmark (``bench``) with its paired statistics (``stats``), verdicts (``front``), plots and
validation; training (``train``, ``train_escalation``, ``selection``), the algorithm zoo, levers,
the static search, the budget sweep, throughput (``perf``), and the ``abn-gym`` command (``cli``).
"""
