"""What one trial trains with, built deterministically from its config: the data set, the
network with its initial weights (the ``init`` stream), the backend, device and dropout plan.

:func:`prepare` builds a :class:`Prepared`; the training loop (:mod:`dropout_lab.training`),
checkpoints (:mod:`dropout_lab.checkpoint`) and the trial (:mod:`dropout_lab.trial`) read it.
"""

from __future__ import annotations

from dataclasses import dataclass

from dropout_lab import seeds
from dropout_lab.backends import registry as backends
from dropout_lab.backends.base import Backend, NetSpec, Network, init_weights
from dropout_lab.config import ExperimentConfig
from dropout_lab.data import Dataset, load_dataset
from dropout_lab.dropout import DropoutPlan, make_plan


@dataclass
class Prepared:
    """Everything a trial trains with, built deterministically from its config."""

    config: ExperimentConfig
    data: Dataset
    spec: NetSpec
    network: Network
    device: str
    backend: Backend
    plan: DropoutPlan


def prepare(config: ExperimentConfig, threads: int | None = None) -> Prepared:
    """Load data, draw initial weights from the ``init`` stream and build the network."""
    backend = backends.create(config.backend)
    device = backend.resolve_device(config.device)
    if threads:
        backend.set_threads(threads)
    data = load_dataset(config.dataset, config.seed, config.dtype).astype(config.dtype)
    sizes = [data.n_features, *config.model.hidden, data.n_classes]
    plan = make_plan(config.dropout.variant, config.dropout.input_p, config.hidden_p(), sizes,
                     config.dtype, *config.concrete_settings(len(data.y_train)))
    spec = NetSpec.of_plan(sizes, config.model.activation, config.dtype, plan)
    weights = init_weights(sizes, config.model.activation, seeds.rng(config.seed, "init"))
    network = backend.build(spec, weights, config.train.optimizer_spec(), device)
    return Prepared(config, data, spec, network, device, backend, plan)
