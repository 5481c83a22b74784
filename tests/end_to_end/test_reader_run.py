"""Training beyond EMNIST: the synthetic letters (seeded, every class in both cases, EMNIST's framing
and stroke widths) and their share of each batch, while recipes without them draw what they drew."""

from __future__ import annotations

import numpy as np
import torch

from letterbench.images.synthetic import synthetic_letters
from letterbench.images.transforms import Preprocess
from letterbench.models import create_model
from letterbench.training.stream import BatchStream, Mix


def _images(n: int = 300) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(3)
    return torch.randint(0, 256, (n, 28, 28), dtype=torch.uint8, generator=gen), torch.arange(n) % 26


def test_a_reader_run_records_its_mix_and_predict_says_what_it_learned_from(tiny_letters, tmp_path, capsys):
    import json

    from PIL import Image

    from letterbench.cli.main import main

    run = tmp_path / "reader"
    common = [
        "--data-dir",
        str(tiny_letters),
        "--train-per-class",
        "8",
        "--quiet",
        "--set",
        "val_fraction=0.25",
    ]
    args = ["train", "--recipe", "reader", "--epochs", "1", "--out", str(run), *common]
    assert main([*args, "--set", "data.pool=104"]) == 0
    config = json.loads((run / "config.json").read_text())
    assert config["recipe"]["data"] == {"synthetic": 0.5, "pool": 104, "handwriting": 0.6}
    plain = tmp_path / "plain"
    assert main(["train", "--model", "resnet18", "--epochs", "1", "--out", str(plain), *common]) == 0
    assert "data" not in json.loads((plain / "config.json").read_text())["recipe"]
    capsys.readouterr()
    image, _ = synthetic_letters(1, seed=3)
    Image.fromarray(255 - np.kron(image[0], np.ones((4, 4), np.uint8))).save(tmp_path / "a.png")
    assert main(["predict", str(tmp_path / "a.png"), "--run", str(run), "--json"]) == 0
    learned = json.loads(capsys.readouterr().out)["trained_on"]
    assert learned == {
        "resnet18": "EMNIST + 50% extra letters, real handwriting and synthetic (reader recipe)"
    }
    assert main(["predict", str(tmp_path / "a.png"), "--run", str(plain)]) == 0
    assert (
        capsys.readouterr().out.splitlines()[0]
        == "models: ResNet-18, trained on EMNIST only (resnet18 recipe)"
    )
    assert main(["evaluate", str(run), "--no-plots", "--data-dir", str(tiny_letters)]) == 0
    assert main(["report", str(run), "--out", str(tmp_path / "report")]) == 0
    assert (
        "50% of each batch extra letters (104 drawn, 60% of them real handwriting)"
        in (tmp_path / "report" / "report.md").read_text()
    )


def test_under_torchrun_each_rank_trains_on_its_own_synthetic_letters():
    """Two ranks draw from one generator: their extra letters (and matrices) differ; each rank's
    batches hold their share, as a process alone does (whose draws the test above holds)."""
    from letterbench.core.distributed import DistInfo

    images, labels = _images(200)
    extra, extra_labels = synthetic_letters(104, seed=1)
    mix = Mix(torch.from_numpy(extra), torch.from_numpy(extra_labels), 0.5)
    spec = create_model("resnet18").spec
    augment = {"rotate": 10.0}

    def synthetic(dist):
        stream = BatchStream(images, labels, Preprocess(spec, "cpu"), 16, augment, dist=dist, mix=mix)
        plan = stream.epoch(torch.Generator().manual_seed(0))
        mine = plan.order >= 200
        return plan.order[mine], plan.theta[mine]

    (a, theta_a), (b, theta_b) = synthetic(DistInfo(0, 2, 0)), synthetic(DistInfo(1, 2, 1))
    assert len(a) == len(b) and not torch.equal(a, b) and not torch.equal(theta_a, theta_b)
    alone, theta_alone = synthetic(DistInfo())
    assert len(alone) == 2 * len(a)
