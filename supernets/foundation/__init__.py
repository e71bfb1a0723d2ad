"""The bottom floor: what every package of abn-gym shares, and nothing else.

- :mod:`supernets.foundation.errors`: the error base class :class:`ABNGymError` and the errors
  every package raises (usage, unknown names, checkpoints, outputs);
- :mod:`supernets.foundation.files`: sha256, atomic writes, and ``weights_only`` checkpoint loading;
- :mod:`supernets.foundation.cliargs`: command-line arguments generated from dataclasses;
- :mod:`supernets.foundation.devices`: the one check of a ``--device`` option.

It imports nothing from the project (not even the rest of ``supernets``), so ``supernets``,
``abn_gym`` and ``agents`` can all stand on it. It lives inside ``supernets``, the lowest package,
because the wheel installs only the three import names ``supernets``, ``abn_gym`` and ``agents``.
"""
