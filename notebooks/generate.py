"""Regenerate notebooks/*.ipynb (without outputs) from this file: python notebooks/generate.py."""
import nbformat as nbf
from pathlib import Path

from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

ROOT = Path(__file__).resolve().parents[1]

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

from agents.baselines import GreedyAgent
from agents.bench import run_agent
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
], str(ROOT / "notebooks" / "01_quickstart.ipynb"))

nb([
("md", """# 02 · Train PPO on the batched env

The native SB3 adapter runs all sub-envs as one batch through the supernet. A short budget here (a couple of minutes on 2 CPU cores); the shipped `ppo` policy was trained longer with `abn-gym train` (see its model card in `agents/policies/`)."""),
("code", """import numpy as np
import matplotlib.pyplot as plt
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import BaseCallback

from abn_gym.sb3 import make_sb3_env

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

env = make_sb3_env("ABN-ResNet-v0", num_envs=64, seed=0)
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
("md", "Evaluate on the same 1,000 test images as `fixed-4` and the static mixed-precision baselines, and plot the Pareto view."),
("code", """from agents.bench import leaderboard, format_markdown, run_agent
from agents.registry import BenchContext, make_agent
from agents.sb3_agent import SB3Agent
from agents.plots import pareto_plot
from IPython.display import Image, Markdown, display

ctx = BenchContext("ABN-ResNet-v0", "resnet20-fashionmnist", (2, 3, 4, 5, 6, 7, 8))
agents = [make_agent(n, ctx) for n in ["fixed-2", "fixed-3", "fixed-4", "fixed-8", "static-3", "static-4"]]
agents.append(SB3Agent(model, "ppo (notebook)"))
records = []
for agent in agents:
    records += run_agent(agent, "ABN-ResNet-v0", "test", 1000, progress=False)
from supernets import load_supernet\ntable = leaderboard(records, {a.name: {} for a in agents}, max_bitops=load_supernet(\"resnet20-fashionmnist\").max_bitops)
display(Markdown(format_markdown(table)))
display(Image(pareto_plot(table, "/tmp/abn_pareto_nb.png", "1,000 test images")))"""),
], str(ROOT / "notebooks" / "02_train_ppo.ipynb"))

nb([
("md", """# 03 · Your own agent on the leaderboard

An agent is any object with a `name`, `reset(num_envs, seed)` and `act(obs, infos) -> actions`. It acts on a whole batch of episodes at once. Here: a confidence-threshold policy that spends bits only on inputs whose first-stage activations look unusual."""),
("code", """import numpy as np

class ActivationThreshold:
    \"\"\"Low bits for typical inputs, high bits for inputs whose activations are far from the batch median.\"\"\"
    name = "act-threshold"
    stochastic = False

    def __init__(self, low=3, high=6, quantile=0.7):
        self.low, self.high, self.quantile = low, high, quantile

    def reset(self, num_envs, seed):
        self.unusual = None

    def act(self, obs, infos):
        bits = infos["bit_choices"]
        if infos["layer"] == 0:  # decide once per episode from the stem's activations
            score = np.abs(obs[:, :64] - np.median(obs[:, :64], axis=0)).sum(axis=1)
            self.unusual = score > np.quantile(score, self.quantile)
        return np.where(self.unusual, bits.index(self.high), bits.index(self.low))"""),
("code", """from IPython.display import Image, Markdown, display

from agents.bench import format_markdown, leaderboard, run_agent
from agents.plots import heatmap_plot, pareto_plot
from agents.registry import BenchContext, make_agent

ctx = BenchContext("ABN-ResNet-v0", "resnet20-fashionmnist", (2, 3, 4, 5, 6, 7, 8))
agents = [make_agent(n, ctx) for n in ["fixed-3", "fixed-4", "fixed-5", "fixed-6", "static-3", "static-4"]]
agents.append(ActivationThreshold())
records = []
for agent in agents:
    records += run_agent(agent, "ABN-ResNet-v0", "test", 2000, progress=False)
from supernets import load_supernet\ntable = leaderboard(records, {a.name: {} for a in agents}, max_bitops=load_supernet(\"resnet20-fashionmnist\").max_bitops)
display(Markdown(format_markdown(table)))
display(Image(pareto_plot(table, "/tmp/abn_custom_pareto.png", "2,000 test images")))"""),
("md", "Where does it spend its bits? Mean bit-width per layer for each true class:"),
("code", """from supernets.data import load_split

labels = load_split("test").labels.numpy()
display(Image(heatmap_plot(records, "act-threshold", labels, "/tmp/abn_custom_heatmap.png")))"""),
("md", "The same agent runs from the command line on the full leaderboard: put the class in an importable module and pass `--agents mymodule:ActivationThreshold,fixed-4,static-4` to `abn-gym bench`."),
], str(ROOT / "notebooks" / "03_custom_agent.ipynb"))
