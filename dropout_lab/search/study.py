"""Optuna's side of a search: the sampler and pruner a ``search:`` section names, and the
study stored in the sweep folder. Needs the ``search`` extra (``pip install
"dropout-lab[search]"``); the import error says so.

Reproducibility: the samplers take ``search.seed``. With one worker the whole search (which
points, which trials are pruned, at which epoch) is a function of the config and the seed.
With several workers the sampler sees trials finish in the order the machine finishes them,
and a pruned trial stops after the epoch its stop message reaches it: the points and the
pruning can differ from run to run (Optuna's own documentation says the same of parallel
studies).
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from dropout_lab.config import ExperimentConfig, SearchConfig
from dropout_lab.errors import ConfigError
from dropout_lab.search.space import grid_space
from dropout_lab.store import SweepStore

INSTALL_HINT = 'a search: section needs Optuna: pip install "dropout-lab[search]"'
STUDY_NAME = "search"


def import_optuna() -> Any:
    """Optuna, quiet (its INFO lines would go to our stderr), or a ConfigError (exit 2)
    saying how to install it."""
    try:
        import optuna
    except ImportError:
        raise ConfigError(INSTALL_HINT) from None
    optuna.logging.set_verbosity(logging.WARNING)
    return optuna


def sampler_seed(seed: int, asked: int) -> int:
    """The sampler's seed for a run that finds ``asked`` suggestions in the study: Optuna
    keeps no sampler state in its storage, so a resumed or extended search seeded with
    ``search.seed`` alone would draw its first points again; ``(seed, asked)`` continues
    with new ones, and the same sequence of runs gives the same points."""
    if asked == 0:
        return seed
    return int(np.random.SeedSequence([seed, asked]).generate_state(1)[0])


def sampler(config: ExperimentConfig, asked: int = 0) -> Any:
    optuna = import_optuna()
    search = config.search
    assert search is not None
    seed = sampler_seed(search.seed, asked)
    if search.method == "grid":
        return optuna.samplers.GridSampler(grid_space(config), seed=seed)
    if search.method == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    return optuna.samplers.TPESampler(seed=seed)


def pruner(config: ExperimentConfig) -> Any:
    """The pruner of ``search.early_terminate`` (NopPruner without one)."""
    optuna = import_optuna()
    search = config.search
    assert search is not None
    et = search.early_terminate
    pruners = optuna.pruners
    if et is None:
        return pruners.NopPruner()
    if et.type == "asha":
        return pruners.SuccessiveHalvingPruner(min_resource=et.min_epochs,
                                               reduction_factor=et.reduction_factor)
    if et.type == "hyperband":
        return pruners.HyperbandPruner(min_resource=et.min_epochs,
                                       max_resource=config.train.epochs,
                                       reduction_factor=et.reduction_factor)
    if et.type == "median":
        # steps are epochs (1-based): no pruning before min_epochs
        return pruners.MedianPruner(n_startup_trials=et.n_startup_trials,
                                    n_warmup_steps=et.min_epochs - 1)
    import warnings

    with warnings.catch_warnings():  # experimental in Optuna 4: works, says so once
        warnings.simplefilter("ignore")
        return pruners.WilcoxonPruner(p_threshold=et.p_threshold)


def open_study(store: SweepStore, config: ExperimentConfig) -> Any:
    """The study of ``store``'s sweep folder, created on first use (call under the lock)."""
    import warnings

    from dropout_lab.store.study import journal_storage

    optuna = import_optuna()
    search: SearchConfig | None = config.search
    assert search is not None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ExperimentalWarning of some samplers/pruners
        study = optuna.create_study(storage=journal_storage(store), study_name=STUDY_NAME,
                                    pruner=pruner(config), direction=search.direction,
                                    load_if_exists=True)
        study.sampler = sampler(config, len(study.get_trials(deepcopy=False)))
    if study.direction.name.lower() != search.direction:
        raise ConfigError(f"search.goal: the study in {store.root} was made to "
                          f"{study.direction.name.lower()} its metric; pass --fresh to start "
                          "a new search with another goal")
    return study
