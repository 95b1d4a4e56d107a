"""Constants and builders shared by tests, imported by name (``from tests.helpers.configs
import TINY``); fixtures are in conftest.py files, where pytest finds them without an import.

- ``configs``: TINY, the config that trains in well under a second.
- ``fake_sweeps``: hand-made sweep folders with known answers (nothing trains).
- ``reliability``: the fault-injection suite's CLI runs and its failure check.
"""
