"""Where and how tensors are computed, decided once per command.

A ``Runtime`` holds the device, the torchrun rank, the autocast precision (bf16 on CUDA, full
precision elsewhere; inference, validation and precise BN also in bf16 on a CPU that computes it
natively, ``PRECISIONS``), the memory format (channels-last) and whether training steps run as CUDA
graphs (on a single GPU, unless turned off), and offers what every loop needs: ``autocast()``,
``prepare_model()``, ``synchronize()``, ``peak_memory()`` and ``measure_load()``
(``images.transforms.Preprocess.on`` builds a model's input on it). Training, evaluation,
prediction and the benchmarks all take one, so the precision policy lives here and nowhere else
(nanoGPT builds its autocast context once in the same way).
"""

from __future__ import annotations

import contextlib
import os
import platform
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import torch

from letterbench.core.distributed import DistInfo, dist_from_env, join_process_group, shutdown
from letterbench.core.errors import LetterbenchError

# --precision: auto (bf16 autocast on a GPU; on a CPU with native bf16 matrix units, AMX or
# AVX512-BF16, training stays float32 and the passes without gradients run in bf16, about 2.5 times
# faster) or float32 (full precision throughout). Default: $LETTERBENCH_PRECISION, else auto.
PRECISIONS = ("auto", "float32")
PRECISION_ENV = "LETTERBENCH_PRECISION"


def native_bf16_cpu() -> bool:
    """Whether this CPU multiplies bf16 matrices in hardware (AMX tiles or AVX512-BF16)."""
    cpu = getattr(torch, "cpu", None)
    checks = ("_is_amx_tile_supported", "_is_avx512_bf16_supported")
    return any(getattr(cpu, check, lambda: False)() for check in checks)


def default_precision() -> str:
    chosen = os.environ.get(PRECISION_ENV, "auto")
    if chosen not in PRECISIONS:
        raise LetterbenchError(f"{PRECISION_ENV}={chosen!r}: use one of {', '.join(PRECISIONS)}")
    return chosen


# Other processes using more CPU than this (in cores) while a speed is measured make it noise.
LOAD_LIMIT_CORES = 0.25


def parse_device(preference: str) -> torch.device | None:
    """``--device`` as PyTorch reads it, None for ``auto`` (the one parser of the option, for
    PyTorch here and ONNX Runtime's providers in ``apps.exported``)."""
    if preference == "auto":
        return None
    try:
        return torch.device(preference)
    except (RuntimeError, ValueError):
        raise LetterbenchError(
            f"--device {preference}: not a device PyTorch knows; use auto, cpu, cuda, cuda:N or mps"
        ) from None


def choose_device(preference: str = "auto", local_rank: int = 0) -> torch.device:
    """``auto`` picks CUDA, then MPS, then the CPU; anything else is taken as asked, if present."""
    device = parse_device(preference)
    if device is None:
        if torch.cuda.is_available():
            return torch.device("cuda", local_rank)
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if device.type == "cpu":
        return device
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise LetterbenchError(f"--device {preference}: PyTorch sees no CUDA GPU here; use --device cpu")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise LetterbenchError(
                f"--device {preference}: there are {torch.cuda.device_count()} CUDA GPU(s), numbered from 0"
            )
        return device
    backend = getattr(torch.backends, device.type, None) or getattr(torch, device.type, None)
    if backend is None or not getattr(backend, "is_available", lambda: False)():
        raise LetterbenchError(f"--device {preference}: no {device.type} device here; use --device cpu")
    return device


@dataclass
class Runtime:
    device: torch.device
    dist: DistInfo = field(default_factory=DistInfo)
    amp_dtype: torch.dtype | None = None
    channels_last: bool = True
    cuda_graphs: bool = False
    inference_dtype: torch.dtype | None = None  # the passes without gradients (``inference_autocast``)
    precision: str = "auto"  # as asked (``PRECISIONS``): a child process builds its runtime alike

    @classmethod
    def create(
        cls,
        device: str = "auto",
        distributed: bool = False,
        cuda_graphs: bool = True,
        precision: str | None = None,
    ) -> Runtime:
        """The runtime of this process; with ``distributed``, join torchrun's process group if it
        started us (each rank on its own GPU). ``cuda_graphs`` takes effect on one CUDA GPU only;
        ``precision`` is one of ``PRECISIONS`` (default: ``default_precision()``)."""
        precision = precision or default_precision()
        info = dist_from_env() if distributed else DistInfo()
        dev = choose_device(device, info.local_rank)
        join_process_group(info, dev)
        cuda = dev.type == "cuda"
        if cuda and not torch.backends.cudnn.deterministic:
            torch.backends.cudnn.benchmark = True  # fixed shapes: pick the fastest kernels once
        auto = precision == "auto"
        amp = torch.bfloat16 if cuda and auto else None
        inference = amp or (torch.bfloat16 if auto and dev.type == "cpu" and native_bf16_cpu() else None)
        graphs = cuda and cuda_graphs and not info.enabled
        return cls(dev, info, amp, cuda_graphs=graphs, inference_dtype=inference, precision=precision)

    def close(self) -> None:
        shutdown(self.dist)

    # ------------------------------------------------------------ what this device does

    @property
    def is_cuda(self) -> bool:
        """On a CUDA GPU: every "is this CUDA?" question below asks this one."""
        return self.device.type == "cuda"

    @property
    def fused_optimizer(self) -> bool:
        """The optimiser step as one fused kernel (PyTorch has it for CUDA tensors)."""
        return self.is_cuda

    @property
    def warms_up(self) -> bool:
        """Training steps are warmed up (cuDNN autotuning, allocator growth) and, with
        ``cuda_graphs``, captured before the clock starts."""
        return self.is_cuda

    @property
    def asynchronous_sums(self) -> bool:
        """The running loss and accuracy are copied to the host without waiting for the device."""
        return self.is_cuda

    @property
    def progress_every(self) -> int:
        """Training steps between two reads of the running loss (a read waits for a GPU)."""
        return 25 if self.is_cuda else 1

    def rng_state(self) -> dict[str, torch.Tensor]:
        """The random state a run's draws come from: the CPU generator's, and this GPU's."""
        state = {"torch": torch.get_rng_state()}
        if self.is_cuda:
            state["cuda"] = torch.cuda.get_rng_state(self.device)
        return state

    def set_rng_state(self, state: dict[str, torch.Tensor]) -> None:
        """Put back a state ``rng_state`` returned (a GPU's part only on a GPU)."""
        torch.set_rng_state(state["torch"])
        if self.is_cuda and "cuda" in state:
            torch.cuda.set_rng_state(state["cuda"], self.device)

    # ------------------------------------------------------------ computing

    def autocast(self, cache: bool = True) -> contextlib.AbstractContextManager:
        """The precision context; ``cache=False`` inside a captured CUDA graph (autocast's cache of
        cast weights must not outlive the capture)."""
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype, cache_enabled=cache)

    def inference_autocast(self) -> contextlib.AbstractContextManager:
        """The precision context of the passes without gradients (validation, precise BN, testing,
        calibration, the ensemble choice, predictions): the training one on a GPU; bf16 on a CPU
        that computes it natively, with ``precision`` auto."""
        if self.inference_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.inference_dtype)

    def prepare_model(self, model: torch.nn.Module) -> torch.nn.Module:
        model = model.to(self.device)
        return model.to(memory_format=torch.channels_last) if self.channels_last else model

    def synchronize(self) -> None:
        if self.is_cuda:
            torch.cuda.synchronize(self.device)

    # ------------------------------------------------------------ measuring

    @property
    def name(self) -> str:
        if self.is_cuda:
            return torch.cuda.get_device_name(self.device)
        return f"{platform.processor() or platform.machine()} CPU, {torch.get_num_threads()} threads"

    def describe(self) -> dict[str, Any]:
        return {
            "type": self.device.type,
            "name": self.name,
            "world_size": self.dist.world,
            "precision": str(self.amp_dtype).removeprefix("torch.") if self.amp_dtype else "float32",
            # recorded only where it differs from training's (a CPU with native bf16)
            **(
                {"inference_precision": str(self.inference_dtype).removeprefix("torch.")}
                if self.inference_dtype != self.amp_dtype
                else {}
            ),
            "channels_last": self.channels_last,
            "cuda_graphs": self.cuda_graphs,
        }

    def reset_peak_memory(self) -> None:
        """Start the peak-memory count afresh, so that a run is not charged an earlier run's peak
        (a study trains its models one after another in one process)."""
        if self.is_cuda:
            torch.cuda.reset_peak_memory_stats(self.device)
        else:
            try:  # Linux: writing 5 resets the process's peak resident set size (VmHWM)
                with open("/proc/self/clear_refs", "w") as handle:
                    handle.write("5")
            except OSError:
                pass

    def peak_memory(self, previous: dict[str, Any] | None = None) -> dict[str, Any]:
        """Peak memory since ``reset_peak_memory``: CUDA's peak allocated bytes on a GPU, else this
        process's peak resident set size."""
        if self.is_cuda:
            now = {"bytes": int(torch.cuda.max_memory_allocated(self.device)), "kind": "cuda peak allocated"}
        else:
            now = {"bytes": _peak_rss(), "kind": "process peak RSS"}
        if previous and previous.get("kind") == now["kind"]:
            now["bytes"] = max(now["bytes"], int(previous["bytes"]))
        return now

    @contextlib.contextmanager
    def measure_load(self) -> Iterator[Load]:
        """Measures how much CPU other processes used while the block ran (see ``Load``). Under
        torchrun the other ranks are busy by design: then nothing is measured (None)."""
        load = Load()
        if self.dist.enabled:
            yield load
            return
        busy, own, start = _busy_seconds(), time.process_time(), time.perf_counter()
        try:
            yield load
        finally:
            wall = time.perf_counter() - start
            busy_now = _busy_seconds()
            if busy is not None and busy_now is not None and wall > 0:
                other = (busy_now - busy) - (time.process_time() - own)
                load.other_cpu_cores = max(0.0, other / wall)


@dataclass
class Load:
    """CPU used by other processes during a measurement, in cores (None where not measurable)."""

    other_cpu_cores: float | None = None

    @property
    def under_load(self) -> bool:
        return self.other_cpu_cores is not None and self.other_cpu_cores > max(
            LOAD_LIMIT_CORES, 0.1 * (os.cpu_count() or 1)
        )

    def to_dict(self) -> dict[str, Any]:
        return {"other_cpu_cores": self.other_cpu_cores, "under_load": self.under_load}


def _peak_rss() -> int:
    """Peak resident set size in bytes: ``VmHWM`` (resettable) on Linux, else ``ru_maxrss``."""
    try:
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    import resource

    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024


def _busy_seconds() -> float | None:
    """CPU seconds all processes have spent busy since boot (Linux ``/proc/stat``), else None."""
    try:
        with open("/proc/stat") as handle:
            fields = [int(x) for x in handle.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")
