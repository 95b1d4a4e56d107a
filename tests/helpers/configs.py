"""Configs shared by tests."""

from __future__ import annotations

# trains in well under a second: 120 synthetic examples, one hidden layer of 16, 2 epochs,
# a 2 x 2 grid (p in {0, 0.5}, seeds 0 and 1)
TINY = {
    "name": "tiny",
    "dataset": {"name": "synthetic", "n_train": 120, "n_test": 80, "n_features": 8,
                "n_classes": 3},
    "model": {"hidden": [16]},
    "dropout": {"p": 0.5},
    "train": {"epochs": 2, "batch_size": 32, "optimizer": "momentum", "lr": 0.05},
    "eval": {"mc_samples": 4, "max_samples": 80, "pair_samples": 4, "ablation_draws": 1},
    "sweep": {"dropout.p": [0.0, 0.5], "seed": [0, 1]},
}
