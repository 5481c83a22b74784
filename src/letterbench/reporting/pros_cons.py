"""Pros and cons: a few measured, comparative sentences per model, from the report's columns."""

from __future__ import annotations

from letterbench.reporting.columns import Column
from letterbench.reporting.rows import pct

# A ratio closer to 1 than this is "about the same" and not worth a sentence.
NOTABLE_RATIO = 1.1
# A train - validation accuracy gap (in points) below which a model's fit is unremarkable.
NOTABLE_GAP_POINTS = 2.0


def _ratio_sentence(
    c: Column, ref: Column, key: str, load: str | None, better: str, worse: str
) -> tuple[str, str] | None:
    """("pro" | "con", sentence) comparing ``c`` with ``ref`` on a cost where lower is better."""
    a, b = getattr(c.cost, key), getattr(ref.cost, key)
    if not a or not b or (load and (c.under_load(load) or ref.under_load(load))):
        return None
    ratio = b / a  # > 1: c needs less
    if ratio >= NOTABLE_RATIO:
        return "pro", better.format(r=ratio, ref=ref.label)
    if ratio <= 1 / NOTABLE_RATIO:
        return "con", worse.format(r=1 / ratio, ref=ref.label)
    return None


def _accuracy_sentences(c: Column, ref: Column, top: Column) -> tuple[str, str, float]:
    d = 100 * (c.accuracy - ref.accuracy)
    both = f"({pct(c.accuracy)} vs {pct(ref.accuracy)})"
    if abs(d) < 0.005:
        return "pro", f"as accurate as {ref.label} {both}", d
    if c is top:
        return "pro", f"most accurate: {d:+.2f} points over {ref.label} {both}", d
    return "con", f"{-d:.2f} points less accurate than {ref.label} {both}", d


# The costs compared, lower is better: (cost, the load that makes it noise, the pro, the con).
COSTS = (
    (
        "flops_per_image",
        None,
        "{r:.1f}x fewer FLOPs per image than {ref} for {more_less}",
        "{r:.1f}x the FLOPs per image of {ref}",
    ),
    (
        "train_time_s",
        "train_load",
        "trains {r:.1f}x faster than {ref}",
        "takes {r:.1f}x longer to train than {ref}",
    ),
    (
        "latency_ms",
        "inference_load",
        "answers one image {r:.1f}x faster than {ref}",
        "{r:.1f}x the single-image latency of {ref}",
    ),
    (
        "peak_memory_bytes",
        None,
        "needs {r:.1f}x less memory to train than {ref}",
        "needs {r:.1f}x the training memory of {ref}",
    ),
)


def pros_cons(singles: list[Column]) -> dict[str, dict[str, list[str]]]:
    """A few measured, comparative sentences per model: each model against the most accurate one
    (the most accurate against the runner-up)."""
    out: dict[str, dict[str, list[str]]] = {c.label: {"pros": [], "cons": []} for c in singles}
    if len(singles) < 2:
        return out
    by_acc = sorted(singles, key=lambda c: -c.accuracy)
    top = by_acc[0]
    for c in singles:
        ref = by_acc[1] if c is top else top
        kind, sentence, d = _accuracy_sentences(c, ref, top)
        more_less = f"{abs(d):.1f} points {'more' if d > 0 else 'less'} accuracy"
        found = [(kind, sentence)]
        for key, load, better, worse in COSTS:
            found.append(_ratio_sentence(c, ref, key, load, better.replace("{more_less}", more_less), worse))
        for kind, sentence in filter(None, found):
            out[c.label]["pros" if kind == "pro" else "cons"].append(sentence)
    _gap_sentences(singles, out)
    return out


def _gap_sentences(singles: list[Column], out: dict[str, dict[str, list[str]]]) -> None:
    known = [c for c in singles if c.gap is not None]
    if not known:
        return
    widest = max(known, key=lambda c: abs(c.gap))
    points = 100 * widest.gap
    if abs(points) < NOTABLE_GAP_POINTS:
        return
    if points > 0:
        sentence = f"overfits most: training accuracy {points:.1f} points above validation at its best epoch"
    else:
        sentence = (
            f"validation accuracy {-points:.1f} points above training accuracy at its best epoch: "
            "augmentation and dropout make training harder than validation; not overfitting, "
            "possibly underfitting"
        )
    out[widest.label]["cons"].append(sentence)
