"""`letterbench run`: the whole study from one command, resumable.

A study directory (``studydir.StudyDir``) holds the study file, one run directory per model and the
report. Running the same command again skips finished models, resumes an interrupted one from its
checkpoint, and rebuilds the report.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from letterbench.core import timing
from letterbench.core.errors import LetterbenchError
from letterbench.core.progress import duration
from letterbench.core.runtime import Runtime
from letterbench.data.ensure import ensure_data
from letterbench.evaluation.ensemble import choose_ensemble_or_all
from letterbench.evaluation.evaluate import evaluate_run
from letterbench.evaluation.real_world import RealWorldSet, load_real_world
from letterbench.models import display_name
from letterbench.recipes import Recipe, resolve_recipe
from letterbench.reporting.plots import plot_timed
from letterbench.reporting.report import build_report
from letterbench.runs.records import EnsembleChoice, StudyFile
from letterbench.runs.rundir import RunDir
from letterbench.runs.studydir import RunKey, StudyDir
from letterbench.study.presets import CPU_TIMED, PRESETS, Preset
from letterbench.study.together import Job, run_together
from letterbench.training.run import TrainOptions, train


def study_recipe(model: str, preset: Preset) -> Recipe:
    """The model's default recipe as the preset adjusts it."""
    return resolve_recipe(
        model, total_epochs=preset.total_epochs, overrides=preset.overrides, large_batch=preset.large_batch
    )


def choose_preset(name: str | None, runtime: Runtime) -> tuple[Preset, str]:
    if name:
        return PRESETS[name], f"preset {name} (as asked)"
    if runtime.is_cuda:
        return PRESETS["paper"], f"preset paper: training on a GPU ({runtime.name})"
    return PRESETS[
        "quick"
    ], f"preset quick: no GPU in use ({runtime.name}), and the paper preset takes hours on a CPU"


def estimate_minutes(recipes: list[Recipe], train_images: int, runtime: Runtime) -> float:
    """Measured estimate of training time: a few timed engine steps of each recipe, times the
    images it will train on."""
    from letterbench.training.throughput import measure_train_throughput

    total = 0.0
    for recipe in recipes:
        rate = measure_train_throughput(recipe, runtime, steps=3)
        total += recipe.epochs * train_images * (1 - recipe.val_fraction) / rate
    return total / 60


@dataclass
class StudyPlan:
    preset: Preset
    recipes: dict[str, Recipe]
    split: str = "letters"
    seed: int = 0
    seeds: int = 1  # each model trains with seeds seed, seed + 1, ...
    real_world: RealWorldSet | None = None  # a folder of labelled letters every model also reads
    keep_optimizer: bool = False  # finished runs keep the optimiser's state in their last checkpoint
    checkpoint_every: float = 0.0  # seconds between checkpoints (0: every epoch)
    together: int = 1  # how many of a model's seeds train at once, each in a process (``together``)

    def runs(self, study: StudyDir) -> list[tuple[str, int, RunDir]]:
        """(model, seed, run directory) of every run, model by model: the first seed in
        ``runs/<model>``, the others in ``runs/<model>-seed<S>``."""
        return [
            (m, self.seed + k, study.run(m, None if k == 0 else self.seed + k))
            for m in self.recipes
            for k in range(self.seeds)
        ]


def _real_world_set(folder: Path | None, split: str = "letters") -> RealWorldSet | None:
    """The ``--real-world`` folder, read before anything trains. Letters only."""
    if folder is not None and split != "letters":
        raise LetterbenchError(f"--real-world holds letters a..z: it goes with --split letters, not {split}")
    if folder is None:
        return None
    found = load_real_world(folder)
    print(f"real-world letters: {len(found):,} images in {folder}, read by every model")
    return found


def _check_previous(study: StudyDir, plan: StudyPlan) -> None:
    if not study.exists():
        return
    previous = study.read()
    if (previous.preset, previous.seed, previous.split) != (plan.preset.name, plan.seed, plan.split):
        raise LetterbenchError(
            f"{study.path} holds a study with preset {previous.preset}, seed {previous.seed}, split "
            f"{previous.split}; continue it with the same options, or pass another --out"
        )


def _train_and_evaluate(
    name: str, model: str, run: RunDir, plan: StudyPlan, root: Path, options: TrainOptions, runtime: Runtime
) -> None:
    """Train (or resume) one run, evaluate it and draw its plots; in this process, or in a child of
    its own (``together``), which passes its own runtime last."""
    start = time.perf_counter()
    if run.status() != "finished":
        resume = run.has_checkpoint("last")
        print(
            f"{name}: {'resuming' if resume else 'training'} ({plan.recipes[model].name} recipe, preset {plan.preset.name})"
        )
        train(None if resume else plan.recipes[model], run, runtime, options, resume=resume)
    with run.lock():
        evaluation = evaluate_run(
            run,
            runtime,
            root,
            test_per_class=plan.preset.test_per_class,
            speed_batch=plan.preset.speed_batch,
            real_world=plan.real_world,
        )
        plot_timed(run, evaluation)
    print(f"{name}: done in {(time.perf_counter() - start) / 60:.1f} min")


@dataclass(frozen=True)
class StudyOptions:
    """What `letterbench run` is asked for, beyond where it writes and on what it runs."""

    preset: str | None = None  # default: paper on a GPU, quick elsewhere (``choose_preset``)
    models: list[str] | None = None  # default: the preset's
    data_dir: Path | None = None
    seed: int = 0  # the first seed
    split: str = "letters"
    progress: bool = True
    tensorboard: bool = False
    seeds: int | None = None  # per model; default: the study's recorded count, else the preset's
    real_world: Path | None = None  # a folder of labelled letters every model also reads
    keep_optimizer: bool = False
    checkpoint_every: float | None = None  # seconds; default: the preset's
    seeds_together: int | None = None  # default: all of a model's seeds on a GPU, one at a time elsewhere


def run_study(out: Path, runtime: Runtime, options: StudyOptions = StudyOptions()) -> dict:
    """Train, evaluate and compare the models ``options`` name into ``out`` (``StudyOptions``)."""
    if runtime.dist.enabled:
        raise LetterbenchError(
            "letterbench run trains its models one after another in one process; under torchrun, "
            "train each model with `torchrun ... -m letterbench train` and compare them with `letterbench report`"
        )
    plan = _plan(out, runtime, options)
    study = StudyDir(out)
    foreign = study.foreign_files()
    if foreign:
        raise LetterbenchError(
            f"{out} is neither empty nor a letterbench study (it holds {', '.join(foreign[:5])}); "
            "pass a new or empty folder as --out (nothing was written)"
        )
    with study.lock():
        return _run_locked(study, plan, runtime, options.data_dir, options.progress, options.tensorboard)


def _plan(out: Path, runtime: Runtime, options: StudyOptions) -> StudyPlan:
    """The study's plan: the preset, every recipe resolved (an unknown model is refused before
    anything is written), the seeds, the real-world set read."""
    preset, why = choose_preset(options.preset, runtime)
    print(why + (f"; it takes {preset.takes} on a 2-core CPU" if preset.name in CPU_TIMED else ""))
    models = options.models or list(preset.models)
    twice = sorted({m for m in models if models.count(m) > 1})
    if twice:
        raise LetterbenchError(f"--models names {', '.join(twice)} twice; name each model once")
    recorded = StudyDir(out).read().seeds if StudyDir(out).exists() else None
    recorded = recorded if recorded is not None and recorded > 0 else None
    seeds = options.seeds or recorded or preset.seeds  # a rerun keeps the study's seeds unless --seeds says
    print(f"seeds: {seeds} per model" + ("" if seeds > 1 else " (--seeds N trains each model N times)"))
    plan = StudyPlan(preset, {m: study_recipe(m, preset) for m in models}, options.split, options.seed, seeds)
    plan.real_world = _real_world_set(options.real_world, options.split)
    plan.keep_optimizer = options.keep_optimizer
    every = options.checkpoint_every
    plan.checkpoint_every = preset.checkpoint_every if every is None else every
    plan.together = options.seeds_together or (seeds if runtime.is_cuda else 1)
    return plan


def _run_locked(
    study: StudyDir,
    plan: StudyPlan,
    runtime: Runtime,
    data_dir: Path | None,
    progress: bool,
    tensorboard: bool,
) -> dict:
    _check_previous(study, plan)
    _refuse_foreign_files(study, plan)
    preset, split, seed, models = plan.preset, plan.split, plan.seed, list(plan.recipes)
    with timing.part("data loading"):
        root = ensure_data(data_dir, split)
    _say_the_estimate(plan, root, runtime)
    record = dict(
        preset=preset.name, preset_settings=asdict(preset), seed=seed, seeds=plan.seeds, split=split
    )
    before = study.read().models if study.exists() else []  # what predict, serve and report read meanwhile
    study.write(StudyFile.model_validate({**record, "models": before, "data_dir": str(root.resolve())}))
    options = TrainOptions(
        root,
        split,
        seed,
        preset.train_per_class,
        progress,
        tensorboard=tensorboard,
        keep_optimizer=plan.keep_optimizer,
        checkpoint_every=plan.checkpoint_every,
    )
    started = time.perf_counter()
    for done, model in enumerate(models, 1):
        worked = _train_model(model, study, plan, root, runtime, options)
        finished = models if done == len(models) else list(dict.fromkeys([*before, *models[:done]]))
        study.write(study.read().model_copy(update={"models": finished}))
        if worked and done < len(models):  # (not after a model finished earlier and skipped)
            print(_so_far(models, done, time.perf_counter() - started), flush=True)
    runs = [run for _, _, run in plan.runs(study)]
    with timing.part("ensemble choice"):
        choice = choose_ensemble_or_all(runs, runtime, root)
    study.write_ensemble(choice or EnsembleChoice(members=models, images=0, held_out="a study of one model"))
    if choice is not None:
        print(f"ensemble: {', '.join(choice.members or models)}: {choice.describe()}")
    with timing.part("report"):
        summary = build_report([run.path for run in runs], study.report_dir, choice)
    spent = timing.current()
    if spent is not None:  # this command's wall clock, part by part, run by run
        study.write(study.read().model_copy(update={"time_budget": spent.record()}))
    return summary


def _so_far(models: list[str], done: int, seconds: float) -> str:
    """The study's running total, said before it starts the next model."""
    left = len(models) - done
    return (
        f"study: {done} of {len(models)} models done in {duration(seconds)} so far; "
        f"next {display_name(models[done])}, {left} model{'s' * (left != 1)} to go"
    )


def _train_model(
    model: str, study: StudyDir, plan: StudyPlan, root: Path, runtime: Runtime, options: TrainOptions
) -> bool:
    """Train and evaluate the model's seeds that are not done: one after another, or up to
    ``plan.together`` at once, each in a process of its own. Whether any was not done."""
    jobs = []
    for _, model_seed, run in (r for r in plan.runs(study) if r[0] == model):
        name = str(RunKey(model, model_seed, seeded=plan.seeds > 1))
        if _is_done(run, plan, name):
            print(f"{name}: finished earlier, skipped")
        else:
            jobs.append(
                Job(
                    name,
                    _train_and_evaluate,
                    (name, model, run, plan, root, replace(options, seed=model_seed)),
                )
            )
    if plan.together > 1 and len(jobs) > 1:
        print(f"{display_name(model)}: {len(jobs)} seeds at once, {min(plan.together, len(jobs))} processes")
        with timing.scope(f"{model} (seeds together)"), timing.part("seeds together"):
            run_together(jobs, plan.together, runtime)
        return True
    for job in jobs:
        job.work(*job.args, runtime)
    return bool(jobs)


def _is_done(run: RunDir, plan: StudyPlan, name: str) -> bool:
    """Whether a run has nothing left to do in this study: complete, on the study's real-world
    folder as it is now, and tested on the study's test images (an `evaluate` of its own may have
    re-tested it on others since: then it is evaluated again)."""
    found = plan.real_world
    if not run.is_complete(None if found is None else (str(found.folder), found.fingerprint)):
        return False
    if run.read_metrics().run.data.test_per_class != plan.preset.test_per_class:
        print(f"{name}: evaluated on another test set since; evaluating it on the study's again")
        return False
    return True


def _refuse_foreign_files(study: StudyDir, plan: StudyPlan) -> None:
    """Refuse now, not after the models before it have trained, a run folder with others' files."""
    for _, _, run in plan.runs(study):
        foreign = run.foreign_files()
        if foreign:
            raise LetterbenchError(
                f"{run} holds files letterbench did not write ({', '.join(foreign[:5])}); "
                "move them elsewhere or choose another --out (nothing was changed)"
            )


def _say_the_estimate(plan: StudyPlan, root: Path, runtime: Runtime) -> None:
    """A GPU preset on a CPU: how long it would take here, measured, before it starts."""
    if plan.preset.name not in ("paper", "fast") or runtime.is_cuda:
        return
    from letterbench.data.emnist import load_emnist

    images = len(load_emnist(root, plan.split).train_labels)
    minutes = estimate_minutes(list(plan.recipes.values()), images, runtime) * plan.seeds
    print(
        f"the {plan.preset.name} preset on this machine: about {minutes / 60:.1f} hours of training for "
        f"{plan.seeds} seed(s) per model (measured estimate); Ctrl-C stops it, the same command resumes it"
    )
