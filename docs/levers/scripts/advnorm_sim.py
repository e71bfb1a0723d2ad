"""Why group-relative one-decision PPO drifts to all-2: SB3's per-minibatch advantage normalisation.

Two actions per image (all-2, all-4), a policy at p(all-4)=0.5, per-image correctness of both from val.
Expected policy-gradient on the logit of all-4, with and without per-minibatch normalisation, for
(a) group 8 (8 episodes share an image, group-relative terminal), minibatch 64;
(b) no group, reward 'baseline' (minus the all-2 correctness), minibatch 256.
"""

import numpy as np

from abn_gym.registration import env_kwargs
from abn_gym.vector import ABNVectorEnv
from agents.app.bench import run_agent
from agents.controllers.registry import BenchContext, make_agent

env = "ABN-ResNet20Quarter-v1"
probe = ABNVectorEnv(1, **env_kwargs(env, split="val"))
ctx = BenchContext(env, probe.config.supernet, probe.bit_choices)
c, f = {}, {}
for b in (2, 4):
    rec = run_agent(make_agent(f"fixed-{b}", ctx, progress=False), env, "val", 5000, progress=False)
    c[b] = np.array([r["correct"] for r in rec], float)
    f[b] = np.mean([r["bitops"] for r in rec]) / probe.engine.max_bitops
cost = {b: 0.1 * f[b] for b in (2, 4)}
print("acc", c[2].mean(), c[4].mean(), "cost", cost, "exact E[r4-r2] =", c[4].mean() - cost[4] - c[2].mean() + cost[2])
rng = np.random.default_rng(0)


def sim(group, mb, reward, trials=4000):
    g_raw, g_norm = [], []
    for _ in range(trials):
        imgs = np.repeat(rng.integers(0, 5000, mb // group), group)
        a4 = rng.random(mb) < 0.5
        corr = np.where(a4, c[4][imgs], c[2][imgs])
        term = corr - c[2][imgs] if reward == "baseline" else corr
        if group > 1:
            term = term - term.reshape(-1, group).mean(1).repeat(group)
        r = term - np.where(a4, cost[4], cost[2])
        adv = r - r.mean()  # a value function that has learnt the mean
        score = a4 - 0.5
        g_raw.append(np.mean(adv * score))
        g_norm.append(np.mean(adv / (adv.std() + 1e-8) * score))
    return np.mean(g_raw), np.mean(g_norm), np.std(g_norm) / np.sqrt(trials)


for name, group, mb, rew in [
    ("group 8, minibatch 64, default", 8, 64, "default"),
    ("no group, minibatch 256, baseline", 1, 256, "baseline"),
    ("no group, minibatch 64, baseline", 1, 64, "baseline"),
    ("no group, minibatch 256, default", 1, 256, "default"),
]:
    raw, norm, se = sim(group, mb, rew)
    print(f"{name}: raw grad {raw:+.5f}, normalised grad {norm:+.4f} (+-{se:.4f})")
