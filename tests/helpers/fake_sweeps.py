"""Hand-made sweep folders in the real runs layout, with numbers chosen so answers are known.

Used by the compare / expect / plot / report / ls / show tests; nothing here trains a model.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import yaml

# test_acc by (p, seed): means 0.92 / 0.9433 / 0.95; p=0.5 - p=0.0 paired = .03, .04, .02
TEST_ACC = {
    (0.0, 0): 0.90, (0.0, 1): 0.92, (0.0, 2): 0.94,
    (0.2, 0): 0.95, (0.2, 1): 0.91, (0.2, 2): 0.97,
    (0.5, 0): 0.93, (0.5, 1): 0.96, (0.5, 2): 0.96,
}


def jitter(p: float, seed: int, scale: float) -> float:
    """A per-seed wobble that averages to 0 over seeds 0, 1, 2 and grows with p, so paired
    differences have a spread (a zero-width interval is no evidence: stats.Summary) while
    their mean over three seeds stays the round number the tests expect."""
    return scale * ((seed % 3) - 1) * (1 + 10 * p)


def coadaptation(p: float, seed: int) -> dict[str, Any]:
    """A plausible co-adaptation block: correlation falls and ablation AUC rises with p."""
    fr = [round(0.1 * i, 1) for i in range(10)]
    return {
        "layers": [{"layer": 1, "units": 16,
                    "mean_abs_corr": 0.4 - 0.3 * p + 0.01 * seed + jitter(p, seed, 0.002),
                    "decov": 1.0 - p, "participation_ratio": 4 + 4 * p,
                    "participation_ratio_norm": 0.25 + 0.25 * p, "mean_activation": 0.5,
                    "zero_fraction": 0.4, "dead_fraction": 0.05, "selectivity": 0.3}],
        "ablation": {"fractions": fr, "curve": [0.95 * (1 - f) ** (2 - 1.5 * p) for f in fr],
                     "auc": 0.4 + 0.3 * p,
                     "pair_synergy": {"mean": 0.02 - 0.02 * p, "frac_above": 0.1,
                                      "threshold": 0.01, "pairs": 32}},
    }


def uncertainty(p: float, seed: int) -> dict[str, Any]:
    edges = [i / 5 for i in range(6)]
    conf = [None, 0.3, 0.5, 0.7, 0.92]  # an empty bin is stored as null (NaN)
    return {
        "mc_samples": 10, "mc_acc": 0.9 + 0.05 * p, "mc_nll": 0.3 - 0.1 * p, "det_acc": 0.9,
        "det_nll": 0.35, "predictive_entropy": 0.2 + 0.2 * p, "mutual_information": 0.05 * p,
        "ece_det": 0.05, "ece_mc": 0.05 - 0.04 * p, "brier_det": 0.1, "brier_mc": 0.09,
        "mc_curve": {"T": [1, 2, 5, 10], "acc": [0.85, 0.88, 0.9, 0.9 + 0.05 * p]},
        "reliability": {"edges": edges,
                        "det": {"confidence": conf, "accuracy": [None, 0.2, 0.4, 0.6, 0.97],
                                "count": [0, 3, 5, 10, 80]},
                        "mc": {"confidence": conf, "accuracy": [None, 0.3, 0.5, 0.68, 0.93],
                               "count": [0, 4, 6, 12, 76]}},
    }


def default_final(params: dict[str, Any]) -> dict[str, float]:
    p, seed = float(params.get("dropout.p", 0.0)), int(params.get("seed", 0))
    test = TEST_ACC.get((p, seed), 0.9)
    # gap_acc = 0.06 - 0.1 p on average over seeds 0-2, with a per-seed spread
    train = test + 0.06 - 0.1 * p + jitter(p, seed, 0.001)
    return {"test_acc": test, "train_acc": train, "test_loss": 0.3, "train_loss": 0.1}


def write_sweep(runs_dir: Path, name: str = "fake",
                axes: dict[str, list[Any]] | None = None,
                final: Callable[[dict[str, Any]], dict[str, float]] = default_final,
                status: Callable[[dict[str, Any]], str] = lambda params: "done",
                stats: bool = False, epochs: int = 3, reverse_order: bool = False,
                extra: Callable[[dict[str, Any]], dict[str, Any]] | None = None) -> Path:
    """Write runs_dir/name in the layout of ``SweepStore``; return the sweep folder.
    ``extra(params)``: more keys of a done trial's result.json (e.g. ``learned_p``)."""
    axes = axes or {"dropout.p": [0.0, 0.2, 0.5], "seed": [0, 1, 2]}
    root = Path(runs_dir) / name
    keys = list(axes)
    combos = list(itertools.product(*axes.values()))
    if reverse_order:  # the grid order must not matter for pairing
        combos = combos[::-1]
    trials = []
    for i, combo in enumerate(combos):
        params = dict(zip(keys, combo, strict=True))
        tid = f"t{i:03d}"
        trials.append({"trial_id": tid, "params": params})
        st = status(params)
        d = root / "trials" / tid
        d.mkdir(parents=True, exist_ok=True)
        if st == "pending":
            continue
        f = final(params)
        f = {**f, "gap_acc": f["train_acc"] - f["test_acc"],
             "gap_loss": f["test_loss"] - f["train_loss"]}
        result: dict[str, Any] = {"trial_id": tid, "status": st, "params": params,
                                  "final": f if st == "done" else None,
                                  "timing": {"train_seconds": 0.5, "total_seconds": 0.6},
                                  "env": {"backend": "numpy"}}
        if st != "done":
            result["error"] = "boom"
        if extra is not None and st == "done":
            result.update(extra(params))
        if stats and st == "done":
            p, seed = float(params.get("dropout.p", 0.0)), int(params.get("seed", 0))
            result["coadaptation"] = coadaptation(p, seed)
            result["uncertainty"] = uncertainty(p, seed)
            # first-layer weights of a 4 x 4-pixel input and 16 units, as eval.save_weights keeps
            w0 = np.random.default_rng(seed).normal(size=(16, 16)).astype(np.float32)
            np.savez(d / "weights.npz", W0=w0, b0=np.zeros(16, np.float32))
        rows = []
        for e in range(1, epochs + 1):
            frac = e / epochs
            rows.append({"epoch": e, "fit_loss": 1 / e, "train_loss": 1 / e, "test_loss": 1.2 / e,
                         "train_acc": f["train_acc"] * frac, "test_acc": f["test_acc"] * frac,
                         "gap_acc": (f["train_acc"] - f["test_acc"]) * frac, "gap_loss": 0.2 / e,
                         "epoch_seconds": 0.1})
        (d / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        (d / "result.json").write_text(json.dumps(result, indent=2))
    doc = {"config": {"name": name, "seed": 0, "dropout": {"p": 0.5},
                      "model": {"hidden": [16]}},
           "sweep": axes, "trials": trials}
    (root / "sweep.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    return root
