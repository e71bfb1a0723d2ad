"""How often a one-decision (``--decide-at 0``) model plays each bit-width on the first N val images.

PYTHONPATH=. python docs/levers/scripts/count_actions.py MODEL.zip [N]
"""

import sys

import numpy as np

from abn_gym.registration import env_kwargs
from abn_gym.vector import ABNVectorEnv
from agents.controllers.sb3_agent import SB3Agent

path, n = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 5000
agent = SB3Agent.load(path)
env = ABNVectorEnv(n, **env_kwargs("ABN-ResNet20Quarter-v1", split="val", decide_at=(0,), sampling="sequential"))
obs, _ = env.reset(seed=0)  # the observation at layer 0 (the stem's output) does not depend on the actions
actions, _ = agent.model.predict(agent.obs_norm(obs) if agent.obs_norm else obs, deterministic=True)
values, counts = np.unique(actions, return_counts=True)
print({int(env.bit_choices[v]): int(c) for v, c in zip(values, counts)})
