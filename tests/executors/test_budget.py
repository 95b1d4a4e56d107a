"""The CPUs a process may use: affinity mask capped by the cgroup CPU quota (v1 and v2), read
from cgroup file trees laid out as the kernel lays them out."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from dropout_lab.executors.budget import available_cores, cgroup_cpu_quota


def _tree(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def test_v2_quota_of_the_process_cgroup(tmp_path):
    root, proc = tmp_path / "cgroup", tmp_path / "self_cgroup"
    proc.write_text("0::/kubepods/pod1/ctr\n")
    _tree(root, {"kubepods/pod1/ctr/cpu.max": "150000 100000\n",
                 "kubepods/cpu.max": "max 100000\n"})
    assert cgroup_cpu_quota(root, proc) == pytest.approx(1.5)


def test_v2_tightest_ancestor_wins_and_max_means_none(tmp_path):
    root, proc = tmp_path / "cgroup", tmp_path / "self_cgroup"
    proc.write_text("0::/a/b\n")
    _tree(root, {"a/b/cpu.max": "max 100000\n", "a/cpu.max": "100000 100000\n"})
    assert cgroup_cpu_quota(root, proc) == pytest.approx(1.0)
    _tree(root, {"a/cpu.max": "max 100000\n"})
    assert cgroup_cpu_quota(root, proc) is None


def test_v1_quota_and_unlimited(tmp_path):
    root, proc = tmp_path / "cgroup", tmp_path / "self_cgroup"
    proc.write_text("12:memory:/docker/x\n4:cpu,cpuacct:/docker/x\n")
    _tree(root, {"cpu,cpuacct/docker/x/cpu.cfs_quota_us": "50000\n",
                 "cpu,cpuacct/docker/x/cpu.cfs_period_us": "100000\n"})
    assert cgroup_cpu_quota(root, proc) == pytest.approx(0.5)
    _tree(root, {"cpu,cpuacct/docker/x/cpu.cfs_quota_us": "-1\n"})
    assert cgroup_cpu_quota(root, proc) is None


def test_available_cores_is_capped_by_the_quota_rounded_up(tmp_path):
    root, proc = tmp_path / "cgroup", tmp_path / "self_cgroup"
    proc.write_text("0::/c\n")
    affinity = len(os.sched_getaffinity(0))
    _tree(root, {"c/cpu.max": "50000 100000\n"})  # half a CPU: still one core to run on
    assert available_cores(root, proc) == 1
    _tree(root, {"c/cpu.max": f"{(affinity + 4) * 100000} 100000\n"})  # above the mask
    assert available_cores(root, proc) == affinity
    assert available_cores(root, tmp_path / "missing") == affinity  # no cgroup info
