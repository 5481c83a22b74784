"""Evaluation of a trained model: predictions, the study's metrics, and measured cost."""

from __future__ import annotations

import torch

from letterbench.models import LetterModel
from letterbench.transforms import prepare_batch


@torch.no_grad()
def predict_probs(
    model: LetterModel, images: torch.Tensor, device: torch.device | str = "cpu", batch_size: int = 512
) -> torch.Tensor:
    """Class probabilities (N, C) as float32 on the CPU for uint8 images (N, 28, 28)."""
    device = torch.device(device)
    model.to(device).eval()
    cuda = device.type == "cuda"
    out = []
    for start in range(0, len(images), batch_size):
        x = prepare_batch(images[start : start + batch_size].to(device), model.spec, channels_last=cuda)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cuda):
            logits = model(x)
        out.append(torch.softmax(logits.float(), dim=1).cpu())
    return (
        torch.cat(out)
        if out
        else torch.zeros(0, model.head_out_features if hasattr(model, "head_out_features") else 0)
    )
