"""Packs: many grid points trained as one stacked network, each member the trial it is alone.

A *pack* is a list of trials (:class:`~dropout_lab.packs.train.PackMember`) that share
everything :func:`~dropout_lab.packs.train.pack_key` names (architecture, data set, batch size,
epochs, dtype, variant, backend, device, ...) and may differ in the per-member settings (seed,
dropout rates, learning rate, momentum, weight decay, max-norm, schedules).
:func:`~dropout_lab.packs.train.run_pack` trains them and returns one
:class:`~dropout_lab.trial.TrialOutcome` per member, exactly the one the member gets alone.
"""

from __future__ import annotations

from dropout_lab.packs.train import PackMember, pack_key, run_pack

__all__ = ["PackMember", "pack_key", "run_pack"]
