"""The notes at the top of a report: what a reader must know before comparing its numbers
(different budgets, test subsets, test images spread unevenly over the classes, training subsets,
substituted phases, partial data)."""

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


THIN_SHARE = 0.1  # a class with fewer test images than this share of the largest class's is thin
GROUP_RATIO = 1.5  # classes side by side whose test counts are within this factor (or 1) are told as one
MOST_GROUPS = 6  # beyond this many groups, the spread is told as its smallest and largest


def _span(names: list[str]) -> str:
    """Classes side by side as one span: ``t..z``, ``o, p`` or ``m``."""
    return f"{names[0]}..{names[-1]}" if len(names) > 2 else ", ".join(names)


def _spans(counts: dict[str, int], keep) -> str:
    """The classes (in class order) whose count ``keep`` accepts, as spans: ``o, p, s..z``."""
    runs: list[list[str]] = [[]]
    for name, n in counts.items():
        if keep(n):
            runs[-1].append(name)
        elif runs[-1]:
            runs.append([])
    return ", ".join(_span(run) for run in runs if run)


def _images(lo: int, hi: int) -> str:
    return f"{lo:,}" if lo == hi else f"{lo:,} to {hi:,}"


def _spread(counts: dict[str, int]) -> str:
    """How the test images are spread: ``800 for each of a..l, 438 for m, 1 for each of t..z``;
    classes side by side within ``GROUP_RATIO`` (or one image) of each other told together."""
    groups: list[list[tuple[str, int]]] = []
    for name, n in counts.items():
        ns = [c for _, c in groups[-1]] + [n] if groups else []
        if ns and (max(ns) <= GROUP_RATIO * min(ns) or max(ns) - min(ns) <= 1):
            groups[-1].append((name, n))
        else:
            groups.append([(name, n)])
    if len(groups) > MOST_GROUPS:
        lo, hi = min(counts.values()), max(counts.values())
        at = {n: _spans(counts, lambda c, n=n: c == n) for n in (lo, hi)}
        return f"between {lo:,} ({at[lo]}) and {hi:,} ({at[hi]}) images a class"
    told = []
    for group in groups:
        names, ns = [name for name, _ in group], [n for _, n in group]
        each = "each of " if len(names) > 1 else ""
        told.append(f"{_images(min(ns), max(ns))} for {each}{_span(names)}")
    return ", ".join(told)


def _test_counts(r: RunResult) -> dict[str, int]:
    """The run's test images per class, in class order (empty where its metrics hold none)."""
    per_class = r.metrics.stages[-1].per_class or {}
    return {name: per_class[name].support for name in r.metrics.class_names if name in per_class}


def _uneven_warning(counts: dict[str, int], whose: str) -> str | None:
    """Where some class has fewer than ``THIN_SHARE`` of the largest class's test images: how
    the test images are spread and which figures that makes unreliable; else None."""
    largest = max(counts.values(), default=0)
    thin = {name: n for name, n in counts.items() if n < THIN_SHARE * largest}
    if len(counts) < 2 or not thin:
        return None
    names = _spans(counts, lambda n: n < THIN_SHARE * largest)
    few = _images(min(thin.values()), max(thin.values()))
    rest = "have no test image" if few == "0" else f"rest on {few} test image{'' if few == '1' else 's'} each"
    return (
        f"The test images are spread unevenly over the classes{whose}: {_spread(counts)}. Macro "
        f"precision, recall, F1 and ROC AUC weigh every class the same, so {names} (fewer than a tenth "
        f"of the largest class's {largest:,} images) weigh as much as the full classes: those figures "
        f"are unreliable here; read accuracy and weighted F1 instead. The per-class figures of {names} "
        f"{rest}."
    )


def _uneven_warnings(results: list[RunResult]) -> list[str]:
    """``_uneven_warning`` of the runs' test sets: one, where every run was tested on the same."""
    by_counts: dict[tuple, list[str]] = {}
    for r in results:
        counts = _test_counts(r)
        if counts:
            by_counts.setdefault(tuple(counts.items()), []).append(r.name)
    whose = {
        key: "" if len(by_counts) == 1 else f" of {', '.join(names)}" for key, names in by_counts.items()
    }
    return [w for key in by_counts if (w := _uneven_warning(dict(key), whose[key]))]


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
    out += _uneven_warnings(results)
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
