"""The library: what a controller is, the controllers abn-gym ships, and how names make them.

- :mod:`~agents.controllers.base`: the agent protocol and the view of the env an agent gets;
- :mod:`~agents.controllers.baselines`: random, fixed, static, greedy (look-ahead) and oracle;
- :mod:`~agents.controllers.sb3_agent`: a Stable-Baselines3 model as an agent;
- :mod:`~agents.controllers.escalation`: the escalation controller (one decision per input);
- :mod:`~agents.controllers.normalization`: observation statistics carried with a model;
- :mod:`~agents.controllers.registry`: agent names (``fixed-4``, ``ppo``, a path, ``module:Class``).

It stands on ``abn_gym`` and ``supernets`` and never imports :mod:`agents.app`.
"""
