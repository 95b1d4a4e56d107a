"""Limits that keep a typo from asking for a day of compute or a terabyte of memory; each is
named in the message that refuses a larger value (docs/reliability.md lists them)."""

from __future__ import annotations

MAX_TRIALS = 10_000  # grid points per sweep (--max-trials raises it)
MAX_WIDTH = 65_536  # units per hidden layer
MAX_LAYERS = 64
MAX_EXAMPLES = 10_000_000  # synthetic examples per split
MAX_CONFIG_BYTES = 1_000_000  # a config file (YAML) or one --set value
MAX_YAML_NODES = 100_000  # scalars + collections after alias expansion
MAX_YAML_DEPTH = 100  # nested flow collections ([...], {...}); PyYAML's scanner is quadratic in it
