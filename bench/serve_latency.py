"""Latency of `letterbench serve`: a letter drawn as the page draws it (a PNG of dark strokes on
white), posted over real HTTP (urllib) to the real app (uvicorn on a free local port), N times,
for one model and for the ensemble of all; the median and 90th percentile, from the client's side
and the server's own (Server-Timing: reading, preparing and predicting the image).

    python bench/serve_latency.py --run study [--n 30] [--device cpu] [--tta]
    python bench/serve_latency.py --untrained [--models resnet18,densenet121,xception]

`make run` produces the study in ./study. The latency does not depend on the weights: where no
study is at hand, --untrained builds the architectures with random weights instead. The issue's
goal, on a 2-core CPU: one model under 300 ms, the ensemble of ResNet-18 + DenseNet-121 +
Xception under 1 s.
"""

from __future__ import annotations

import argparse
import io
import string
import time
import urllib.request
import uuid
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from letterbench.apps.predict import Predictor, choose_runs
from letterbench.apps.serve import create_app
from letterbench.apps.server import serving
from letterbench.core.runtime import Runtime
from letterbench.evaluation.inference import Scorer, network_scorers, torch_scorers
from letterbench.images.transforms import test_time_views
from letterbench.models import create_model, model_names

GOALS_MS = {"one model": 300, "ensemble": 1000}


def drawn_letter(side: int = 360) -> bytes:
    """An "a" as the page's pad would send it: round strokes a 16th of the side wide."""
    img = Image.new("L", (side, side), 255)
    draw, width = ImageDraw.Draw(img), round(side / 16)
    for stroke in ([(0.25, 0.8), (0.5, 0.2), (0.75, 0.8)], [(0.35, 0.58), (0.65, 0.58)]):
        points = [(x * side, y * side) for x, y in stroke]
        draw.line(points, fill=17, width=width, joint="curve")
        for x, y in (points[0], points[-1]):
            draw.ellipse((x - width / 2, y - width / 2, x + width / 2, y + width / 2), fill=17)
    out = io.BytesIO()
    img.save(out, format="PNG")
    return out.getvalue()


def untrained_scorers(models: list[str], runtime: Runtime, tta: bool) -> list[Scorer]:
    """The architectures with random weights, scored as a trained run's model is (``network_scorers``)."""
    networks = [
        (
            create_model(name).eval(),
            {"name": name, "model": name, "class_names": list(string.ascii_lowercase)},
        )
        for name in models
    ]
    return network_scorers(networks, runtime, test_time_views() if tta else None)


def post(url: str, image: bytes) -> tuple[float, float]:
    """(client seconds, server milliseconds) of one answer."""
    boundary = uuid.uuid4().hex
    head = f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="drawing.png"\r\n'
    body = (head + "Content-Type: image/png\r\n\r\n").encode() + image + f"\r\n--{boundary}--\r\n".encode()
    request = urllib.request.Request(
        url + "predict", body, {"Content-Type": f"multipart/form-data; boundary={boundary}"}
    )
    start = time.perf_counter()
    with urllib.request.urlopen(request, timeout=120) as reply:
        reply.read()
        timing = reply.headers["Server-Timing"]
    return time.perf_counter() - start, float(timing.split("dur=")[1])


def measure(predictor: Predictor, image: bytes, n: int) -> dict:
    app = create_app(predictor, "letterbench: serve latency")  # loads nothing more: the models are in memory
    with serving(app) as url:
        for _ in range(2):  # the first answers of a fresh server allocate
            post(url, image)
        times = [post(url, image) for _ in range(n)]
    client = np.array([t for t, _ in times]) * 1000
    server = np.array([s for _, s in times])
    return {
        "median": float(np.median(client)),
        "p90": float(np.percentile(client, 90)),
        "server": float(np.median(server)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--run", type=Path, help="a study directory (all its models), or a run directory")
    source.add_argument("--untrained", action="store_true", help="random weights (latency only)")
    parser.add_argument("--models", default=",".join(model_names()), help="with --untrained")
    parser.add_argument("--n", type=int, default=30, help="answers timed per setting (default 30)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--tta", action="store_true", help="5 test-time views per image")
    args = parser.parse_args()

    runtime = Runtime.create(args.device)
    if args.untrained:
        scorers = untrained_scorers(args.models.split(","), runtime, args.tta)
    else:
        scorers = torch_scorers(choose_runs(args.run, None, ensemble=True), runtime, tta=args.tta)
    first = scorers[0].model
    settings = {"one model": Predictor([s for s in scorers if s.model == first])}
    if len({s.model for s in scorers}) > 1:
        settings["ensemble"] = Predictor(scorers)
    image = drawn_letter()
    print(
        f"{runtime.name}, torch {torch.__version__}; {args.n} answers per setting, a drawn letter over HTTP"
    )
    print(f"{'setting':<10} {'models':<40} {'median ms':>10} {'p90 ms':>8} {'server ms':>10} {'goal':>7}")
    for setting, predictor in settings.items():
        result = measure(predictor, image, args.n)
        goal = GOALS_MS[setting]
        verdict = "met" if result["p90"] < goal else ("median only" if result["median"] < goal else "missed")
        names = ", ".join(predictor.models) + (" +TTA" if args.tta else "")
        print(
            f"{setting:<10} {names:<40} {result['median']:>10.0f} {result['p90']:>8.0f} "
            f"{result['server']:>10.0f} {f'<{goal}':>7} {verdict}"
        )


if __name__ == "__main__":
    main()
