"""Grid points -> packs (dropout_lab/packs/plan.py) and the pack size (packs/sizing.py):
known answers for the grouping rules, ``--pack`` parsing, the auto rule and the cost model."""

from __future__ import annotations

import copy

import pytest

from dropout_lab.config import validate
from dropout_lab.errors import ExecutorError
from dropout_lab.packs import sizing
from dropout_lab.packs.plan import Packing, group, pack_sizes
from dropout_lab.sweep import expand
from tests.helpers.configs import TINY


def grid(sweep: dict, **top) -> list:
    raw = copy.deepcopy(TINY)
    raw.update({"backend": "torch", "device": "cpu", **top})
    raw["sweep"] = sweep
    return expand(validate(raw))


def sizes_and_positions(packs, points):
    """Each pack as the grid positions of its members."""
    where = {p.trial_id: i for i, p in enumerate(points)}
    return [[where[t] for t in pk.trial_ids] for pk in packs]


def test_pack_1_keeps_every_point_alone_in_grid_order():
    points = grid({"dropout.p": [0.0, 0.5], "seed": [0, 1, 2, 3]})
    packs = group(points, 1, spread=2)
    assert sizes_and_positions(packs, points) == [[i] for i in range(8)]


def test_spread_cuts_eight_points_into_two_packs_of_four_in_grid_order():
    points = grid({"dropout.p": [0.0, 0.5], "seed": [0, 1, 2, 3]})
    assert sizes_and_positions(group(points, 8, spread=2), points) == [[0, 1, 2, 3],
                                                                      [4, 5, 6, 7]]
    assert sizes_and_positions(group(points, 8, spread=1), points) == [list(range(8))]
    # the most per pack wins over the spread: 3 + 3 + 2
    assert sizes_and_positions(group(points, 3, spread=1), points) == [[0, 1, 2], [3, 4, 5],
                                                                      [6, 7]]


def test_sizes_are_balanced_larger_first():
    points = grid({"seed": list(range(9))})
    assert [pk.size for pk in group(points, 4)] == [3, 3, 3]  # not 4 + 4 + 1
    points = grid({"seed": list(range(5))})
    assert [pk.size for pk in group(points, 8, spread=2)] == [3, 2]
    assert [pk.size for pk in group(points, 8, spread=10)] == [1, 1, 1, 1, 1]


def test_the_number_of_packs_is_a_multiple_of_the_spread_where_points_allow():
    points = grid({"seed": list(range(20))})
    # not 7 + 7 + 6 on 2 workers (one idle a third of the time): 4 packs of 5
    assert [pk.size for pk in group(points, 8, spread=2)] == [5, 5, 5, 5]
    assert [pk.size for pk in group(points, 8, spread=1)] == [7, 7, 6]
    assert pack_sizes(25, 8, 2) == [7, 6, 6, 6]
    assert pack_sizes(3, 1, 2) == [1, 1, 1]  # never more packs than points
    assert pack_sizes(3, 2, 4) == [1, 1, 1]
    assert pack_sizes(0, 8, 2) == []


def test_only_points_with_equal_keys_share_a_pack():
    # hidden sizes alternate along the grid: two keys, each packed on its own
    points = grid({"seed": [0, 1, 2], "model.hidden": [[16], [8]]})
    hidden = [p.config.model.hidden for p in points]
    assert hidden == [[16], [8]] * 3
    packs = group(points, 8)
    assert sizes_and_positions(packs, points) == [[0, 2, 4], [1, 3, 5]]
    for pk in packs:
        assert len({tuple(p.config.model.hidden) for p in pk.points}) == 1


def test_points_that_cannot_pack_run_alone_where_they_are():
    # the numpy backend has no pack key: its points stay solo, in their grid position
    points = grid({"seed": [0, 1], "backend": ["numpy", "torch"]})
    assert [p.config.backend for p in points] == ["numpy", "torch", "numpy", "torch"]
    packs = group(points, 8)
    assert sizes_and_positions(packs, points) == [[0], [1, 3], [2]]


def test_grouping_is_deterministic_and_takes_any_key():
    points = grid({"dropout.p": [0.0, 0.5], "seed": [0, 1, 2, 3]})
    assert group(points, 3, 2) == group(list(points), 3, 2)

    def by_p(cfg):  # a caller's own rule (a search packs what it suggests, issue 23)
        return cfg.dropout.p

    assert sizes_and_positions(group(points, 8, key=by_p), points) == [[0, 1, 2, 3],
                                                                      [4, 5, 6, 7]]
    assert Packing(2, 1).group(points) == group(points, 2, 1)


@pytest.mark.parametrize("text,expected", [("auto", None), ("AUTO", None), ("1", 1),
                                           ("8", 8), (" 16 ", 16)])
def test_parse_pack_accepts_auto_and_whole_numbers(text, expected):
    assert sizing.parse_pack(text) == expected


@pytest.mark.parametrize("text", ["0", "-2", "x", "1.5", "", str(sizing.MAX_PACK + 1)])
def test_parse_pack_refuses_anything_else_in_one_line(text):
    with pytest.raises(ExecutorError, match="--pack must be 'auto' or a whole number"):
        sizing.parse_pack(text)


MEASURED = {1_000: {2: 2.0, 4: 3.0, 8: 3.0}, 100_000: {2: 1.1, 4: 1.3, 8: 1.25},
            1_000_000: {2: 0.9, 4: 0.95, 8: 0.97}}


def test_step_speedup_interpolates_in_log_weights_and_holds_at_the_ends(monkeypatch):
    monkeypatch.setattr(sizing, "CPU_STEP_SPEEDUP", MEASURED)
    assert sizing.step_speedup(1_000, 4) == 3.0
    assert sizing.step_speedup(10_000, 4) == pytest.approx(2.15)  # halfway in log: 3 -> 1.3
    assert sizing.step_speedup(100, 8) == 3.0  # below the range: the smallest measured
    assert sizing.step_speedup(10**8, 2) == 0.9  # above: the largest measured
    assert sizing.step_speedup(1_000, 6) == 3.0  # between sizes: the measured size below
    assert sizing.step_speedup(1_000, 1) == 1.0


def test_auto_on_the_cpu_packs_only_where_measured_clearly_faster(monkeypatch):
    monkeypatch.setattr(sizing, "CPU_STEP_SPEEDUP", MEASURED)
    assert sizing.cpu_auto_size(1_000) == 8  # 3.0x at 4 and 8: the larger on a tie
    assert sizing.cpu_auto_size(100_000) == 4  # 1.3x >= 1.25x
    assert sizing.cpu_auto_size(1_000_000) == 1  # slower packed: never
    assert sizing.cpu_auto_size(300_000) == 1  # 1.3 -> 0.95 in log: 1.22x, in doubt, no
    # the packs the spread really makes decide: 4 points on 2 workers are packs of 2,
    # measured 1.1x at 100,000 weights (no) and 2.0x at 1,000 (yes)
    assert sizing.cpu_auto_size(100_000, points=4, spread=2) == 1
    assert sizing.cpu_auto_size(1_000, points=4, spread=2) == 8
    assert sizing.cpu_auto_size(1_000, points=2, spread=2) == 1  # packs of 1: nothing to gain
    assert sizing.cpu_auto_size(None) == 1  # size unknown: in doubt


def test_auto_size_follows_the_device_and_the_backend(monkeypatch):
    monkeypatch.setattr(sizing, "CPU_STEP_SPEEDUP", MEASURED)
    points = grid({"seed": [0, 1, 2, 3]})
    assert sizing.auto_size(points, lambda: 1_000, lambda p: "cpu") == 8
    assert sizing.auto_size(points, lambda: 1_000, lambda p: "cpu", spread=2) == 8
    assert sizing.auto_size(points, lambda: 1_000, lambda p: "cpu", spread=4) == 1
    assert sizing.auto_size(points, lambda: 10**7, lambda p: "cpu") == 1
    assert sizing.auto_size(points, lambda: 10**7, lambda p: "cuda") == sizing.GPU_AUTO_MAX
    numpy_points = grid({"seed": [0, 1, 2, 3]}, backend="numpy")
    assert sizing.auto_size(numpy_points, lambda: 1_000, lambda p: "cpu") == 1
    assert sizing.auto_size(points[:1], lambda: 1_000, lambda p: "cuda") == 1  # nothing to pair


def test_choose_spreads_over_the_workers_on_the_cpu_and_not_on_a_gpu(monkeypatch):
    monkeypatch.setattr(sizing, "CPU_STEP_SPEEDUP", MEASURED)
    points = grid({"seed": list(range(8))})
    assert sizing.choose(points, None, None, 2, lambda: 1_000, lambda p: "cpu") == Packing(8, 2)
    assert sizing.choose(points, None, 3, 2, lambda: 1_000, lambda p: "cpu") == Packing(8, 3)
    assert [pk.size for pk in Packing(8, 2).group(points)] == [4, 4]
    assert sizing.choose(points, None, None, 16, lambda: 1_000, lambda p: "cuda") == Packing(
        sizing.GPU_AUTO_MAX, 1)
    assert sizing.choose(points, 1, None, 2, lambda: 1_000, lambda p: "cuda") == Packing(1, 1)
    assert sizing.choose(points, 8, None, 2, lambda: 10**7, lambda p: "cpu") == Packing(8, 2)


def test_pack_seconds_and_memory_known_answers(monkeypatch):
    monkeypatch.setattr(sizing, "CPU_STEP_SPEEDUP", MEASURED)
    assert sizing.pack_seconds([10.0, 10.0, 10.0, 10.0], 1_000, "cpu") == pytest.approx(40 / 3)
    assert sizing.pack_seconds([10.0, 10.0], 10**7, "cpu") == pytest.approx(20 / 0.9)
    assert sizing.pack_seconds([10.0, 12.0], 1_000, "cuda") == 12.0
    assert sizing.pack_seconds([7.0], 1_000, "cpu") == 7.0
    # 8 -> 16 -> 3, momentum, batch 32, float32, 4 members:
    # params 8*16+16 + 16*3+3 = 195; x3 (weights, gradients, velocity) = 585;
    # activations 3 * 32 * (16 + 3) = 1824; 4 bytes x 4 members
    assert sizing.pack_memory_bytes([8, 16, 3], 32, 4, "float32", 1) == 4 * 4 * (585 + 1824)
    assert sizing.pack_memory_bytes([8, 16, 3], 32, 1, "float64", 2) == 8 * (4 * 195 + 1824)


def test_the_measured_table_packs_small_and_mid_networks_on_the_cpu_and_not_1024x1024():
    # the rule as the README states it, on the table measured by bench_packs_step.py
    digits_256 = 64 * 256 + 256 * 10
    mnist_256 = 784 * 256 + 256 * 256 + 256 * 10
    mnist_1024 = 784 * 1024 + 1024 * 1024 + 1024 * 10
    assert sizing.cpu_auto_size(digits_256, points=8, spread=2) == 8  # quickstart: 2 x 4
    # mnist-quick: 7,6,6,6 under a limit of 8 (1.18x at 6), 5,4,4,4,4,4 under 5 or 6 (1.02x)
    assert sizing.cpu_auto_size(mnist_256, points=25, spread=2) == 1
    assert sizing.cpu_auto_size(mnist_256, points=20, spread=2) == 8  # 4 x 5: 1.33x
    assert sizing.cpu_auto_size(mnist_256, points=8, spread=2) == 1  # packs of 4: 1.02x
    assert sizing.cpu_auto_size(mnist_1024, points=20, spread=2) == 1  # <= 1.20x: in doubt


def test_a_point_continuing_from_a_checkpoint_runs_alone():
    import dataclasses

    points = grid({"seed": [0, 1, 2, 3]})
    points[1] = dataclasses.replace(points[1], resume=b"a checkpoint")
    assert sizes_and_positions(group(points, 8), points) == [[0, 2, 3], [1]]


def test_points_continuing_from_a_packs_checkpoints_pack_by_epoch_and_stay_stacked():
    """A pack's checkpoint (resume_in_pack: its epoch) packs only with points of its key
    stopped at the same epoch; alone, or under --pack 1, it still trains on the pack's code
    path (Pack.stacked: a pack of one), so that it ends bit for bit as its uninterrupted pack
    (a member's numbers do not depend on its pack's size: test_pack_checkpoint.py)."""
    import dataclasses

    points = grid({"seed": [0, 1, 2, 3, 4, 5]})
    for i, epoch in ((0, 3), (1, 3), (2, 2), (4, 3)):
        points[i] = dataclasses.replace(points[i], resume=b"ck", resume_in_pack=epoch)
    points[5] = dataclasses.replace(points[5], resume=b"solo ck")  # a solo trial's: alone
    packs = group(points, 8)
    assert sizes_and_positions(packs, points) == [[0, 1, 4], [2], [3], [5]]
    assert [p.stacked for p in packs] == [True, True, False, False]
    unpacked = group(points, 1)  # --pack 1: each alone, a pack's checkpoint on its path
    assert sizes_and_positions(unpacked, points) == [[i] for i in range(6)]
    assert [p.stacked for p in unpacked] == [True, True, True, False, True, False]
