"""The runs directory: a naming convention, atomic writes, and reading results back.

    runs/<name>/sweep.yaml                 resolved base config, axes, and the current grid
    runs/<name>/summary.csv                one row per trial of the current grid
    runs/<name>/trials/<id>/config.yaml    fully resolved trial config
    runs/<name>/trials/<id>/metrics.jsonl  one JSON object per epoch
    runs/<name>/trials/<id>/result.json    written last: a trial is done only when it says so
    runs/<name>/trials/<id>/error.txt      traceback of a failed trial
    runs/<name>/trials/<id>/weights.npz    trained weights kept by eval.save_weights
    runs/<name>/.lock                      held (flock) by the one sweep writing here

Modules: :mod:`~dropout_lab.store.files` (atomic writes, JSON without NaN),
:mod:`~dropout_lab.store.lock` (one sweep per folder) and
:mod:`~dropout_lab.store.sweep_store` (:class:`SweepStore`, the folder itself).
"""

from dropout_lab.store.files import (
    atomic_write_bytes,
    atomic_write_text,
    check_output_path,
    dumps,
    is_stale_temporary,
)
from dropout_lab.store.lock import LOCK_FILE, SweepLock
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

__all__ = [
    "CONFIG_FILE", "ERROR_FILE", "LOCK_FILE", "METRICS_FILE", "RESULT_FILE", "SUMMARY_FILE",
    "SWEEP_FILE", "WEIGHTS_FILE", "SweepLock", "SweepStore", "atomic_write_bytes",
    "atomic_write_text", "check_output_path", "dumps", "is_stale_temporary",
]
