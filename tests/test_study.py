"""`letterbench run` end to end on the real partial data, and `letterbench predict` on drawn letters."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw, ImageFont

from letterbench.cli.main import main
from letterbench.images.letters import emnist_like, prepare_file
from letterbench.models import display_name
from letterbench.runs.rundir import RunDir


def test_run_smoke_end_to_end_then_resumes_without_retraining(real_data_dir, tmp_path, capsys):
    out = tmp_path / "study"
    args = ["run", "--preset", "smoke", "--data-dir", str(real_data_dir), "--out", str(out), "--quiet"]
    assert main(args) == 0
    first = capsys.readouterr().out
    assert first.splitlines()[0] == "preset smoke (as asked)"
    assert "model" in first and "accuracy" in first and "report:" in first
    assert "recommendation: none: these models are not yet useful" in first  # seconds of training
    summary = first[first.index("\nmodel ") :]  # the table, the recommendation, the notes, the report
    assert max(len(line) for line in summary.splitlines() if not line.startswith("report: ")) <= 100
    assert "see the report" in summary and "note:" not in summary
    for model in ("resnet18", "densenet121", "xception"):
        assert json.loads((out / "runs" / model / "progress.json").read_text())["status"] == "finished"
    page = (out / "report" / "report.html").read_text()
    assert (
        "ResNet-18" in page and "DenseNet-121" in page and "Xception fine-tune" in page and "Ensemble" in page
    )
    assert "Data: PARTIAL copy" in page and "Tested on a stratified subset of the test set" in page
    assert "Not yet useful:" in page and "Recommendation:" not in page
    stamps = {
        m: (out / "runs" / m / "checkpoints" / "last.pt").stat().st_mtime_ns for m in ("resnet18", "xception")
    }

    assert main(args) == 0
    second = capsys.readouterr().out
    assert second.count("finished earlier, skipped") == 3
    assert stamps == {m: (out / "runs" / m / "checkpoints" / "last.pt").stat().st_mtime_ns for m in stamps}


def test_run_resumes_an_interrupted_second_seed_and_reports_mean_and_spread(real_data_dir, tmp_path, capsys):
    """A real interruption of a study with --seeds 2: killed (-9) while the second seed of Xception
    trains its second phase, run again, it resumes that seed (the first one is skipped) and must end
    with the weights and history of a study that was never interrupted. The report shows the model
    once, as the mean ± sd of its two seeds."""
    from test_training import cli_process, kill_after_epochs

    def args(out, seeds=("--seeds", "2")):
        return ["run", "--preset", "smoke", "--models", "xception", *seeds] + [
            "--data-dir",
            str(real_data_dir),
            "--out",
            str(out),
            "--quiet",
        ]

    # Uninterrupted: seed 1 alone (a run's seed, not its folder, decides what it trains).
    assert main(args(tmp_path / "straight", ("--seed", "1"))) == 0
    killed = tmp_path / "killed"
    run = killed / "runs" / "xception-seed1"
    cmd, env = cli_process(*args(killed))
    assert kill_after_epochs(cmd, env, run, 1) == 1  # phase 1 done, phase 2 under way
    assert RunDir(run).status() == "running"
    capsys.readouterr()
    assert main(args(killed)) == 0
    printed = capsys.readouterr().out
    assert "seeds: 2 per model" in printed and "xception (seed 1): resuming" in printed
    assert "xception (seed 0): finished earlier, skipped" in printed
    a = RunDir(tmp_path / "straight/runs/xception").load_checkpoint("last")
    b = RunDir(run).load_checkpoint("last")
    assert a["trainer"]["global_epoch"] == b["trainer"]["global_epoch"] == 2
    for key, tensor in a["model"].items():
        assert torch.equal(tensor, b["model"][key]), key
    assert [(h["phase"], h["val_loss"]) for h in a["trainer"]["history"]] == [
        (h["phase"], h["val_loss"]) for h in b["trainer"]["history"]
    ]
    seeds = {d.name: json.loads((d / "config.json").read_text())["seed"] for d in (killed / "runs").iterdir()}
    assert seeds == {"xception": 0, "xception-seed1": 1}
    assert json.loads((killed / "study.json").read_text())["seeds"] == 2
    summary = json.loads((killed / "report" / "summary.json").read_text())
    assert summary["columns"] == ["Xception", "Xception fine-tune"]  # one model, its seeds together
    accuracy = next(r for r in summary["rows"] if r["key"] == "accuracy")
    assert all(std is not None for std in accuracy["seed_std"])
    runs = [RunDir(killed / "runs" / name) for name in ("xception", "xception-seed1")]
    mean = np.mean(
        [json.loads(r.metrics_file.read_text())["stages"][-1]["metrics"]["accuracy"] for r in runs]
    )
    assert accuracy["values"][1] == pytest.approx(mean)
    page = (killed / "report" / "report.html").read_text()
    assert "Models trained with several seeds (2)" in page and "Xception (seed 1)" in page
    assert f"{100 * mean:.2f}% ± " in page
    # A metrics file of an older schema is evaluated again, not skipped (the report could not read it).
    metrics = json.loads((run / "metrics.json").read_text())
    (run / "metrics.json").write_text(json.dumps({**metrics, "schema": "letterbench-metrics-1"}))
    assert main(args(killed)) == 0
    assert "xception (seed 1): finished earlier, skipped" not in capsys.readouterr().out
    assert json.loads((run / "metrics.json").read_text())["schema"] == "letterbench-metrics-3"
    # export holds one seed: the bare model name is ambiguous, each seed is named
    capsys.readouterr()
    assert main(["export", "--run", str(killed), "--model", "xception"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "holds 2 seeds of xception and an export holds one" in err[0]
    assert "'xception (seed 0)', 'xception (seed 1)'" in err[0]
    from letterbench.apps.export import export_target

    assert export_target(killed, "xception (seed 0)").path == killed / "runs" / "xception"
    assert export_target(killed, "xception (seed 1)").path == run


def letters_folder(folder: Path, per_letter: int = 2) -> Path:
    """A --real-world folder: dark letters on white paper, one sub-folder per letter."""
    from letterbench.images.synthetic import synthetic_letters

    images, labels = synthetic_letters(26 * per_letter, seed=9)
    for k, (image, label) in enumerate(zip(images, labels, strict=True)):
        sub = folder / "abcdefghijklmnopqrstuvwxyz"[label]
        sub.mkdir(parents=True, exist_ok=True)
        Image.fromarray(255 - np.kron(image, np.ones((4, 4), np.uint8))).save(sub / f"{k}.png")
    return folder


def check_real_world_rows(out: Path, summary: dict) -> None:
    """The report's real-world rows: every model and the ensemble, with intervals; the ensemble's
    figure is its members' mean probability on the folder's images."""
    rows = {row["key"]: row for row in summary["rows"]}
    for key in ("real_world_top1", "real_world_top3"):
        assert all(v is not None for v in rows[key]["values"]), key
        for value, (lo, hi) in zip(rows[key]["values"], rows[key]["intervals"], strict=True):
            assert lo <= value <= hi
    assert "Real-world top-1" in (out / "report" / "report.html").read_text()
    members = json.loads((out / "ensemble.json").read_text())["members"]
    folders = {"resnet18": "resnet18", "timm:resnet10t": "timm-resnet10t"}
    from letterbench.evaluation.inference import recalibrated, run_temperature

    runs = [RunDir(out / "runs" / folders[m]) for m in members]
    read = [run.load_real_world("train") for run in runs]
    labels = read[0].labels
    # each member's calibrated probabilities (divided by its temperature), as predict answers
    calibrated = [recalibrated(r.probs, run_temperature(run)) for r, run in zip(read, runs, strict=True)]
    right = np.mean(calibrated, 0).argmax(1) == labels
    assert rows["real_world_top1"]["values"][-1] == pytest.approx(right.mean())


def test_run_with_a_timm_model_end_to_end(real_data_dir, tmp_path, capsys):
    out = tmp_path / "study"
    args = [
        "run",
        "--preset",
        "smoke",
        "--models",
        "resnet18,timm:resnet10t",
        "--data-dir",
        str(real_data_dir),
        "--real-world",
        str(letters_folder(tmp_path / "mine")),
    ]
    assert main([*args, "--out", str(out), "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "timm:resnet10t" in printed and "report:" in printed
    assert "real-world letters: 52 images in" in printed
    summary = json.loads((out / "report" / "summary.json").read_text())
    assert summary["columns"] == ["ResNet-18", "timm:resnet10t", "Ensemble"]
    check_real_world_rows(out, summary)
    capsys.readouterr()
    assert main(["report", str(out), "--out", str(tmp_path / "again")]) == 0  # a study: all its runs
    capsys.readouterr()
    again = json.loads((tmp_path / "again" / "summary.json").read_text())
    assert again["columns"] == summary["columns"] and again["rows"] == summary["rows"]
    assert any(w.startswith("Equal budget: every model trained on the same") for w in summary["warnings"])
    config = json.loads((out / "runs" / "timm-resnet10t" / "config.json").read_text())
    assert config["model"]["name"] == "timm:resnet10t" and config["recipe"]["model"] == "timm:resnet10t"
    assert {c["test"] for c in summary["comparisons"]} == {"McNemar's exact test"}
    check_ensemble_choice(out, printed, summary, tmp_path, capsys)

    # A second seed of each model, added by a rerun: each model is still one column, now compared
    # with the Wilcoxon signed-rank test, and the ensemble averages each model's two seeds.
    assert main([*args, "--out", str(out), "--quiet", "--seeds", "2"]) == 0
    assert capsys.readouterr().out.count("finished earlier, skipped") == 2
    summary = json.loads((out / "report" / "summary.json").read_text())
    assert summary["columns"] == ["ResNet-18", "timm:resnet10t", "Ensemble"]
    assert {c["test"] for c in summary["comparisons"]} == {"Wilcoxon signed-rank test"}
    budget = [w for w in summary["warnings"] if "budget" in w.lower()]
    assert (
        len(budget) == 1 and budget[0].startswith("Equal budget") and "(seed by seed, 2 seeds)" in budget[0]
    )
    assert (out / "runs" / "timm-resnet10t-seed1" / "metrics.json").is_file()
    runs = {name: RunDir(out / "runs" / name) for name in sorted(os.listdir(out / "runs"))}
    models = {
        "resnet18": ["resnet18", "resnet18-seed1"],
        "timm:resnet10t": ["timm-resnet10t", "timm-resnet10t-seed1"],
    }
    members = json.loads((out / "ensemble.json").read_text())["members"]
    labels = runs["resnet18"].load_predictions("train")[1]
    from letterbench.evaluation.inference import recalibrated, run_temperature

    def calibrated(name: str) -> np.ndarray:  # as predict answers: divided by the run's temperature
        return recalibrated(runs[name].load_predictions("train")[0], run_temperature(runs[name]))

    per_model = [  # each seed's calibrated probabilities, averaged per model, then over the members
        np.mean([calibrated(name) for name in models[m]], 0) for m in members
    ]
    ensemble = np.mean(per_model, 0).argmax(1) == labels
    assert summary["rows"][0]["values"][2] == pytest.approx(ensemble.mean())
    rows = {row["key"]: row for row in summary["rows"]}
    assert all(v is not None for v in rows["real_world_top1"]["values"])  # the new seeds read it too
    assert RunDir(out / "runs" / "timm-resnet10t-seed1").load_real_world("train") is not None

    # A rerun with one seed again: the study is that, and predict follows study.json, not every
    # folder under runs/ (the second seeds' runs stay on disk, untouched)
    assert main([*args, "--out", str(out), "--quiet", "--seeds", "1"]) == 0
    capsys.readouterr()
    assert (
        main(["predict", str(tmp_path / "mine" / "a" / "0.png"), "--run", str(out), "--ensemble", "--json"])
        == 0
    )
    assert json.loads(capsys.readouterr().out)["models"] == ["resnet18", "timm:resnet10t"]
    assert (out / "runs" / "timm-resnet10t-seed1" / "metrics.json").is_file()
    # Without --model, predict answers with the study's ensemble, as serve does, and names it
    assert main(["predict", str(tmp_path / "mine" / "a" / "0.png"), "--run", str(out)]) == 0
    members = json.loads((out / "ensemble.json").read_text())["members"]
    said = capsys.readouterr().out.splitlines()[1]
    assert said.startswith("answer: the ensemble of ") and said.count("+") == len(members) - 1
    assert all(display_name(m) in said for m in members), said
    # One model of the study stopped before it finished: the others answer, and a warning says so
    half = Path(shutil.copytree(out, tmp_path / "half"))
    progress = json.loads((half / "runs" / "timm-resnet10t" / "progress.json").read_text())
    (half / "runs" / "timm-resnet10t" / "progress.json").write_text(
        json.dumps({**progress, "status": "interrupted"})
    )
    assert (
        main(["predict", str(tmp_path / "mine" / "a" / "0.png"), "--run", str(half), "--ensemble", "--json"])
        == 0
    )
    said = capsys.readouterr()
    assert json.loads(said.out)["models"] == ["resnet18"]
    assert said.err.strip().startswith("letterbench: warning:") and "timm:resnet10t not finished" in said.err


@pytest.mark.parametrize(
    "make, expect",
    [
        (lambda d: d / "missing", "no such folder"),
        (lambda d: (d / "x").mkdir() or d / "x", "no labels.csv and no images in letter folders"),
        (lambda d: (d / "ab").mkdir(parents=True) or d, "label 'ab' is not a letter"),
        (
            lambda d: ((d / "labels.csv").write_text("file,label\nnone.png,a\n"), d)[1],
            "line 2: no image 'none.png'",
        ),
        (
            lambda d: ((d / "labels.csv").write_text("name,letter\nx.png,a\n"), d)[1],
            "needs the columns file and label",
        ),
        (
            lambda d: ((d / "labels.csv").write_text("file,label\n../etc.png,a\n"), d)[1],
            "no image '../etc.png'",
        ),
        (  # an iPhone's photos only
            lambda d: ((d / "a").mkdir(), (d / "a" / "IMG_1.HEIC").write_bytes(b"x"), d)[2],
            "only files letterbench does not read: .heic; convert them to PNG or JPEG",
        ),
        (lambda d: (os.mkfifo(d / "labels.csv"), d)[1], "labels.csv: not a regular file"),
        (
            lambda d: ((d / "labels.csv").write_bytes(b"file,label\n" + b"x" * (11 * 2**20)), d)[1],
            "more than a labels file of letters holds",
        ),
    ],
)
def test_a_malformed_real_world_folder_is_refused_with_one_line_before_anything_trains(
    tmp_path, capsys, make, expect
):
    (tmp_path / "set").mkdir()
    folder = make(tmp_path / "set")
    out = tmp_path / "study"
    code = main(["run", "--preset", "smoke", "--real-world", str(folder), "--out", str(out)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code != 0 and len(err) == 1 and err[0].startswith("letterbench: error:") and expect in err[0]
    assert "sub-folder of images per letter" in err[0]  # says how to lay it out
    assert not out.exists()


def check_ensemble_choice(out: Path, printed: str, summary: dict, tmp_path: Path, capsys) -> None:
    """The study chose its ensemble's models on held-out training images, recorded the choice, and
    the report and predict use it."""
    record = json.loads((out / "ensemble.json").read_text())
    assert record["images"] == 10 * 26  # the smoke preset tests 3 per class; at least 10 are scored
    assert record["held_out"] == "training images no model trained on"
    assert len(record["candidates"]) == 3 and record["members"]
    chosen = next(c for c in record["candidates"] if c["members"] == record["members"])
    assert chosen["accuracy"] == max(c["accuracy"] for c in record["candidates"])
    assert f"ensemble: {', '.join(record['members'])}" in printed
    assert summary["ensemble"]["chosen"] == record
    assert "training images no model trained on" in (out / "report" / "report.html").read_text()
    letter = np.zeros((28, 28), np.uint8)
    letter[4:24, 12:16] = 255
    Image.fromarray(letter).save(tmp_path / "l.png")
    assert main(["predict", str(tmp_path / "l.png"), "--run", str(out), "--ensemble", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["ensemble"] == record["members"]


def test_run_on_another_split(tmp_path, capsys):
    from conftest import synthetic_letters, write_emnist

    data = write_emnist(
        tmp_path / "balanced",
        synthetic_letters(6, num_classes=47, seed=1),
        synthetic_letters(3, num_classes=47, seed=2),
        split="balanced",
        label_offset=0,
    )
    out = tmp_path / "study"
    args = [
        "run",
        "--split",
        "balanced",
        "--preset",
        "smoke",
        "--models",
        "resnet18",
        "--data-dir",
        str(data),
    ]
    assert main([*args, "--out", str(out), "--quiet"]) == 0
    assert json.loads((out / "study.json").read_text())["split"] == "balanced"
    metrics = json.loads((out / "runs" / "resnet18" / "metrics.json").read_text())
    assert metrics["run"]["data"]["split"] == "balanced" and len(metrics["class_names"]) == 47
    assert metrics["class_names"][:3] == ["0", "1", "2"] and metrics["run"]["data"]["test_used"] == 47 * 3
    assert (out / "report" / "report.html").exists()
    capsys.readouterr()
    assert (
        main(["run", "--split", "letters", "--preset", "smoke", "--data-dir", str(data), "--out", str(out)])
        == 1
    )
    assert "split balanced" in capsys.readouterr().err


def test_run_refuses_an_unknown_model_before_writing_anything(tmp_path, capsys):
    out = tmp_path / "study"
    assert main(["run", "--preset", "smoke", "--models", "resnet18,timm:nosuchnet", "--out", str(out)]) == 1
    assert "timm has no model 'nosuchnet'" in capsys.readouterr().err
    assert not out.exists()


def test_run_refuses_a_different_preset_on_the_same_out(real_data_dir, tmp_path, capsys):
    out = tmp_path / "study"
    out.mkdir()
    (out / "study.json").write_text(json.dumps({"preset": "quick", "seed": 0}))
    assert main(["run", "--preset", "smoke", "--data-dir", str(real_data_dir), "--out", str(out)]) == 1
    assert "holds a study with preset quick" in capsys.readouterr().err


def test_run_without_data_and_network_says_how_to_provide_it(tmp_path, capsys, monkeypatch):
    import letterbench.data.ensure as ensure

    monkeypatch.setattr(ensure, "ARCHIVE_URL", "http://127.0.0.1:9/gzip.zip")  # nothing listens: offline
    monkeypatch.setattr("letterbench.data.fetch.time.sleep", lambda s: None)
    assert (
        main(
            ["run", "--preset", "smoke", "--data-dir", str(tmp_path / "empty"), "--out", str(tmp_path / "s")]
        )
        == 1
    )
    err = capsys.readouterr().err
    assert "could not be downloaded" in err and "letterbench data import" in err


# ---------------------------------------------------------------- predict

FONTS = ["DejaVuSans.ttf", "DejaVuSans-Bold.ttf", "DejaVuSerif.ttf", "DejaVuSansMono.ttf"]


def load_font(name: str, size: int):
    try:
        return ImageFont.truetype(name, size)
    except OSError:
        return ImageFont.load_default(size)


def draw_letter(
    letter: str,
    font: str,
    size: int = 200,
    text_size: int = 120,
    stroke: int = 0,
    offset=(0, 0),
    dark_on_light: bool = True,
) -> Image.Image:
    bg, fg = (255, 0) if dark_on_light else (0, 255)
    img = Image.new("L", (size, size), bg)
    draw = ImageDraw.Draw(img)
    draw.text(
        (size / 2 + offset[0], size / 2 + offset[1]),
        letter,
        fill=fg,
        font=load_font(font, text_size),
        anchor="mm",
        stroke_width=stroke,
        stroke_fill=fg,
    )
    return img


def test_preprocessing_matches_emnist_conventions():
    img = draw_letter("l", FONTS[0], size=300, text_size=200, offset=(60, -40))
    out = emnist_like(np.asarray(img, np.float32) / 255)
    assert out.shape == (28, 28) and out.dtype == np.uint8 and out.max() == 255
    assert out[:2].max() == 0 and out[-2:].max() == 0  # a 2-pixel margin
    rows, cols = np.nonzero(out > 64)
    assert rows.max() - rows.min() > 3 * (cols.max() - cols.min())  # tall stroke, aspect ratio kept
    assert abs((cols.min() + cols.max()) / 2 - 13.5) < 2  # centred although drawn off-centre
    inverted = emnist_like(1 - np.asarray(img, np.float32) / 255)
    assert np.abs(inverted.astype(int) - out.astype(int)).max() <= 1  # light-on-dark gives the same


@pytest.fixture(scope="module")
def letter_model(tmp_path_factory):
    """timm's tiny test ResNet trained here (seconds) on letters drawn in many fonts, sizes and
    strokes, prepared as ``predict`` prepares them."""
    from conftest import write_emnist

    root = tmp_path_factory.mktemp("predict")
    rng = np.random.default_rng(0)
    letters = "abcdefghijklmnopqrstuvwxyz"
    images, labels = [], []
    for k, letter in enumerate(letters):
        for font in FONTS:
            for _ in range(6):
                img = draw_letter(
                    letter,
                    font,
                    text_size=int(rng.integers(90, 150)),
                    stroke=int(rng.integers(0, 5)),
                    offset=tuple(rng.integers(-25, 25, 2)),
                )
                images.append(emnist_like(np.asarray(img, np.float32) / 255))
                labels.append(k)
    images, labels = np.stack(images), np.array(labels, np.uint8)
    write_emnist(root / "data", (images, labels), (images[::6], labels[::6]))
    run = root / "run"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a network this small gains nothing from two threads (see test_serve)
    try:
        train = ["train", "--model", "timm:test_resnet", "--pretrained", "false", "--quiet"]
        args = ["--data-dir", str(root / "data"), "--out", str(run), "--epochs", "10", "--batch-size", "32"]
        assert main([*train, *args, "--set", "val_fraction=0.15"]) == 0
    finally:
        torch.set_num_threads(threads)
    return run


def test_predict_recognises_drawn_letters(letter_model, tmp_path, capsys):
    cases = []
    for i, letter in enumerate("abcdefghijklmnopqrstuvwxyz"):
        font = FONTS[i % len(FONTS)]
        img = draw_letter(
            letter,
            font,
            size=240 + 20 * (i % 3),
            text_size=100 + 10 * (i % 4),
            stroke=i % 3,
            offset=(15 * (i % 3) - 15, 10 - 10 * (i % 2)),
            dark_on_light=i % 2 == 0,
        )
        path = tmp_path / f"{letter}.png"
        (img.convert("RGB") if i % 3 == 0 else img).save(path)
        cases.append((path, letter))
    assert (
        main(
            [
                "predict",
                "--run",
                str(letter_model),
                "--json",
                "--show-input",
                str(tmp_path / "seen"),
                *[str(p) for p, _ in cases],
            ]
        )
        == 0
    )
    result = json.loads(capsys.readouterr().out)
    hits = sum(
        r["top3"][0]["letter"] == letter for r, (_, letter) in zip(result["predictions"], cases, strict=True)
    )
    assert hits >= 20, f"only {hits}/26 drawn letters recognised"
    assert all(abs(sum(t["probability"] for t in r["top3"])) <= 1.0 + 1e-6 for r in result["predictions"])
    seen = Image.open(tmp_path / "seen" / "a.input.png")
    assert seen.size == (28, 28)


def test_predict_reports_bad_files_and_processes_the_rest(letter_model, tmp_path, capsys):
    good = tmp_path / "x.png"
    draw_letter("x", FONTS[0]).save(good)
    blank = tmp_path / "blank.png"
    Image.new("L", (64, 64), 255).save(blank)
    text = tmp_path / "notes.txt"
    text.write_text("not an image")
    broken = tmp_path / "broken.png"
    broken.write_bytes(good.read_bytes()[:100])
    pipe = tmp_path / "pipe.png"  # a named pipe would block a reader for ever
    os.mkfifo(pipe)
    code = main(
        [
            "predict",
            "--run",
            str(letter_model),
            str(good),
            str(blank),
            str(text),
            str(broken),
            str(tmp_path / "missing.png"),
            str(pipe),
        ]
    )
    captured = capsys.readouterr()
    assert code == 1
    models, case, answer = captured.out.splitlines()[:3]
    assert models.startswith("models: ") and answer.startswith(f"{good}: ")
    assert case.startswith("note: small and capital letters are one class")
    errors = [
        line for line in captured.err.strip().splitlines() if "uncalibrated" not in line
    ]  # (never evaluated)
    assert len(errors) == 5
    assert (
        "blank" in errors[0]
        and "not an image" in errors[1]
        and "unreadable" in errors[2]
        and "no such file" in errors[3]
        and errors[4] == f"{pipe}: error: not a regular file (a pipe or a device), not an image"
    )
    assert prepare_file(blank).error == "the image is blank (no ink found)"


def test_predict_needs_a_finished_model(letter_model, tmp_path, capsys):
    shutil.copytree(letter_model, tmp_path / "run")
    (tmp_path / "run" / "progress.json").write_text(json.dumps({"status": "interrupted"}))
    image = tmp_path / "a.png"
    draw_letter("a", FONTS[0]).save(image)
    assert main(["predict", "--run", str(tmp_path / "run"), str(image)]) == 1
    assert "no finished model" in capsys.readouterr().err


def test_paper_preset_time_estimate_is_measured():
    from letterbench.core.runtime import Runtime
    from letterbench.study.runner import PRESETS, estimate_minutes, study_recipe
    from letterbench.training.throughput import measure_train_throughput

    recipe = study_recipe("resnet18", PRESETS["paper"])
    assert recipe.phases[0].epochs == 12 and recipe.batch_size == 64  # the full recipe, untouched
    cpu = Runtime.create("cpu")
    rate = measure_train_throughput(recipe, cpu, steps=2)
    minutes = estimate_minutes([recipe], 124_800, cpu)
    expected = 12 * 124_800 * 0.9 / rate / 60
    assert 0.5 * expected < minutes < 2 * expected


def test_input_names_stay_distinct_when_a_file_is_named_twice():
    from letterbench.apps.predict import input_names

    paths = [Path("a.png"), Path("a-2.png"), Path("a.png"), Path("x/l.png"), Path("y/l.jpg"), Path("x/l.png")]
    names = input_names(paths)
    assert names == ["a", "a-2", "a-3", "x-l", "y-l", "x-l-2"] and len(set(names)) == len(names)


def test_real_world_letters_go_with_the_letters_split(tmp_path, capsys):
    folder = letters_folder(tmp_path / "mine", per_letter=1)
    out = tmp_path / "study"
    code = main(
        ["run", "--preset", "smoke", "--split", "digits", "--real-world", str(folder), "--out", str(out)]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(err) == 1 and "goes with --split letters, not digits" in err[0]
    assert not out.exists()


def test_real_world_readings_are_reported_only_from_the_evaluation_that_made_them(
    tiny_letters, tmp_path, capsys
):
    """An evaluation without --real-world removes the readings of an earlier one (a report never
    shows stale figures); a reading records its folder, and a study reading another folder does
    not count it as read."""
    run = tmp_path / "run"
    args = ["train", "--model", "timm:test_resnet", "--epochs", "1", "--train-per-class", "8"]
    assert (
        main([*args, "--set", "val_fraction=0.25", "--data-dir", str(tiny_letters), "--out", str(run)]) == 0
    )
    folder = letters_folder(tmp_path / "mine")
    assert main(["evaluate", str(run), "--no-plots", "--real-world", str(folder)]) == 0
    assert RunDir(run).has_real_world(str(folder)) and not RunDir(run).has_real_world(str(tmp_path / "other"))
    assert RunDir(run).load_real_world("train").folder == str(folder)
    assert main(["report", str(run), "--out", str(tmp_path / "r1")]) == 0
    rows = {r["key"] for r in json.loads((tmp_path / "r1" / "summary.json").read_text())["rows"]}
    assert "real_world_top1" in rows
    assert main(["evaluate", str(run), "--no-plots"]) == 0
    assert not RunDir(run).has_real_world() and RunDir(run).load_real_world("train") is None
    assert main(["report", str(run), "--out", str(tmp_path / "r2")]) == 0
    rows = {r["key"] for r in json.loads((tmp_path / "r2" / "summary.json").read_text())["rows"]}
    assert "real_world_top1" not in rows


def test_a_real_world_folder_from_a_spreadsheet_or_a_zip_of_a_mac_reads_as_meant(tmp_path):
    """labels.csv saved with a BOM (Excel's UTF-8) keeps its `file` column; an archiver's
    __MACOSX folder and hidden folders are not letters; unreadable images are counted aloud."""
    from letterbench.evaluation.real_world import load_real_world

    folder = letters_folder(tmp_path / "mine", per_letter=1)
    (folder / "__MACOSX").mkdir()
    (folder / ".hidden").mkdir()
    Image.new("L", (40, 40), 255).save(folder / "a" / "blank.png")  # no letter in it
    with pytest.warns(UserWarning, match=r"1 of 27 images hold no readable letter \(blank.png\)"):
        found = load_real_world(folder)
    assert len(found) == 27 and found.readable.sum() == 26
    letters = [p for p in sorted(folder.glob("?/*.png")) if p.name != "blank.png"]
    rows = ["file,label"] + [f"{p.relative_to(folder)},{p.parent.name}" for p in letters]
    (folder / "labels.csv").write_text("\n".join(rows) + "\n", encoding="utf-8-sig")
    assert len(load_real_world(folder)) == 26


def test_an_empty_real_world_path_is_refused_not_read_as_the_current_folder(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_status:  # a usage error, as argparse ends one
        main(["run", "--preset", "smoke", "--real-world", "", "--out", str(tmp_path / "s")])
    err = capsys.readouterr().err.strip().splitlines()
    assert exit_status.value.code == 1 and len(err) == 1 and "--real-world: an empty path" in err[0]
    assert err[0].startswith("letterbench: error:")
    assert not (tmp_path / "s").exists()


def test_hidden_files_in_letter_folders_are_not_letters_and_unread_formats_are_named(tmp_path):
    from letterbench.evaluation.real_world import load_real_world

    folder = tmp_path / "set" / "l"
    folder.mkdir(parents=True)
    letter = np.full((40, 40), 255, np.uint8)
    letter[6:34, 17:23] = 0
    Image.fromarray(letter).save(folder / "one.png")
    (folder / "._one.png").write_bytes(b"\x00\x05\x16\x07 macOS resource fork")
    (folder / "two.heic").write_bytes(b"x")
    with pytest.warns(UserWarning, match=r"skipped 1 files in formats letterbench does not read \(.heic\)"):
        found = load_real_world(tmp_path / "set")
    assert len(found) == 1 and found.readable.all()  # the ._ file is no unreadable letter


@pytest.mark.parametrize(
    "encode, expect",
    [
        (lambda text: text.replace("ResNet", "R\xe9sNet").encode("latin-1"), "not UTF-8"),
        (lambda text: b"\xef\xbb\xbf" + text.encode(), None),  # a byte-order mark: read as UTF-8
    ],
)
def test_a_recipe_saved_in_another_encoding_gets_one_line(tmp_path, capsys, encode, expect):
    from importlib import resources

    text = "# ResNet\n" + resources.files("letterbench.recipes").joinpath("smallcnn.toml").read_text()
    (tmp_path / "mine.toml").write_bytes(encode(text))
    from letterbench.recipes import load_recipe

    if expect is None:
        assert load_recipe(str(tmp_path / "mine.toml")).model == "smallcnn"
        return
    code = main(["train", "--recipe", str(tmp_path / "mine.toml"), "--out", str(tmp_path / "r")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(err) == 1 and expect in err[0] and "save it as UTF-8" in err[0]


def _letter_folder(folder: Path, table: bytes) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    letter = np.full((40, 40), 255, np.uint8)
    letter[6:34, 17:23] = 0
    for name in ("x.png", "y.png"):
        Image.fromarray(letter).save(folder / name)
    (folder / "labels.csv").write_bytes(table)
    return folder


@pytest.mark.parametrize(
    "table, expect",
    [
        (b"file,label,label\nx.png,a,b\n", "the column 'label' appears 2 times"),
        (b"file,label\nx.png,a\ny.png,b\nx.png,c\n", "lines 2 and 4: 'x.png' is labelled both a and c"),
        (b"file;label\nx.png;a\n", "separate the columns with commas"),
        (b"file\tlabel\nx.png\ta\n", "separate the columns with commas"),
        (b"name,letter\nx.png,a\n", "found 'name', 'letter'"),
        ("file,label\nx.png,\xe9\n".encode("latin-1"), "not UTF-8 text; save it as UTF-8"),
    ],
)
def test_a_labels_file_that_would_mislabel_is_refused_naming_what_it_found(tmp_path, capsys, table, expect):
    folder = _letter_folder(tmp_path / "set", table)
    code = main(["run", "--preset", "smoke", "--real-world", str(folder), "--out", str(tmp_path / "study")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(err) == 1 and err[0].startswith("letterbench: error:") and expect in err[0], err
    assert not (tmp_path / "study").exists()


def test_a_labels_file_with_spaced_capital_headers_and_a_repeated_row_is_read(tmp_path):
    from letterbench.evaluation.real_world import load_real_world

    folder = _letter_folder(tmp_path / "set", b"File , Label\nx.png,l\ny.png,L\nx.png,l\n\n")
    with pytest.warns(UserWarning, match="line 4 repeats line 2; 'x.png' is counted once"):
        found = load_real_world(folder)
    assert len(found) == 2 and list(found.labels) == [11, 11]


@pytest.mark.parametrize(
    "damage, expect",
    [
        (lambda p, lab, r: (p[:, :10], lab, r), "not (images, 26)"),
        (lambda p, lab, r: (p, lab[:-1], r), "labels (1,)"),
        (lambda p, lab, r: (np.full_like(p, np.nan), lab, r), "not numbers from 0 to 1"),
        (lambda p, lab, r: (p[:0], lab[:0], r[:0]), "not (images, 26)"),
    ],
)
def test_damaged_real_world_readings_are_named_in_one_line(tmp_path, capsys, damage, expect):
    import sys

    fixture = Path(__file__).parent / "fixtures" / "main-run"
    sys.path.insert(0, str(fixture.parent))
    from make_main_run import tiny_data

    run = Path(shutil.copytree(fixture, tmp_path / "run"))
    folder = _letter_folder(tmp_path / "set", b"file,label\nx.png,l\ny.png,i\n")
    data = tiny_data(tmp_path / "emnist")
    assert (
        main(["evaluate", str(run), "--data-dir", str(data), "--no-plots", "--real-world", str(folder)]) == 0
    )
    with np.load(run / "real-world-train.npz") as f:
        arrays = {k: f[k] for k in f.files}
    probs, labels, readable = damage(arrays["probs"], arrays["labels"], arrays["readable"])
    np.savez(
        run / "real-world-train.npz", probs=probs, labels=labels, readable=readable, folder=arrays["folder"]
    )
    capsys.readouterr()
    assert main(["report", str(run), "--out", str(tmp_path / "report")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert (
        len(err) == 1 and err[0].startswith("letterbench: error:") and "damaged real-world readings" in err[0]
    )
    assert expect in err[0] and "real-world-train.npz" in err[0]
