"""The interface packs-sweep calls: pack_key groups what may share a pack, run_pack returns one
outcome per member in order, each the trial it is alone (plus env.pack)."""

from __future__ import annotations

import copy

import pytest

from dropout_lab.config import validate
from dropout_lab.packs import PackMember, pack_key, run_pack
from dropout_lab.sweep import trial_id_of
from tests.helpers.configs import TINY

pytest.importorskip("torch", reason="packs train on the torch backend")


def config(**changes):
    raw = copy.deepcopy(TINY)
    raw.pop("sweep")
    raw.update(backend="torch", device="cpu", dtype="float64")
    for dotted, value in changes.items():
        *path, key = dotted.split("__")
        holder = raw
        for part in path:
            holder = holder.setdefault(part, {})
        holder[key] = value
    return validate(raw)


def test_pack_key_shares_all_but_the_per_member_settings():
    base = pack_key(config())
    assert base is not None
    assert pack_key(config(seed=3, dropout__p=0.2, train__lr=0.1, train__weight_decay=1e-3,
                           train__max_norm=2.0, dropout__input_p=0.1)) == base
    assert pack_key(config(model__hidden=[8])) != base
    assert pack_key(config(train__batch_size=16)) != base
    assert pack_key(config(dropout__variant="gaussian")) != base
    assert pack_key(config(dtype="float32")) != base
    assert pack_key(config(backend="numpy")) is None
    # concrete dropout's p is a parameter of each network: such a point runs alone
    assert pack_key(config(dropout__variant="concrete")) is None


def test_run_pack_returns_each_members_solo_outcome_in_order():
    from dropout_lab.trial import run_trial

    cfgs = [config(seed=1, dropout__p=0.5), config(seed=0, dropout__p=0.2, train__lr=0.1)]
    members = [PackMember(c.trial_dict(), trial_id_of(c), {"i": i}) for i, c in enumerate(cfgs)]
    seen = []
    outcomes = run_pack(members, threads=1,
                        on_epoch=lambda tid, epoch, epochs, row: seen.append((tid, epoch)))
    assert [o.trial_id for o in outcomes] == [m.trial_id for m in members]
    for index, (member, outcome) in enumerate(zip(members, outcomes, strict=True)):
        solo = run_trial(member.config, member.trial_id, member.params, threads=1)
        assert outcome.status == solo.status == "done"
        assert outcome.result["env"]["pack"] == {"size": 2, "index": index}
        assert outcome.result["final"] == pytest.approx(solo.result["final"], rel=1e-9)
        assert [r["fit_loss"] for r in outcome.metrics] == pytest.approx(
            [r["fit_loss"] for r in solo.metrics], rel=1e-9)
    assert sorted(seen) == sorted((m.trial_id, e) for m in members for e in (1, 2))


def test_without_torch_each_member_fails_with_the_backends_message():
    """In a Python where torch cannot be imported, run_pack gives each member the failed
    outcome its solo trial gets (the BackendError naming the missing package)."""
    import subprocess
    import sys
    import textwrap

    script = textwrap.dedent("""
        import sys
        sys.modules["torch"] = None  # import torch now raises ImportError
        from dropout_lab.packs import PackMember, run_pack
        from tests.helpers.configs import TINY
        base = {k: v for k, v in TINY.items() if k != "sweep"}
        configs = [dict(base, backend="torch", seed=s) for s in (0, 1)]
        outcomes = run_pack([PackMember(c, f"t{i}", {}) for i, c in enumerate(configs)])
        for o in outcomes:
            print(o.status, o.result["env"]["pack"]["index"], o.result["error"])
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         check=True).stdout.splitlines()
    assert len(out) == 2
    for index, line in enumerate(out):
        assert line.startswith(f"failed {index} ") and "torch" in line and "install" in line
