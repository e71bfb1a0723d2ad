"""Controllers for the abn-gym environments, and the application that trains and benchmarks them.

Two floors:

- :mod:`agents.controllers`, the library: the agent protocol, the baselines, the SB3 agent, the
  escalation controller, observation normalisation, and the registry of agent names;
- :mod:`agents.app`, the application that runs them: the benchmark and its statistics, plots,
  validation, training, the zoo, levers, the static search, and the ``abn-gym`` command.

The library never imports the application. The names users import are re-exported here
(``from agents import SB3Agent``); each is imported on first use, so ``import agents`` stays cheap.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "Agent": "agents.controllers.base",
    "BaseAgent": "agents.controllers.base",
    "EnvView": "agents.controllers.base",
    "check_agent": "agents.controllers.base",
    "FixedAgent": "agents.controllers.baselines",
    "GreedyAgent": "agents.controllers.baselines",
    "OracleAgent": "agents.controllers.baselines",
    "RandomAgent": "agents.controllers.baselines",
    "StaticAgent": "agents.controllers.baselines",
    "EscalationAgent": "agents.controllers.escalation",
    "ObsNormalizer": "agents.controllers.normalization",
    "BenchContext": "agents.controllers.model_agents",
    "make_agent": "agents.controllers.registry",
    "SB3Agent": "agents.controllers.sb3_agent",
}
"""Public name -> the library module that defines it."""

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    # lazy: SB3Agent would import stable-baselines3 (about a second) into every `import agents`
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'agents' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
