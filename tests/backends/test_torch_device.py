"""The torch backend's devices, threads and lazy import, through the library and the CLI.

The CUDA test runs only where ``torch.cuda.is_available()``; elsewhere it is skipped with the
reason shown by ``pytest -ra``. Tests that need the absence of a GPU are skipped on GPU hosts.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from dropout_lab.config import validate
from dropout_lab.errors import BackendError
from dropout_lab.training import train
from dropout_lab.trial import prepare
from tests.helpers.configs import TINY

torch = pytest.importorskip("torch", reason="the torch backend needs PyTorch")

from dropout_lab.backends.torch_backend import TorchBackend  # noqa: E402

HAS_CUDA = torch.cuda.is_available()
HAS_MPS = torch.backends.mps.is_available()
no_gpu_only = pytest.mark.skipif(HAS_CUDA, reason="this machine has a CUDA GPU")
ROOT = Path(__file__).resolve().parents[2]


def test_auto_and_cpu_resolve():
    backend = TorchBackend()
    assert backend.resolve_device("cpu") == "cpu"
    assert backend.resolve_device("auto") == ("cuda" if HAS_CUDA else "cpu")


@no_gpu_only
@pytest.mark.parametrize("device", ["cuda", "cuda:0", "cuda:1"])
def test_missing_cuda_is_one_line_backend_error(device):
    with pytest.raises(BackendError) as info:
        TorchBackend().resolve_device(device)
    msg = str(info.value)
    assert f"device {device!r} is not available" in msg and "no CUDA GPU" in msg
    assert "use device: cpu or auto" in msg and "\n" not in msg


@pytest.mark.skipif(not HAS_CUDA, reason="needs a CUDA GPU")
def test_cuda_index_beyond_the_gpus_is_refused():
    count = torch.cuda.device_count()
    with pytest.raises(BackendError, match=f"cuda:{count}"):
        TorchBackend().resolve_device(f"cuda:{count}")


@pytest.mark.skipif(HAS_MPS, reason="this machine has an Apple MPS device")
def test_missing_mps_is_backend_error():
    with pytest.raises(BackendError, match="'mps' is not available"):
        TorchBackend().resolve_device("mps")


@pytest.mark.parametrize("device", ["gpu", "CUDA", "cuda:", "cuda:x", "tpu", ""])
def test_unknown_device_names_the_choices(device):
    with pytest.raises(BackendError, match="auto, cpu, cuda, cuda:N, mps"):
        TorchBackend().resolve_device(device)


@pytest.mark.parametrize("device", ["cuda", "gpu"])
def test_cli_refuses_a_missing_device_before_training(cli, tiny_config, tmp_path, device):
    if device == "cuda" and HAS_CUDA:
        pytest.skip("this machine has a CUDA GPU")
    runs = tmp_path / "runs"
    code, out, err = cli("sweep", tiny_config, "--runs-dir", runs,
                         "--set", "backend=torch", "--set", f"device={device}")
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and f"'{device}'" in lines[0] and "Traceback" not in err
    assert not runs.exists() or not any(runs.rglob("result.json"))
    assert not (runs / "tiny" / "trials").exists()


@pytest.mark.slow
def test_cli_sweep_runs_on_torch(cli, tiny_config, tmp_path):
    code, out, _ = cli("sweep", tiny_config, "--runs-dir", tmp_path / "runs", "--json",
                       "--set", "backend=torch", "--set", "device=cpu")
    assert code == 0
    doc = json.loads(out)
    assert [t["status"] for t in doc["trials"]] == ["done"] * 4
    result = json.loads((tmp_path / "runs" / "tiny" / "trials" / doc["trials"][0]["trial_id"]
                         / "result.json").read_text())
    assert result["env"]["backend"] == "torch" and result["env"]["device"] == "cpu"
    assert result["env"]["versions"]["torch"] == torch.__version__


def test_thread_budget_is_applied():
    before = torch.get_num_threads()
    try:
        data = dict(TINY, sweep={}, backend="torch")
        prepare(validate(data), threads=1)
        assert torch.get_num_threads() == 1
        TorchBackend().set_threads(2)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def _python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)


@pytest.mark.slow
def test_numpy_path_never_imports_torch(tiny_config, tmp_path):
    proc = _python(f"""
        import sys
        from dropout_lab.cli.app import run_app
        import dropout_lab.cli  # registers the commands
        code = run_app(["sweep", {str(tiny_config)!r}, "--runs-dir", {str(tmp_path / 'r')!r}])
        assert code == 0, code
        print("torch" in sys.modules)
    """)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "False"


def test_asking_for_torch_without_torch_is_one_line_exit_2(tiny_config, tmp_path):
    # A meta-path finder that refuses torch: "import torch" fails as if it were not installed.
    proc = _python(f"""
        import sys

        class NoTorch:
            def find_spec(self, name, path=None, target=None):
                if name == "torch" or name.startswith("torch."):
                    raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)

        sys.meta_path.insert(0, NoTorch())
        from dropout_lab.cli import main
        sys.argv = ["dropout-lab", "sweep", {str(tiny_config)!r},
                    "--runs-dir", {str(tmp_path / 'r')!r}, "--set", "backend=torch"]
        main()
    """)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "needs the package 'torch'" in lines[0]
    assert not (tmp_path / "r" / "tiny" / "trials").exists()


@pytest.mark.skipif(not HAS_CUDA, reason="needs a CUDA GPU (torch.cuda.is_available() is False)")
def test_cuda_training_matches_cpu_float64():
    data = dict(TINY, sweep={}, backend="torch", dtype="float64",
                dropout={"p": 0.5, "input_p": 0.2, "variant": "dropconnect"})
    rows = {}
    for device in ("cpu", "cuda"):
        prep = prepare(validate(dict(data, device=device)))
        assert prep.device == device
        rows[device] = train(prep)
        logits = prep.network.forward(prep.data.x_test)
        assert isinstance(logits, np.ndarray)
    for a, b in zip(rows["cpu"], rows["cuda"], strict=True):
        assert abs(a["train_loss"] - b["train_loss"]) <= 1e-5
        assert abs(a["test_loss"] - b["test_loss"]) <= 1e-5
