"""`letterbench run` end to end on the real partial data, and `letterbench predict` on drawn letters."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import letters_folder
from PIL import Image

from letterbench.cli.main import main
from letterbench.models import display_name
from letterbench.runs.rundir import RunDir


def test_run_smoke_end_to_end_then_resumes_without_retraining(real_data_dir, tmp_path, capsys):
    out = tmp_path / "study"
    args = ["run", "--preset", "smoke", "--data-dir", str(real_data_dir), "--out", str(out), "--quiet"]
    assert main(args) == 0
    first = capsys.readouterr().out
    assert first.splitlines()[0] == "preset smoke (as asked); it takes about 20 seconds on a 2-core CPU"
    assert "model" in first and "accuracy" in first and "report:" in first
    assert "recommendation: none: these models are not yet useful" in first  # seconds of training
    summary = first[first.index("\nmodel ") :]  # the table, the recommendation, the notes, the report
    assert max(len(line) for line in summary.splitlines() if not line.startswith("report: ")) <= 100
    assert "see the report" in summary and "note:" not in summary
    totals = [line for line in first.splitlines() if line.startswith("study: ")]  # the running total
    assert [t.split(" so far;")[0].rsplit(" in ", 1)[0] for t in totals] == [
        "study: 1 of 3 models done",
        "study: 2 of 3 models done",
    ]
    assert totals[0].endswith("next DenseNet-121, 2 models to go") and totals[1].endswith(
        "next Xception, 1 model to go"
    )
    for model in ("resnet18", "densenet121", "xception"):
        assert json.loads((out / "runs" / model / "progress.json").read_text())["status"] == "finished"
    page = (out / "report" / "report.html").read_text()
    summary = json.loads((out / "report" / "summary.json").read_text())
    assert "ResNet-18" in page and "DenseNet-121" in page and "Xception fine-tune" in page
    assert summary["columns"][-1] == ensemble_label(summary) and ensemble_label(summary) in page
    assert all(row["best"] == [] for row in summary["rows"])  # every model at chance: none is "best"
    assert "Data: PARTIAL copy" in page and "Tested on a stratified subset of the test set" in page
    assert "Not yet useful:" in page and "Recommendation:" not in page
    stamps = {
        m: (out / "runs" / m / "checkpoints" / "last.pt").stat().st_mtime_ns for m in ("resnet18", "xception")
    }

    assert main(args) == 0
    second = capsys.readouterr().out
    assert second.count("finished earlier, skipped") == 3 and "study: " not in second  # no total of skips
    assert stamps == {m: (out / "runs" / m / "checkpoints" / "last.pt").stat().st_mtime_ns for m in stamps}


def test_run_resumes_an_interrupted_second_seed_and_reports_mean_and_spread(real_data_dir, tmp_path, capsys):
    """A real interruption of a study with --seeds 2: killed (-9) while the second seed of Xception
    trains its second phase, run again, it resumes that seed (the first one is skipped) and must end
    with the weights and history of a study that was never interrupted. The report shows the model
    once, as the mean ± sd of its two seeds."""
    from helpers import cli_process, kill_after_epochs

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
    assert summary["columns"] == ["ResNet-18", "timm:resnet10t", ensemble_label(summary)]
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
    assert summary["columns"] == ["ResNet-18", "timm:resnet10t", ensemble_label(summary)]
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
    if len(members) > 1:
        assert said.startswith("answer: the ensemble of ") and said.count("+") == len(members) - 1
    else:  # the study chose one model: it is named as itself, not as an ensemble of one
        assert said == f"answer: {display_name(members[0])} alone (the study's choice on held-out images)"
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


def ensemble_label(summary: dict) -> str:
    """The report's last column: "Ensemble" for a mean of several models, else the one model chosen."""
    members = summary["ensemble"]["members"]
    return "Ensemble" if len(members) > 1 else f"{members[0]} (chosen)"


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


def test_a_rerun_reads_a_real_world_folder_again_when_what_it_holds_changed(tiny_letters, tmp_path, capsys):
    """The same --real-world path, its labels changed (an image moved to another letter's folder):
    the rerun reads it again instead of keeping the old figures; unchanged, it is skipped."""
    folder = letters_folder(tmp_path / "rw", per_letter=1)
    out = tmp_path / "study"
    args = ["run", "--preset", "smoke", "--models", "timm:test_resnet", "--data-dir", str(tiny_letters)]
    args += ["--real-world", str(folder), "--out", str(out), "--quiet"]
    assert main(args) == 0
    run = RunDir(out / "runs" / "timm-test_resnet")
    first = run.load_real_world(run.phases()[-1])
    assert main(args) == 0 and "finished earlier, skipped" in capsys.readouterr().out
    (folder / "a").rename(folder / "a-moved")  # the a's picture now filed under b
    moved = next((folder / "a-moved").iterdir())
    moved.rename(folder / "b" / f"was-a-{moved.name}")
    (folder / "a-moved").rmdir()
    (folder / "a").mkdir()
    (folder / "c" / next((folder / "c").iterdir()).name).rename(folder / "a" / "was-c.png")
    assert main(args) == 0
    assert "finished earlier, skipped" not in capsys.readouterr().out
    again = run.load_real_world(run.phases()[-1])
    assert again.fingerprint != first.fingerprint and list(again.labels) != list(first.labels)


def test_a_run_evaluated_on_its_own_is_tested_again_on_the_studys_images(tiny_letters, tmp_path, capsys):
    """`evaluate` of one of a study's runs re-tests it on the whole test set; the study's rerun
    evaluates it on the study's test images again, and the report compares like with like."""
    out = tmp_path / "study"
    args = [
        "run",
        "--preset",
        "smoke",
        "--models",
        "timm:test_resnet,smallcnn",
        "--data-dir",
        str(tiny_letters),
    ]
    args += ["--out", str(out), "--quiet"]
    assert main(args) == 0
    run = out / "runs" / "smallcnn"
    assert main(["evaluate", str(run), "--no-plots", "--data-dir", str(tiny_letters)]) == 0
    assert RunDir(run).read_metrics().run.data.test_per_class is None
    capsys.readouterr()
    assert main(args) == 0
    said = capsys.readouterr().out
    assert (
        "smallcnn: evaluated on another test set since" in said
        and "timm:test_resnet: finished earlier" in said
    )
    assert RunDir(run).read_metrics().run.data.test_per_class == 3


def test_a_rerun_with_other_models_stopped_early_leaves_the_finished_runs_in_use(
    tiny_letters, tmp_path, monkeypatch
):
    """A rerun with other --models, interrupted before its model trained: study.json still names
    the models that have finished runs, so report (and predict, serve) find them; once the rerun
    ends, the study is the models it asked for."""
    import letterbench.study.runner as runner

    out = tmp_path / "study"
    common = ["--preset", "smoke", "--data-dir", str(tiny_letters), "--out", str(out), "--quiet"]
    assert main(["run", "--models", "timm:test_resnet", *common]) == 0

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt  # Ctrl-C as the new model's training starts

    with monkeypatch.context() as patch:
        patch.setattr(runner, "train", interrupted)
        assert main(["run", "--models", "smallcnn", *common]) == 130
    assert json.loads((out / "study.json").read_text())["models"] == ["timm:test_resnet"]
    assert main(["report", str(out), "--out", str(tmp_path / "report")]) == 0
    assert main(["run", "--models", "smallcnn", *common]) == 0
    assert json.loads((out / "study.json").read_text())["models"] == ["smallcnn"]
