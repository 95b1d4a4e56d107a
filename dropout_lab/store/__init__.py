"""The runs directory: a naming convention, atomic writes, and reading results back.

    runs/<name>/sweep.yaml                 resolved base config, axes, and the current grid
    runs/<name>/summary.csv                one row per trial of the current grid
    runs/<name>/trials/<id>/config.yaml    fully resolved trial config
    runs/<name>/trials/<id>/metrics.jsonl  one JSON object per epoch
    runs/<name>/trials/<id>/result.json    written last: a trial is done only when it says so
    runs/<name>/trials/<id>/error.txt      traceback of a failed trial
    runs/<name>/trials/<id>/weights.npz    trained weights kept by eval.save_weights
    runs/<name>/.lock                      held (flock) by the one sweep writing here

    runs/<name>/meta.json                  note and tags (``dropout-lab note``)

Modules: :mod:`~dropout_lab.store.files` (atomic writes, JSON without NaN),
:mod:`~dropout_lab.store.lock` (one sweep per folder),
:mod:`~dropout_lab.store.reading` (the one damage policy: no symlink followed, regular files
only, size caps, malformed means corrupt), :mod:`~dropout_lab.store.trial_view`
(:class:`TrialView`, the one reader of a trial folder),
:mod:`~dropout_lab.store.sweep_store` (:class:`SweepStore`, the folder itself) and
:mod:`~dropout_lab.store.manage` (notes and tags, ``ls`` filters, ``gc``, ``rm``).

No module outside this package opens a file under a sweep folder
(``tests/reliability/test_rel_store_hostile.py`` checks the source). The store prints
nothing: readers collect warnings in ``SweepStore.warnings`` / ``TrialView.warnings``.
"""

from dropout_lab.store.files import (
    atomic_write_bytes,
    atomic_write_text,
    check_output_path,
    dumps,
    is_stale_temporary,
)
from dropout_lab.store.lock import LOCK_FILE, SweepLock
from dropout_lab.store.reading import Damaged
from dropout_lab.store.sweep_store import (
    CONFIG_FILE,
    ERROR_FILE,
    METRICS_FILE,
    RESULT_FILE,
    SUMMARY_FILE,
    SWEEP_FILE,
    WEIGHTS_FILE,
    SweepStore,
)
from dropout_lab.store.trial_view import TrialView, Warn

__all__ = [
    "CONFIG_FILE", "ERROR_FILE", "LOCK_FILE", "METRICS_FILE", "RESULT_FILE", "SUMMARY_FILE",
    "SWEEP_FILE", "WEIGHTS_FILE", "Damaged", "SweepLock", "SweepStore", "TrialView", "Warn",
    "atomic_write_bytes",
    "atomic_write_text", "check_output_path", "dumps", "is_stale_temporary",
]
