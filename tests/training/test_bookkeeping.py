"""The batch stream, the sync-free bookkeeping, warm-up without side effects, LR warm-ups and the
large-batch mode: the parts of the GPU work that run (and are checked) on a CPU too."""

from __future__ import annotations

import torch

from letterbench.core.distributed import DistInfo
from letterbench.training.bookkeeping import RunningSums


def test_running_sums_on_the_cpu_are_read_as_they_are():
    sums = RunningSums(torch.device("cpu"))
    logits = torch.tensor([[2.0, 0.0], [0.0, 1.0], [3.0, 0.0]])
    sums.add(torch.tensor(0.5), logits, torch.tensor([0, 1, 1]))
    seen = sums.poll(1)
    assert (seen.step, seen.loss_sum, seen.correct, seen.count) == (1, 1.5, 2.0, 3.0)
    sums.add(torch.tensor(float("nan")), logits[:1], torch.tensor([0]))
    assert sums.totals(DistInfo(), 2).loss_sum != sums.totals(DistInfo(), 2).loss_sum  # NaN stays NaN
    sums.zero()
    assert sums.poll(0).count == 0
