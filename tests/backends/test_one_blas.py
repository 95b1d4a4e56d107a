"""The training step uses one BLAS library (NumPy's), and result.json records which.

NumPy and SciPy each bundle an OpenBLAS with its own thread pool; a training step that calls
both alternates between two pools, which made ``--threads 2`` slower than one thread
(docs/performance.md). A trial runs in a fresh interpreter here, so that what the test
process itself has loaded does not count.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

from tests.helpers.configs import TINY

CHILD = textwrap.dedent("""
    import json, sys
    from threadpoolctl import threadpool_info
    from dropout_lab.trial import run_trial

    outcome = run_trial(json.loads(sys.argv[1]), "t0", {}, threads=2)
    assert outcome.status == "done", outcome.error
    after_trial = [i for i in threadpool_info() if i["user_api"] == "blas"]
    import scipy.linalg.blas  # the control: SciPy's BLAS is a second library
    with_scipy = [i for i in threadpool_info() if i["user_api"] == "blas"]
    print(json.dumps({"env": outcome.result["env"], "after_trial": after_trial,
                      "with_scipy": with_scipy}))
""")


def _trial_in_subprocess(backend: str) -> dict:
    config = dict(TINY, backend=backend, sweep={})
    proc = subprocess.run([sys.executable, "-c", CHILD, json.dumps(config)],
                          capture_output=True, text=True, check=False, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_numpy_training_step_loads_one_blas_and_records_it():
    doc = _trial_in_subprocess("numpy")
    blas = doc["after_trial"]
    assert len(blas) == 1, blas  # training, evaluation and statistics: one BLAS library
    assert "numpy" in blas[0]["filepath"]  # NumPy's own, not SciPy's
    assert len(doc["with_scipy"]) == 2  # the check above can fail: SciPy adds a second one

    env = doc["env"]
    recorded = [p for p in env["thread_pools"] if p["user_api"] == "blas"]
    assert len(recorded) == 1 and recorded[0]["num_threads"] == 2  # the trial's --threads
    assert {"internal_api", "version", "prefix"} <= set(recorded[0])
    assert env["scipy"] and env["scipy_loaded"] is False
