"""Tiny zoo settings shared by the zoo's tests: the shipped zoo.yml shrunk to a few hundred steps."""

import yaml

from agents.app.zoo.hyperparams import load_hyperparams
from agents.app.zoo.plan import ZooArgs


def tiny_conf(tmp_path, algos=None, timesteps=144, envs=("ABN-ResNet-v0", "ABN-ResNet-Budget-v0")):
    """The shipped zoo.yml on ``envs``, shrunk to a few hundred steps: 8 sub-envs, one-rollout PPO-likes, small nets."""
    conf = load_hyperparams()
    tiny = {}
    for algo, section in conf.items():
        if algos is not None and algo not in algos:
            continue
        tiny[algo] = {}
        for env_id, hp in section.items():
            if env_id not in envs:
                continue
            hp = {**hp, "n_timesteps": timesteps, "n_envs": 8}
            hp.update({k: v for k, v in {"n_steps": 18, "batch_size": 72, "n_epochs": 1}.items() if k in hp})
            hp.update({k: v for k, v in {"learning_starts": 16, "buffer_size": 1000}.items() if k in hp})
            hp["policy_kwargs"] = {**hp.get("policy_kwargs", {}), "net_arch": [8]}
            tiny[algo][env_id] = hp
    path = tmp_path / "tiny.yml"
    path.write_text(yaml.safe_dump(tiny))
    return path


def tiny_args(tmp_path, conf, **kw):
    base = dict(
        out=str(tmp_path / "zoo"),
        conf=str(conf),
        seeds=[0],
        curve_points=2,
        eval_episodes=16,
        episodes=32,
        baselines=["fixed-2", "fixed-4"],
        progress=False,
    )
    return ZooArgs(**{**base, **kw})
