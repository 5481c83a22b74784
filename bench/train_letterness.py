"""Train the "is it one letter?" detector letterbench ships (``evaluation/letterness.py``) and
choose its limit; writes ``src/letterbench/evaluation/letterness.safetensors`` and prints the
record that ``docs/benchmarks.md`` quotes.

    python bench/train_letterness.py [--data-dir ../shared/data/emnist]

Every image is a prepared 28x28 image, as ``predict`` prepares a user's:
- letters: EMNIST training images (as stored, and enlarged as a photo and prepared again), synthetic
  letters, and letters of UNIPEN's training writers drawn as a user draws on the page and prepared
  (``images.letters.prepare_letter``);
- non-letters: ``images/nonletters.py`` drawn and prepared, seeds 100 and up (seed 1 is the tuning
  set, seed 2 the reported one), digits and symbols that no letter shares a shape with.
The limit is the lowest that flags at most 1.5% of the tuning letters (EMNIST training images,
photographed and prepared, and UNIPEN training writers' letters, none of which it trained on); what it flags of the tuning
non-letters (seed 1) is printed beside it. Seeded: the same data give the same weights.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from common import add_data_dir
from PIL import Image
from sets.unipen_bench import drawn

from letterbench.data.emnist import load_emnist
from letterbench.data.handwriting import pen_letters, training_choice
from letterbench.evaluation.letterness import detector_input, detector_model, weights_file
from letterbench.images.letters import prepare_letter
from letterbench.images.nonletters import nonletters
from letterbench.images.synthetic import synthetic_letters

DIGITS = "3478"  # not 0 1 2 5 6 9, which people write as o l z s b g
SYMBOLS = "#$%&@?!+=*<>{}~^"  # not /, an l
TUNE_LETTERS_MAX = 0.015


def prepared(images) -> np.ndarray:
    out = []
    for img in images:
        try:
            out.append(prepare_letter(img)[0])
        except Exception:  # blank (a dot too faint): nothing to learn
            continue
    return np.stack(out)


def drawn_letters(count: int, seed: int, skip: int = 0) -> np.ndarray:
    letters = pen_letters()
    chosen = training_choice(letters, count + skip, seed)[skip:]
    rng = np.random.default_rng(seed)
    return prepared(drawn(letters.paths(int(i)), rng) for i in chosen)


def photographed(images: np.ndarray) -> np.ndarray:
    """EMNIST letters as a user's photo of them would be prepared: enlarged, dark on white, then
    prepared as ``predict`` prepares an image (the stroke width redrawn, the letter reframed)."""
    return prepared(Image.fromarray(255 - np.kron(x, np.ones((4, 4), np.uint8))) for x in images)


def sets(data_dir: Path) -> dict[str, np.ndarray]:
    emnist = load_emnist(data_dir, "letters").train_images.numpy()
    order = np.random.default_rng(0).permutation(len(emnist))
    kinds = ("dot", "dash", "scribble", "word", "digit", "symbol", "scribble", "word", "symbol")
    return {
        "letters": np.concatenate(
            [
                emnist[order[:2500]],
                photographed(emnist[order[2500:5000]]),
                synthetic_letters(1040, seed=11)[0],
                drawn_letters(3000, seed=12),
            ]
        ),
        "others": np.concatenate(
            [
                prepared(img for _, img in nonletters(2000, s, kinds, DIGITS, SYMBOLS))
                for s in (100, 101, 102, 103)
            ]
        ),
        "tune_letters": np.concatenate(
            [photographed(emnist[order[5000:6500]]), drawn_letters(1500, seed=12, skip=3000)]
        ),
        "tune_others": prepared(img for _, img in nonletters(240, 1)),
    }


def train(letters: np.ndarray, others: np.ndarray, epochs: int = 8) -> torch.nn.Module:
    torch.manual_seed(0)
    x = detector_input(np.concatenate([letters, others]))
    y = torch.cat([torch.zeros(len(letters)), torch.ones(len(others))]).long()
    weight = torch.tensor([1.0, len(letters) / len(others)])
    model = detector_model()
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=1e-4)
    steps = epochs * ((len(y) + 127) // 128)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, 4e-3, total_steps=steps)
    generator = torch.Generator().manual_seed(0)
    for _ in range(epochs):
        model.train()
        for batch in torch.randperm(len(y), generator=generator).split(128):
            loss = torch.nn.functional.cross_entropy(model(x[batch]), y[batch], weight=weight)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
    return model.eval()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_data_dir(parser)
    args = parser.parse_args()
    start = time.perf_counter()
    torch.set_num_threads(2)
    data = sets(args.data_dir)
    print({k: len(v) for k, v in data.items()}, f"prepared in {time.perf_counter() - start:.0f} s")
    model = train(data["letters"], data["others"])
    with torch.inference_mode():
        p = {
            k: torch.softmax(model(detector_input(data[k])), 1)[:, 1].numpy()
            for k in ("tune_letters", "tune_others")
        }
    limit = float(np.quantile(p["tune_letters"], 1 - TUNE_LETTERS_MAX))
    print(
        f"limit {limit:.3f}: tuning letters flagged {np.mean(p['tune_letters'] > limit):.1%}, "
        f"tuning non-letters flagged {np.mean(p['tune_others'] > limit):.1%} "
        f"(at 0.5: {np.mean(p['tune_letters'] > 0.5):.1%} / {np.mean(p['tune_others'] > 0.5):.1%}); "
        f"{time.perf_counter() - start:.0f} s in all"
    )
    from safetensors.torch import save_file

    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(weights_file()))
    print(f"wrote {weights_file()}")


if __name__ == "__main__":
    main()
