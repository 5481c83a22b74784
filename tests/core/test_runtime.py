"""The code's shape: one owner per concept (run-directory layout, model registry, recipes), file
modes, and the TensorBoard observer read back by TensorBoard's own reader."""

from __future__ import annotations


def test_load_measurement_sees_another_busy_process():
    import subprocess
    import sys
    import time

    import torch

    from letterbench.core.runtime import Runtime

    runtime = Runtime(torch.device("cpu"))
    with runtime.measure_load() as idle:
        time.sleep(0.5)
    busy = subprocess.Popen(
        [sys.executable, "-c", "import time\nend = time.time() + 3\nwhile time.time() < end: pass"]
    )
    try:
        time.sleep(0.5)  # let it start spinning
        with runtime.measure_load() as loaded:
            time.sleep(1.0)
    finally:
        busy.kill()
        busy.wait()
    assert loaded.other_cpu_cores > 0.6 and loaded.under_load
    assert loaded.other_cpu_cores > idle.other_cpu_cores + 0.5
