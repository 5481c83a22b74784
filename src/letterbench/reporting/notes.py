"""The notes at the top of a report: what a reader must know before comparing its numbers
(different budgets, test subsets, training subsets, substituted phases, partial data)."""

from __future__ import annotations

from letterbench.reporting.columns import Column, RunResult


def _training_images(r: RunResult) -> tuple:
    """What decides which images a run trained on: the data, the split, the subset, the seed and
    the validation fraction."""
    data = r.info.data
    return (
        tuple(sorted((data.sha256 or {}).items())),
        data.split,
        data.train_per_class,
        r.info.seed,
        r.info.recipe.val_fraction,
    )


def _epochs(n: int) -> str:
    return f"{n} epoch" + ("" if n == 1 else "s")


def _budget_warning(results: list[RunResult]) -> str | None:
    """Whether the models had equal training budgets (the same images, the same epochs), said
    plainly. Seeds are compared seed by seed: each seed draws its own subset and split, the same
    for every model."""
    if len({r.info.model for r in results}) < 2:
        return None  # one model (its seeds): nothing to compare budgets between
    epochs = {r.name: r.info.recipe.epochs for r in results}
    by_seed: dict[object, list[RunResult]] = {}
    for r in results:
        by_seed.setdefault(r.info.seed, []).append(r)
    same_images = all(len({_training_images(r) for r in group}) == 1 for group in by_seed.values())
    seeds = "" if len(by_seed) == 1 else f" (seed by seed, {len(by_seed)} seeds)"
    if same_images and len(set(epochs.values())) == 1:
        return (
            f"Equal budget: every model trained on the same {results[0].info.data.train_used:,} images"
            f"{seeds} for at most {_epochs(epochs[results[0].name])} and was tested on the same "
            f"{results[0].info.data.test_used:,} images."
        )
    return (
        "Unequal budgets, so the comparison mixes model and budget: "
        + ("the same training images, " if same_images else "different training images (")
        + ", ".join(
            f"{r.name} {r.info.data.train_used:,} images, at most {_epochs(epochs[r.name])}" for r in results
        )
        + ("." if same_images else ").")
    )


def _per_run(texts: dict[str, str], runs: int) -> str:
    """``text, every model`` where all runs say the same, else ``name text, name text``."""
    if len(texts) == runs > 1 and len(set(texts.values())) == 1:
        return next(iter(texts.values())) + ", the same for every model"
    return ", ".join(f"{name} {text}" for name, text in texts.items())


def report_notes(results: list[RunResult], columns: list[Column]) -> list[str]:
    out = []
    partial = [r for r in results if r.info.data.partial]
    if partial:
        out.append("Data: " + partial[0].info.data.verdict + ".")
    tested = {
        r.name: f"{r.info.data.test_used:,} images (at most {r.info.data.test_per_class} per class)"
        for r in results
        if r.info.data.test_per_class
    }
    if tested:
        out.append("Tested on a stratified subset of the test set: " + _per_run(tested, len(results)) + ".")
    subsets = {
        r.name: f"{r.info.data.train_per_class} images per class"
        for r in results
        if r.info.data.train_per_class
    }
    if subsets:
        out.append("Trained on a stratified subset: " + _per_run(subsets, len(results)) + ".")
    budget = _budget_warning(results)
    if budget:
        out.append(budget)
    loaded = [
        c.label for c in columns if c.run and (c.under_load("train_load") or c.under_load("inference_load"))
    ]
    if loaded:
        out.append(
            "† Speed measured while other processes loaded the CPU (" + ", ".join(loaded) + "): "
            "those figures are noise and take no ★; measure again on an idle machine."
        )
    for r in results:
        out += [f"{r.name}: {note}" for note in r.info.notes]
    return out
