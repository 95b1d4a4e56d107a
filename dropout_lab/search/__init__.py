"""Adaptive search over the sweep axes (docs/search.md): Optuna's samplers choose the points,
its pruners stop hopeless trials, every trial is an ordinary trial folder.

Words: a *suggestion* is one Optuna trial (a value of every searched axis); it runs as a
*block*, one trial of dropout-lab per seed of the seed axis (a paired block, the Wilcoxon
pruner's instances), and the study's objective is the block's mean of ``search.metric``.

- :mod:`~dropout_lab.search.space`: the searched axes, their Optuna distributions, and the
  block of grid points of a suggestion (no Optuna import);
- :mod:`~dropout_lab.search.study`: samplers, pruners and the study (needs the ``search``
  extra);
- :mod:`~dropout_lab.search.loop`: the ask/tell loop in the driver: it feeds the executor one
  point at a time, reports each epoch's block mean to the study and stops pruned trials.
"""
