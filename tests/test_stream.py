"""The batch stream, the sync-free bookkeeping, warm-up without side effects, LR warm-ups and the
large-batch mode: the parts of the GPU work that run (and are checked) on a CPU too."""

from __future__ import annotations

import json

import pytest
import torch

from letterbench.cli.main import main
from letterbench.core.distributed import DistInfo
from letterbench.core.runtime import Runtime
from letterbench.images.transforms import STYLE_WIDTH, Preprocess, random_affine, random_style
from letterbench.models import create_model
from letterbench.recipes import describe_recipe, resolve_recipe, scale_batch
from letterbench.runs.rundir import RunDir
from letterbench.study.runner import PRESETS, study_recipe
from letterbench.training.bookkeeping import RunningSums
from letterbench.training.engine import TrainData, Trainer
from letterbench.training.graphs import warm_up
from letterbench.training.optim import build_scheduler
from letterbench.training.stream import BatchStream

CPU = Runtime(torch.device("cpu"))
RESNET18_LR = resolve_recipe("resnet18").phases[0].optimizer.lr
AUGMENT = {"rotate": 10.0, "zoom": 0.1, "shift": 0.08, "flip": False}


def letters(n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, 28, 28), dtype=torch.uint8, generator=gen), torch.arange(n) % 26


def stream(n: int, batch: int, augment=AUGMENT, size: int = 28, dist=None) -> BatchStream:
    images, labels = letters(n)
    spec = create_model("resnet18" if size == 28 else "densenet121").spec
    return BatchStream(images, labels, Preprocess(spec, "cpu"), batch, augment, dist)


@pytest.mark.parametrize("n, batch", [(100, 32), (97, 32), (65, 32), (64, 32)])
@pytest.mark.parametrize("augment", [AUGMENT, {}])
def test_an_epoch_draws_the_batches_a_per_step_loader_would(n, batch, augment):
    """The epoch's permutation, then each batch's matrices in order, as the per-step loop before the
    stream drew them: the stream changes when things are drawn, not what a seed gives."""
    s = stream(n, batch, augment)
    plan = s.epoch(torch.Generator().manual_seed(7))
    gen = torch.Generator().manual_seed(7)
    order = torch.randperm(n, generator=gen)
    steps = n // batch + (1 if n % batch >= 2 else 0)  # a last batch of one is left out
    assert len(plan) == s.steps == steps
    got = list(plan)
    for step, b in enumerate(got):
        index = order[step * batch : (step + 1) * batch]
        assert torch.equal(b.index, index)
        if augment:
            assert torch.equal(b.theta, random_affine(len(index), augment, gen))
        else:
            assert b.theta is None
    assert sum(len(b) for b in got) == (n if n % batch != 1 else n - 1)


def test_ranks_take_disjoint_shards_of_the_same_permutation():
    plans = [
        stream(101, 16, dist=DistInfo(rank, 2, rank)).epoch(torch.Generator().manual_seed(3))
        for rank in (0, 1)
    ]
    orders = [p.order for p in plans]
    assert len(orders[0]) == len(orders[1]) == 50
    assert not set(orders[0].tolist()) & set(orders[1].tolist())
    whole = torch.randperm(101, generator=torch.Generator().manual_seed(3))[:100]
    assert torch.equal(torch.stack(orders, 1).flatten(), whole)


def test_inputs_are_the_preprocessed_images_of_the_batch():
    s = stream(40, 16, size=64)
    batch = next(iter(s.epoch(torch.Generator().manual_seed(0))))
    x, y = s.inputs(batch)
    assert x.shape == (16, 3, 64, 64) and x.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(x, s.preprocess(s.images[batch.index], batch.theta))
    assert torch.equal(y, s.labels[batch.index])
    # unaugmented batches in order: evaluation and precise BN read the first images, resized alike
    xs = [x for x, _ in s.in_order(count=20, batch_size=8)]
    assert [len(x) for x in xs] == [8, 8, 4]
    assert torch.equal(torch.cat(xs), s.preprocess(s.images[:20]))


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


def test_warm_up_leaves_weights_statistics_and_random_state_as_they_were(tiny_letters):
    images, labels = letters(96)
    recipe = resolve_recipe("resnet18", overrides=["batch_size=32", "dropout=0.5"])
    model = create_model("resnet18", 26, dropout=0.5)
    trainer = Trainer(
        recipe, model, TrainData(images, labels, images[:8], labels[:8]), CPU, RunDir(tiny_letters / "r")
    )
    trainer.start_phase(0)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    rng = torch.get_rng_state()
    warm_up(
        trainer.step.forward_backward,
        [trainer.stream.example(), trainer.stream.example(5)],
        model,
        trainer.optimizer,
        CPU,
    )
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # BatchNorm statistics and counters too
    assert torch.equal(torch.get_rng_state(), rng)
    assert all(p.grad is None for p in model.parameters())


def test_a_warm_up_ramps_the_lr_over_its_epochs_then_the_plateau_rule_takes_over():
    recipe = resolve_recipe("densenet121", epochs=3, overrides=["phases.0.schedule.warmup_epochs=1"])
    param = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.Adam([param], lr=1e-3)
    schedule = build_scheduler(recipe.phases[0], optimizer, steps_per_epoch=4)
    lrs = []
    for _ in range(6):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        schedule.after_batch()
    assert lrs == pytest.approx([2.5e-4, 5e-4, 7.5e-4, 1e-3, 1e-3, 1e-3])
    saved = schedule.state_dict()
    for _ in range(4):  # the plateau rule, once its patience (2) runs out
        schedule.after_epoch(1.0)
    assert optimizer.param_groups[0]["lr"] == pytest.approx(5e-4)
    again = build_scheduler(recipe.phases[0], torch.optim.Adam([param], lr=1e-3), 4)
    again.load_state_dict(saved)
    assert again.warmup.last_epoch == 3  # done: it steps no further


def test_the_large_batch_mode_scales_each_optimisers_lr_by_its_rule_and_warms_up():
    sgd = resolve_recipe("resnet18", large_batch=1024)  # SGD, one-cycle (which warms up already)
    assert sgd.batch_size == 1024 and sgd.batch_scaling.base_batch_size == 64
    assert sgd.phases[0].optimizer.lr == pytest.approx(RESNET18_LR * 16)
    assert sgd.phases[0].schedule == resolve_recipe("resnet18").phases[0].schedule
    adam = resolve_recipe("xception", large_batch=512)  # Adam, reduce-on-plateau, two phases
    assert [p.optimizer.lr for p in adam.phases] == pytest.approx([2e-3, 2e-4])  # x sqrt(512 / 128)
    assert all(p.schedule.warmup_epochs == 1.0 for p in adam.phases)
    assert "large-batch mode: the recipe's batch 128 scaled up, LR x2 (square root rule)" in describe_recipe(
        adam
    )
    back = scale_batch(adam, 128)  # scaling is from the recipe's own batch, never compounded
    assert [p.optimizer.lr for p in back.phases] == pytest.approx([1e-3, 1e-4])
    fast = study_recipe("densenet121", PRESETS["fast"])
    assert fast.batch_size == 1024 and fast.batch_scaling.base_batch_size == 128


def test_train_records_the_large_batch_mode_and_refuses_it_with_a_batch_size(tiny_letters, tmp_path, capsys):
    out = tmp_path / "run"
    args = ["train", "--model", "resnet18", "--data-dir", tiny_letters, "--train-per-class", "8"]
    args += ["--epochs", "1", "--set", "val_fraction=0.25"]
    assert main([*map(str, args), "--out", str(out), "--quiet", "--large-batch", "16"]) == 0
    recipe = json.loads((out / "config.json").read_text())["recipe"]
    assert recipe["batch_size"] == 16 and recipe["batch_scaling"] == {"base_batch_size": 64}
    assert recipe["phases"][0]["optimizer"]["lr"] == pytest.approx(RESNET18_LR / 4)
    with pytest.raises(SystemExit) as refused:  # an argparse usage error: one line, exit 1
        main([*map(str, args), "--out", str(tmp_path / "b"), "--large-batch", "16", "--batch-size", "8"])
    assert refused.value.code == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("letterbench: error:") and "--large-batch" in err[0]
    assert not (tmp_path / "b").exists()


def test_the_background_writer_skips_what_follows_a_failed_write_and_raises_it(tmp_path):
    """A checkpoint that cannot be written must not be followed by a progress file counting its
    epoch: the jobs behind a failure are skipped, and the failure is raised to the caller."""
    import time

    from letterbench.core.fsutil import BackgroundWriter

    writer, done = BackgroundWriter(), []

    def failing():
        time.sleep(0.2)
        raise OSError(28, "No space left on device", str(tmp_path / "last.pt"))

    writer.submit(lambda: done.append("epoch 1"))
    writer.submit(failing)
    writer.submit(lambda: done.append("progress of epoch 2"))  # queued while the failing job runs
    with pytest.raises(OSError, match="No space left"):
        writer.flush()
    assert done == ["epoch 1"]
    writer.submit(lambda: done.append("after"))  # the error was raised once; the writer goes on
    writer.flush()
    assert done == ["epoch 1", "after"]


def test_a_failure_raised_by_submit_never_lets_the_job_queued_behind_it_run():
    """The error reaches the caller at its next ``submit``. Clearing it there must not let a job
    queued behind the failed one, and not yet started, run after all: that job (a progress file)
    counts the failed one's epoch. A race, so tried many times with threads switching often (the
    writer before this test let the job run about 1 time in 300 here)."""
    import sys
    import threading

    from letterbench.core.fsutil import BackgroundWriter

    def trial() -> list[str]:
        writer, ran, gate = BackgroundWriter(depth=2), [], threading.Event()

        def failing():
            gate.wait()
            raise OSError(28, "No space left on device")

        writer.submit(failing)
        writer.submit(lambda: ran.append("behind the failure"))
        gate.set()
        with pytest.raises(OSError):
            writer.submit(lambda: ran.append("refused"))
        writer.submit(lambda: ran.append("after"))
        writer.flush()
        return ran

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        outcomes = [trial() for _ in range(3000)]
    finally:
        sys.setswitchinterval(interval)
    assert all(ran == ["after"] for ran in outcomes), [r for r in outcomes if r != ["after"]][:3]


# ---------------------------------------------------------------- style augmentations

STYLE = {**AUGMENT, "thickness": 1.5, "blur": 0.5, "contrast": 0.5, "elastic": 0.05}


def _stroke_image() -> torch.Tensor:
    img = torch.zeros(1, 28, 28, dtype=torch.uint8)
    img[0, 5:23, 12:15] = 255  # a vertical bar, 3 px wide
    img[0, 5:8, 8:20] = 255
    return img


def test_style_parameters_change_the_strokes_as_named():
    pre = Preprocess(create_model("resnet18").spec, "cpu", channels_last=False)
    img = _stroke_image()

    def ink(**values) -> torch.Tensor:
        style = torch.zeros(1, STYLE_WIDTH)
        for column, key in enumerate(("thickness", "blur", "gamma")):
            style[0, column] = values.get(key, 0.0)
        if "elastic" in values:
            style[0, 3:] = (
                torch.randn(STYLE_WIDTH - 3, generator=torch.Generator().manual_seed(0)) * values["elastic"]
            )
        return pre(img, None, style) * pre.std + pre.mean  # back to 0..1

    plain = pre(img) * pre.std + pre.mean
    assert torch.allclose(ink(), plain, atol=1e-5)  # zeros change nothing
    faint = (img.float() * 0.8).to(torch.uint8)  # a peak of 204, not 255
    assert torch.allclose(pre(faint, None, torch.zeros(1, STYLE_WIDTH)), pre(faint), atol=1e-5)
    assert ink(thickness=1.0).sum() > 1.5 * plain.sum()  # one step of dilation: 3 px -> 5 px
    assert ink(thickness=-1.0).sum() < 0.5 * plain.sum()
    assert plain.sum() < ink(thickness=0.5).sum() < ink(thickness=1.0).sum() < ink(thickness=2.0).sum()
    blurred = ink(blur=1.0)
    assert blurred.max() == pytest.approx(1.0) and (blurred > 0.05).sum() > (plain > 0.05).sum()
    assert ink(gamma=0.5).sum() < blurred.sum() and torch.allclose(ink(gamma=0.5).amax(), plain.amax())
    warped = ink(elastic=0.08)
    assert (warped - plain).abs().max() > 0.5 and abs(warped.sum() / plain.sum() - 1) < 0.2


def test_style_is_drawn_after_the_matrices_and_only_where_asked():
    s = stream(70, 32, STYLE)
    plan = s.epoch(torch.Generator().manual_seed(5))
    gen = torch.Generator().manual_seed(5)
    torch.randperm(70, generator=gen)
    theta = random_affine(70, STYLE, gen)
    style = random_style(70, STYLE, gen)
    assert torch.equal(plan.theta, theta) and torch.equal(plan.style, style)
    assert style[:, 0].abs().max() <= 1.5 and 0 <= style[:, 1].min() and style[:, 1].max() <= 0.5
    assert stream(70, 32).epoch(torch.Generator().manual_seed(5)).style is None
    batch = next(iter(plan))
    x, _ = s.inputs(batch)
    assert not torch.equal(x, s.preprocess(s.images[batch.index], batch.theta))
    assert s.example().style.abs().sum() == 0  # warm-up and capture batches are neutral


def test_a_recipe_trains_with_style_augmentations(tiny_letters, tmp_path, capsys):
    out = tmp_path / "run"
    args = ["train", "--model", "timm:resnet10t", "--epochs", "1", "--quiet", "--data-dir", str(tiny_letters)]
    sets = ["augment.thickness=1", "augment.blur=0.5", "augment.contrast=0.3", "augment.elastic=0.04"]
    assert main([*args, "--out", str(out), *[a for s in sets for a in ("--set", s)]]) == 0
    recipe = json.loads(RunDir(out).config_file.read_text())["recipe"]
    assert recipe["augment"]["thickness"] == 1 and recipe["augment"]["elastic"] == 0.04
    assert "stroke ±1 px" in describe_recipe(resolve_recipe("resnet18", overrides=sets))
    assert main([*args, "--out", str(tmp_path / "bad"), "--set", "augment.thickness=5"]) != 0
    assert "augment.thickness" in capsys.readouterr().err


def test_shear_slants_upright_strokes_and_leaves_other_recipes_draws_alone():
    """A vertical bar comes out leaning, each way, by no more than the recipe's shear; a recipe
    without shear draws the matrices it drew before shear existed (same seed, same run)."""
    bar = torch.zeros(1, 28, 28, dtype=torch.uint8)
    bar[0, 4:24, 13:15] = 255
    theta = random_affine(64, {"shear": 0.4}, torch.Generator().manual_seed(1))
    out = Preprocess(create_model("resnet18").spec, "cpu", channels_last=False)(bar.expand(64, 28, 28), theta)
    ink = out[:, 0] - out[:, 0].amin()
    cols = torch.arange(28.0)

    def centre(rows: slice) -> torch.Tensor:
        part = ink[:, rows].sum(1)
        return (part * cols).sum(1) / part.sum(1)

    lean = (centre(slice(18, 24)) - centre(slice(4, 10))) / 14  # columns per row, bottom minus top
    assert lean.max() > 0.2 and lean.min() < -0.2 and lean.abs().max() <= 0.4 + 0.05
    upright = {"rotate": 10.0, "zoom": 0.1, "shift": 0.08, "flip": True}
    for shear, width in ((0.0, 5), (0.3, 6)):
        u = torch.rand(8, width, generator=torch.Generator().manual_seed(2)) * 2 - 1
        angle, scale = u[:, 0] * torch.pi / 18, 1 + u[:, 1] * 0.1
        cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
        turn = torch.stack([torch.stack([cos, -sin], 1), torch.stack([sin, cos], 1)], 1)
        flip = torch.where(u[:, 4] < 0, -1.0, 1.0)
        lean = u[:, 5] * shear if shear else torch.zeros(8)
        # rotation and zoom after the flip and the slant (output -> input coordinates)
        slant = torch.stack(
            [torch.stack([flip, lean], 1), torch.stack([torch.zeros(8), torch.ones(8)], 1)], 1
        )
        got = random_affine(8, {**upright, "shear": shear}, torch.Generator().manual_seed(2))
        assert torch.allclose(got[:, :, :2], turn @ slant, atol=1e-6)
        assert torch.allclose(got[:, :, 2], u[:, 2:4] * 0.16)
