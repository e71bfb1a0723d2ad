"""Train one multi-objective policy for every trade-off: ``python -m agents.app.train_morl``.

morl-baselines' Envelope Q-learning on a multi-objective id (``mo-ABN-ResNet20Quarter-v1``): one
Q-network takes the objectives' weight vector ``w`` beside the observation, and a new ``w`` is drawn
for every episode, so one network learns every linear trade-off between accuracy and cost.
morl-baselines is not a dependency of abn-gym: ``make clients`` installs it beside the project.
The trained network is exported as plain tensors (``policy.pt``, loaded with ``weights_only=True``)
and a card with its sha256, and runs at bench time without morl-baselines
(:class:`agents.controllers.conditioned.EnvelopeAgent`, the ``envelope@sweep`` curve).

The script reads top to bottom, CleanRL style:

1. the env: the ``mo-`` id with ``decide_at``, ``bit_choices`` and ``reward``; its observations standardised
   with the mean and deviation of its decision observations on ``--norm-episodes`` train images
   (random actions), and its cost objective multiplied by ``--cost-scale`` (so that the useful
   trade-offs are not crowded at a tiny cost weight);
2. Envelope, trained for ``--timesteps`` steps on the train split;
3. the export: ``policy.pt`` and ``card.json`` in ``--out``;
4. the calibration: the deterministic policy on ``--calibration-episodes`` val images at every cost
   weight of a grid, each weight's mean cost (fraction of all-8) and accuracy, written into the card.
   ``envelope@sweep`` reads the weights for a cost range from it.
"""

from __future__ import annotations

import argparse
import json
import shlex
import shutil
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from abn_gym.registration import env_kwargs
from agents.app.episodes import run_agent
from agents.app.static_search import check_source_checkout
from agents.controllers.conditioned import ENVELOPE_KIND, EnvelopeAgent, load_envelope_policy
from agents.controllers.static_configs import POLICY_DIR
from supernets.foundation.cliargs import arg, dataclass_from_args, dataclass_parser
from supernets.foundation.errors import UsageError
from supernets.foundation.files import atomic_torch_save, atomic_write_json, sha256
from supernets.registry import read_supernet_card


@dataclass
class MORLTrainArgs:
    """Arguments of ``python -m agents.app.train_morl``."""

    env: str = arg("mo-ABN-ResNet20Quarter-v1", "multi-objective environment id (an mo- id)")
    decide_at: str = arg("0", "decide only at these layers, comma-separated (env option decide_at)")
    bit_choices: str = arg("2,3,4", "the actions' bit-widths, comma-separated (env option bit_choices)")
    reward: str = arg(
        "baseline",
        "the env's reward, whose terminal term is the first objective; baseline subtracts the image's all-2 "
        "correctness, which leaves every action's ranking as it is and most of the noise out",
    )
    cost_scale: float = arg(0.1, "the cost objective is multiplied by this in training (w's cost weight reads in it)")
    timesteps: int = arg(30_000, "environment steps (decisions) to train for")
    seed: int = arg(0, "seed of the network, the exploration and the environment")
    net_arch: str = arg("64,64", "hidden layer sizes of the Q-network, comma-separated")
    learning_rate: float = arg(3e-4, "Adam learning rate")
    batch_size: int = arg(64, "minibatch size of each update")
    buffer_size: int = arg(30_000, "replay buffer size")
    learning_starts: int = arg(1000, "random actions before learning starts")
    initial_epsilon: float = arg(1.0, "exploration rate at the start")
    final_epsilon: float = arg(0.05, "exploration rate after --epsilon-decay-steps")
    epsilon_decay_steps: int = arg(15_000, "steps over which exploration decays linearly")
    target_net_update_freq: int = arg(500, "steps between target-network updates")
    num_sample_w: int = arg(4, "weight vectors sampled for each envelope target")
    per: bool = arg(False, "prioritised experience replay (morl-baselines' default; uniform replay by default here)")
    gamma: float = arg(1.0, "discount: episodes are a few decisions long, so none by default")
    norm_episodes: int = arg(5000, "train images whose decision observations give the standardisation")
    calibration_episodes: int = arg(2000, "first val images of the calibration (0 to skip)")
    calibration_points: int = arg(21, "cost weights of the calibration grid, from 0 to 1")
    out: str = arg("runs/envelope", "output folder: policy.pt and card.json")
    publish: bool = arg(False, "developer step: also copy policy and card to agents/policies/envelope-<env id>")


def import_envelope() -> Any:
    """morl-baselines' Envelope class, or an error saying how to install it."""
    try:
        # lazy: morl-baselines is an optional client installed by `make clients`, never a dependency
        from morl_baselines.multi_policy.envelope.envelope import Envelope
    except ImportError as exc:
        raise UsageError(
            f"training an Envelope policy needs morl-baselines ({exc}); install it beside abn-gym with `make clients`"
        ) from None
    return Envelope


def parse_ints(text: str, option: str) -> tuple[int, ...]:
    """Comma-separated integers of ``option``."""
    try:
        values = tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError:
        values = ()
    if not values:
        raise UsageError(f"{option} takes comma-separated integers, e.g. 0 or 2,3,4; got {text!r}")
    return values


def scalar_id(env_id: str) -> str:
    """The scalar id of a multi-objective id (``mo-ABN-ResNet20Quarter-v1`` -> ``ABN-ResNet20Quarter-v1``)."""
    if not env_id.startswith("mo-"):
        raise UsageError(f"--env must be a multi-objective id (mo-...), e.g. mo-ABN-ResNet20Quarter-v1; got {env_id!r}")
    return env_id[3:]


class ScaleCost(gym.Wrapper):
    """Multiplies the reward vector's cost objective (index 1) by ``scale``; the rest is the env's."""

    def __init__(self, env: gym.Env, scale: float) -> None:
        super().__init__(env)
        self.scale = np.array([1.0, float(scale)])

    def step(self, action: Any) -> Any:
        """The env's step with the cost objective scaled."""
        obs, reward, terminated, truncated, info = self.env.step(action)
        return obs, np.asarray(reward) * self.scale, terminated, truncated, info


def standardise(env: gym.Env, mean: np.ndarray, scale: np.ndarray) -> gym.Env:
    """``env`` with observations ``(obs - mean) / scale`` as float32."""
    space = gym.spaces.Box(-np.inf, np.inf, mean.shape, np.float32)
    return gym.wrappers.TransformObservation(env, lambda o: ((o - mean) / scale).astype(np.float32), space)


def observation_stats(env: gym.Env, episodes: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean and deviation (at least 1e-6) of the decision observations of ``episodes`` random-action episodes."""
    rows = []
    rng = np.random.default_rng(seed)
    obs, _ = env.reset(seed=seed)
    for _ in range(episodes):
        done = False
        while not done:
            rows.append(obs)
            obs, _, terminated, truncated, _ = env.step(int(rng.integers(env.action_space.n)))
            done = terminated or truncated
        obs, _ = env.reset()
    data = np.asarray(rows, dtype=np.float64)
    return data.mean(axis=0), np.maximum(data.std(axis=0), 1e-6)


def export_policy(agent: Any, mean: np.ndarray, scale: np.ndarray, meta: dict[str, Any]) -> dict[str, Any]:
    """The plain-tensor policy of a trained Envelope ``agent`` (what :func:`envelope_network` rebuilds)."""
    return {
        "kind": ENVELOPE_KIND,
        "q_net": {k: v.detach().cpu().clone() for k, v in agent.q_net.state_dict().items()},
        "obs_mean": torch.as_tensor(mean, dtype=torch.float32),
        "obs_scale": torch.as_tensor(scale, dtype=torch.float32),
        **meta,
    }


def calibrate(path: Path, env_id: str, episodes: int, points: int) -> list[list[float]]:
    """``[weight, mean cost fraction, accuracy]`` of the saved policy at ``points`` cost weights, on val."""
    policy, _ = load_envelope_policy(path)
    rows = []
    for w in np.linspace(0.0, 1.0, points):
        records = run_agent(EnvelopeAgent(policy, float(w)), env_id, "val", episodes, progress=False)
        cost = float(np.mean([r["bitops_fraction"] for r in records]))
        rows.append([round(float(w), 6), cost, float(np.mean([r["correct"] for r in records]))])
    return rows


def train(args: MORLTrainArgs, command: str = "") -> Path:
    """Train, export and calibrate; returns the policy file's path."""
    envelope_cls = import_envelope()
    base = scalar_id(args.env)
    decide_at, bits = parse_ints(args.decide_at, "--decide-at"), parse_ints(args.bit_choices, "--bit-choices")
    net_arch = list(parse_ints(args.net_arch, "--net-arch"))
    if args.timesteps < 1 or args.norm_episodes < 1:
        raise UsageError("--timesteps and --norm-episodes must be at least 1")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    kwargs = {"decide_at": decide_at, "bit_choices": bits, "reward": args.reward}

    # 1. the env, standardised and with the cost scaled
    torch.manual_seed(args.seed)
    mean, scale = observation_stats(gym.make(args.env, split="train", **kwargs), args.norm_episodes, args.seed + 1)
    env = ScaleCost(standardise(gym.make(args.env, split="train", **kwargs), mean, scale), args.cost_scale)
    env.reset(seed=args.seed)

    # 2. Envelope
    agent = envelope_cls(
        env,
        learning_rate=args.learning_rate,
        initial_epsilon=args.initial_epsilon,
        final_epsilon=args.final_epsilon,
        epsilon_decay_steps=args.epsilon_decay_steps,
        target_net_update_freq=args.target_net_update_freq,
        buffer_size=args.buffer_size,
        net_arch=net_arch,
        batch_size=args.batch_size,
        learning_starts=args.learning_starts,
        gamma=args.gamma,
        num_sample_w=args.num_sample_w,
        per=args.per,
        homotopy_decay_steps=args.timesteps,
        log=False,
        seed=args.seed,
        device="cpu",
    )
    start = time.perf_counter()
    agent.train(total_timesteps=args.timesteps, eval_env=None, ref_point=None)
    seconds = time.perf_counter() - start

    # 3. the export
    meta = {
        "env": base,
        "decide_at": list(decide_at),
        "bit_choices": list(bits),
        "obs_dim": int(mean.shape[0]),
        "action_dim": len(bits),
        "reward_dim": int(env.unwrapped.reward_dim),
        "net_arch": net_arch,
        "cost_scale": float(args.cost_scale),
    }
    path = out / "policy.pt"
    atomic_torch_save(export_policy(agent, mean, scale, meta), path)
    supernet = env_kwargs(base)["supernet"]
    card: dict[str, Any] = {
        "kind": ENVELOPE_KIND,
        "env": base,
        "trained_on": args.env,
        "env_kwargs": {"decide_at": list(decide_at), "bit_choices": list(bits)},
        "supernet": supernet,
        "supernet_sha256": read_supernet_card(supernet)["sha256"],
        "objectives": [f"terminal term of reward={args.reward!r}", f"-{args.cost_scale:g} x BitOps fraction of all-8"],
        "weight": "the cost objective's weight w1 of w = [1 - w1, w1]; the policy acts argmax_a w . Q(s, a, w)",
        "args": asdict(args),
        "command": command,
        "train_seconds": round(seconds, 1),
        "file": path.name,
        "sha256": sha256(path),
    }
    atomic_write_json(out / "card.json", card)

    # 4. the calibration on val
    if args.calibration_episodes > 0:
        card["calibration"] = calibrate(path, base, args.calibration_episodes, args.calibration_points)
        card["calibration_split"] = {"split": "val", "episodes": args.calibration_episodes}
        atomic_write_json(out / "card.json", card)
    if args.publish:
        publish(out, base)
    return path


def publish(run_dir: Path, env_id: str) -> Path:
    """Developer step: copy a run's policy.pt and card.json to agents/policies/envelope-<env id>.{pt,json}."""
    target = POLICY_DIR / f"envelope-{env_id}.pt"
    check_source_checkout(target)
    shutil.copyfile(run_dir / "policy.pt", target.with_suffix(".pt.tmp"))
    target.with_suffix(".pt.tmp").replace(target)
    new = json.loads((run_dir / "card.json").read_text())
    new["file"] = target.name
    atomic_write_json(target.with_suffix(".json"), new)
    return target


def build_parser() -> argparse.ArgumentParser:
    """The command line, generated from :class:`MORLTrainArgs`."""
    return dataclass_parser(
        MORLTrainArgs, prog="python -m agents.app.train_morl", description=(__doc__ or "").splitlines()[0]
    )


def main(argv: list[str] | None = None) -> int:
    """Command line: ``python -m agents.app.train_morl --timesteps 40000 --seed 0 --out runs/envelope``."""
    argv = sys.argv[1:] if argv is None else argv
    args = dataclass_from_args(MORLTrainArgs, build_parser().parse_args(argv))
    try:
        path = train(args, "python -m agents.app.train_morl " + shlex.join(argv))
    except UsageError as exc:
        print(f"abn-gym: error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {path} and {path.parent / 'card.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
