"""Moved to :mod:`dropout_lab.store.manage` (issue 24, item 9: ``runs.py`` beside
``runner.py`` misled); this name stays for code written against it."""

from dropout_lab.store.manage import *  # noqa: F403
from dropout_lab.store.manage import __all__ as __all__
