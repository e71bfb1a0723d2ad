"""`abn-gym zoo`: every SB3 / sb3-contrib algorithm that fits the action space, several seeds, one table.

One module per job, in the order a run goes through them:

- :mod:`~agents.app.zoo.hyperparams`: ``agents/hyperparams/zoo.yml``, one rl-zoo3 hyper-parameter
  section per algorithm, read, checked, and exported as rl-zoo3's files (``--export-rl-zoo3 DIR``);
- :mod:`~agents.app.zoo.plan`: the arguments (:class:`ZooArgs`) and the table of runs, one frozen
  :class:`RunSpec` per (algorithm, env, seed), and which runs are finished;
- :mod:`~agents.app.zoo.run`: one run: train it with :func:`agents.app.train.train_agent`
  (checkpoints, resuming, model card), record its val learning curve, score its final policy;
- :mod:`~agents.app.zoo.ray_tasks`: the runs as Ray tasks (``--ray local`` or a cluster address);
- :mod:`~agents.app.zoo.curves` and :mod:`~agents.app.zoo.report`: the learning curves, and the
  leaderboards with rliable's IQM over seeds;
- :mod:`~agents.app.zoo.runner`: :func:`zoo`, all of the above in order;
- :mod:`~agents.app.zoo.cli`: the ``abn-gym zoo`` command.

Resumable: a finished run (its ``result.json``) is skipped; an interrupted one resumes from its last
checkpoint. Every file is written atomically. Everything goes into ``--out`` (default ``results/zoo``)::

    runs/<env>/<algo>/seed-<s>/   model.zip, card.json, curve.json, records-<split>-<n>.json, result.json
    curves.csv, curves-<env>.png  val return against env steps, mean and 95% interval over seeds
    leaderboard-<env>.{csv,md}    baselines and each algorithm's final policies (IQM over seeds)
    zoo.md, summary.json          everything above in one page
"""

from __future__ import annotations

# No name of a sub-module is re-exported (the function ``plan``): it would hide the module itself.
from agents.app.zoo.hyperparams import HYPERPARAMS, ZooConfigError, export_rl_zoo3, load_hyperparams
from agents.app.zoo.plan import RunSpec, ZooArgs
from agents.app.zoo.runner import zoo

__all__ = ["HYPERPARAMS", "RunSpec", "ZooArgs", "ZooConfigError", "export_rl_zoo3", "load_hyperparams", "zoo"]
