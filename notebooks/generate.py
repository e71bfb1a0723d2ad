"""Regenerate notebooks/*.ipynb (without outputs) from this file: python notebooks/generate.py [FOLDER].

`make notebooks` runs this, then executes the notebooks in place, so they are committed with their
outputs. FOLDER (default: notebooks/) lets a test regenerate them elsewhere and compare the sources.
"""
import sys
from pathlib import Path

import nbformat as nbf
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

ROOT = Path(__file__).resolve().parents[1]
OUT = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "notebooks"
OUT.mkdir(parents=True, exist_ok=True)

# The helper both leaderboard notebooks use: what `abn-gym bench` computes, without writing files.
BENCH_HELPER = """import time

from abn_gym.registration import env_kwargs
from abn_gym.vector import ABNVectorEnv
from agents.app.bench import add_paired, format_markdown, leaderboard, run_agent
from agents.controllers.registry import BenchContext, make_agent


def context(env_id):
    \"\"\"The env's supernet and bit-widths, which the named baselines need.\"\"\"
    probe = ABNVectorEnv(1, **env_kwargs(env_id, split="test"))
    return BenchContext(env_id, probe.config.supernet, probe.bit_choices), probe.engine.max_bitops


def bench_table(env_id, agents, episodes, reference="fixed-8"):
    \"\"\"Every agent on the same first `episodes` test images; the leaderboard with its paired columns.\"\"\"
    _, max_bitops = context(env_id)
    records, meta = [], {}
    for agent in agents:
        start = time.perf_counter()
        records += run_agent(agent, env_id, "test", episodes, progress=False)
        meta[agent.name] = {"wall_s": time.perf_counter() - start, "uses_label": getattr(agent, "uses_label", False)}
    table = add_paired(leaderboard(records, meta, max_bitops), records, reference)
    return table, records"""


def nb(cells, path):
    n = new_notebook()
    n.cells = [new_markdown_cell(c[1]) if c[0] == "md" else new_code_cell(c[1]) for c in cells]
    n.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbf.write(n, path)

nb([
("md", """# 01 · Quickstart: one episode by hand

An **episode** is one Fashion-MNIST image. A **step** runs one switchable layer of the frozen ResNet-20 supernet at the bit-width you choose (the **action**). After the 18th layer the 8-bit classifier predicts; the default reward is +1 if correct minus `cost_coef` times the BitOps spent (as a fraction of the all-8-bit network)."""),
("code", """import gymnasium as gym
import matplotlib.pyplot as plt
import numpy as np

import abn_gym  # registers ABN-ResNet-v0 and ABN-ResNet-Budget-v0
from supernets.data import CLASSES

env = gym.make("ABN-ResNet-v0", split="test")
print(env.action_space, "-> bit-widths", env.unwrapped.bit_choices)
print(env.observation_space)"""),
("md", "Reset on a chosen test image and look at it."),
("code", """obs, info = env.reset(seed=0, options={"index": 0})
image = env.unwrapped.engine.split.images[0, 0].numpy()
plt.figure(figsize=(2, 2)); plt.imshow(image, cmap="gray"); plt.axis("off"); plt.title("test image 0")
plt.show()"""),
("md", "Step through the 18 layers by hand: 4 bits in the first stage, 3 in the middle, 6 at the end."),
("code", """plan = [4] * 6 + [3] * 6 + [6] * 6
total = 0.0
for bits in plan:
    obs, reward, terminated, truncated, info = env.step(env.unwrapped.bit_choices.index(bits))
    total += reward
    print(f"layer {info['layer']:2d}: {info['bits']} bits, "
          f"{info['bitops_step'] / 1e6:6.1f} M BitOps, reward {reward:+.4f}")
print("terminated:", terminated, "| prediction:", CLASSES[info["prediction"]], "| label:", CLASSES[info["label"]])
print(f"episode BitOps {info['bitops'] / 1e9:.3f} G = {info['bitops_fraction']:.1%} of all-8; return {total:.4f}")"""),
("md", """## An easy and a hard input under `greedy`

`greedy` looks ahead: at each layer it takes the lowest bit-width that keeps the class the all-8 continuation predicts, with confidence at least `tau`. Look-ahead is label-free but not free: its passes are counted as decision MACs. We pick an easy image (the all-2-bit network is confident and right) and a hard one (the all-8-bit network is unsure)."""),
("code", """import torch

from agents.controllers.baselines import GreedyAgent
from agents.app.bench import run_agent
from supernets import load_supernet

net = load_supernet("resnet20-fashionmnist")
split = env.unwrapped.engine.split
x = split.inputs(slice(0, 500))
p2 = torch.softmax(net(x, [2] * 18), 1)
p8 = torch.softmax(net(x, [8] * 18), 1)
labels = split.labels[:500]
easy = int(torch.argmax(torch.where(p2.argmax(1) == labels, p2.max(1).values, torch.tensor(0.0))))
hard = int(torch.argmin(p8.max(1).values))
records = run_agent(GreedyAgent(tau=0.5), "ABN-ResNet-v0", "test", None, indices=[easy, hard], progress=False)
fig, axes = plt.subplots(1, 3, figsize=(10, 2.5), gridspec_kw={"width_ratios": [1, 1, 3]})
for ax, r, name in zip(axes, records, ["easy", "hard"]):
    ax.imshow(split.images[r["index"], 0], cmap="gray"); ax.axis("off")
    ax.set_title(f"{name}: {CLASSES[int(split.labels[r['index']])]}", fontsize=9)
for r, name in zip(records, ["easy", "hard"]):
    axes[2].plot(r["bits"], marker="o", label=f"{name}: {r['bitops'] / 1e9:.3f} GBitOps, correct={r['correct']}")
axes[2].set_xlabel("layer"); axes[2].set_ylabel("bits"); axes[2].legend(fontsize=8)
plt.show()
for r, name in zip(records, ["easy", "hard"]):
    print(name, r["bits"], f"decision MACs {r['decision_macs'] / 1e6:.1f} M")"""),
], str(OUT / "01_quickstart.ipynb"))

nb([
("md", """# 02 · Train PPO on the batched env

The native SB3 adapter runs all sub-envs as one batch through the supernet. A short budget here (a couple of minutes on 2 CPU cores); the shipped `ppo` policy was trained longer with `abn-gym train` (see its model card in `agents/policies/`)."""),
("code", """import numpy as np
import matplotlib.pyplot as plt
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import BaseCallback

from abn_gym.sb3 import make_sb3_env

ENV_ID = "ABN-ResNet-v0"  # or the steep task, "ABN-ResNet20Quarter-v1": everything below follows the id
TIMESTEPS = 18 * 64 * 12  # about 14k steps: a smoke-sized budget

class Curve(BaseCallback):
    \"\"\"Collect finished episodes' returns from VecMonitor.\"\"\"
    def __init__(self):
        super().__init__(); self.points = []
    def _on_step(self):
        for info in self.locals["infos"]:
            if "episode" in info:
                self.points.append((self.num_timesteps, info["episode"]["r"]))
        return True

env = make_sb3_env(ENV_ID, num_envs=64, seed=0)
model = PPO("MlpPolicy", env, n_steps=36, batch_size=576, n_epochs=4, gamma=1.0, ent_coef=0.01, seed=0, verbose=0)
curve = Curve()
model.learn(TIMESTEPS, callback=curve)"""),
("code", """steps, returns = np.array(curve.points).T
window = 256
smooth = np.convolve(returns, np.ones(window) / window, mode="valid")
plt.figure(figsize=(6, 3))
plt.plot(steps[window - 1:], smooth)
plt.xlabel("environment steps"); plt.ylabel(f"episode return (mean of {window})"); plt.title("PPO learning curve")
plt.show()"""),
("md", """Evaluate on the same 1,000 test images as the uniform (`fixed-b`) and static mixed-precision (`static-b`) baselines. Because every agent runs on the same images, the leaderboard's paired columns compare rows image by image: the difference to `fixed-8`, the gap to the **static front** (the most accurate static configuration that spends no more BitOps) and to the **static mixtures** (the best coin flip between two static configurations at the same BitOps), each with its paired 95% interval."""),
("code", BENCH_HELPER),
("code", """from IPython.display import Image, Markdown, display

from agents.app.plots import pareto_plot
from agents.controllers.sb3_agent import SB3Agent

ctx, _ = context(ENV_ID)
agents = [make_agent(n, ctx) for n in ["fixed-2", "fixed-3", "fixed-4", "fixed-8", "static-3", "static-4"]]
agents.append(SB3Agent(model, "ppo (notebook)"))
table, records = bench_table(ENV_ID, agents, 1000)
display(Markdown(format_markdown(table)))
display(Image(pareto_plot(table, "/tmp/abn_pareto_nb.png", f"{ENV_ID}: 1,000 test images")))"""),
], str(OUT / "02_train_ppo.ipynb"))

nb([
("md", """# 03 · Your own agent on the leaderboard

An agent is any object with a `name`, `reset(num_envs, seed)` and `act(obs, infos) -> actions`. It acts on a whole batch of episodes at once. Here: a policy that spends bits only on inputs whose first-stage activations look unusual. It runs on both supernets: the observation's layout (where the per-channel activation means sit) depends on the supernet's widest layer, so the agent reads it from the env instead of hard-coding it."""),
("code", """import gymnasium as gym
import numpy as np

import abn_gym  # registers the ids


class ActivationThreshold:
    \"\"\"Low bits for typical inputs, high bits for inputs whose activations are far from the batch median.\"\"\"

    name = "act-threshold"
    stochastic = False

    def __init__(self, means, low=3, high=6, quantile=0.7):
        self.means = means  # the observation's slice of per-channel activation means
        self.low, self.high, self.quantile = low, high, quantile

    def reset(self, num_envs, seed):
        self.unusual = None

    def act(self, obs, infos):
        bits = infos["bit_choices"]
        if infos["layer"] == 0:  # decide once per episode from the stem's activations
            stats = obs[:, self.means]
            score = np.abs(stats - np.median(stats, axis=0)).sum(axis=1)
            self.unusual = score > np.quantile(score, self.quantile)
        return np.where(self.unusual, bits.index(self.high), bits.index(self.low))


def for_env(env_id):
    \"\"\"The agent, set up for the observation layout of env_id's supernet.\"\"\"
    layout = gym.make(env_id).unwrapped.engine.layout
    print(f"{env_id}: observation of {layout.size} values; activation means at {layout.slices['act_mean']}")
    return ActivationThreshold(layout.slices["act_mean"])"""),
("code", BENCH_HELPER),
("md", "The agent beside uniform and static baselines on the first 2,000 test images of each task, with the paired columns (reference: `fixed-8`)."),
("code", """from IPython.display import Image, Markdown, display

from agents.app.plots import heatmap_plot, pareto_plot
from supernets.data import load_split

labels = load_split("test").labels.numpy()
for env_id in ["ABN-ResNet-v0", "ABN-ResNet20Quarter-v1"]:
    ctx, _ = context(env_id)
    agents = [make_agent(n, ctx) for n in ["fixed-3", "fixed-4", "fixed-5", "fixed-8", "static-3", "static-4"]]
    agents.append(for_env(env_id))
    table, records = bench_table(env_id, agents, 2000)
    display(Markdown(f"### {env_id}"))
    display(Markdown(format_markdown(table)))
    display(Image(pareto_plot(table, f"/tmp/abn_custom_pareto_{env_id}.png", f"{env_id}: 2,000 test images")))
    # Where it spends its bits, per true class: it picks one of two whole configurations per image.
    display(Image(heatmap_plot(records, "act-threshold", labels, f"/tmp/abn_custom_bits_{env_id}.png")))"""),
("md", "The same agent runs from the command line on the full leaderboard: put the class in an importable module (with a default for `means`, or a small subclass per task) and pass `--agents mymodule:ActivationThreshold,fixed-4,static-4` to `abn-gym bench`."),
], str(OUT / "03_custom_agent.ipynb"))
