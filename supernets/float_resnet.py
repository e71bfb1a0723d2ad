"""The float reference under its first name: :class:`FloatResNet` is :class:`~supernets.float_net.FloatSupernet`."""

from supernets.float_net import FloatSupernet, warm_start

FloatResNet = FloatSupernet
"""Kept for code written before families: the float reference of any family's config."""

__all__ = ["FloatResNet", "FloatSupernet", "warm_start"]
