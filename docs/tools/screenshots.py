"""The README's pictures: the report of a study and the draw-a-letter page answering a drawn
letter, taken in headless Chromium (Playwright, Debian's chromium; the dev extra installs both).

    python docs/tools/screenshots.py --study study [--out docs/img] [--letter R]

The study is any finished one (`letterbench run --preset first` makes one in about 2 minutes on
a CPU). The page is served from the study by the real `serve` code; the letter is drawn stroke by
stroke with the mouse along its pen path in `images/strokes.py`.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import numpy as np

from letterbench.apps.predict import torch_predictor
from letterbench.apps.serve import create_app, page_title
from letterbench.apps.server import serving
from letterbench.core.runtime import Runtime
from letterbench.images.strokes import STROKES, flatten
from letterbench.runs.studydir import StudyDir

REPO = Path(__file__).resolve().parents[2]


class NoJitter:
    def __call__(self, point, scale=1.0):
        return np.asarray(point)

    def angle(self):
        return 0.0


def draw(page, letter: str) -> None:
    box = page.locator("#pad").bounding_box()
    for stroke in STROKES[letter][0]:
        points = flatten(stroke, NoJitter())
        x = box["x"] + box["width"] * (0.3 + 0.4 * points[:, 0])
        y = box["y"] + box["height"] * (0.18 + 0.55 * points[:, 1])
        page.mouse.move(float(x[0]), float(y[0]))
        page.mouse.down()
        for px, py in zip(x[1:], y[1:], strict=True):
            page.mouse.move(float(px), float(py))
        page.mouse.up()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--study", type=Path, required=True)
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "img")
    parser.add_argument("--letter", default="R")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    args.out.mkdir(parents=True, exist_ok=True)
    report = StudyDir(args.study).report_dir / "report.html"
    _, predictor = torch_predictor(args.study, None, True, Runtime.create("cpu"))
    app = create_app(predictor, page_title(args.study))
    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    with sync_playwright() as p, serving(app) as url:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 1280, "height": 760})
        page.goto(report.resolve().as_uri())
        page.screenshot(path=args.out / "report.png")
        page = browser.new_page(viewport={"width": 900, "height": 720})
        page.goto(url)
        draw(page, args.letter)
        page.locator("body[data-state=shown]").wait_for(timeout=30_000)
        page.screenshot(path=args.out / "serve.png")
        browser.close()
    print(f"wrote {args.out / 'report.png'} and {args.out / 'serve.png'}")


if __name__ == "__main__":
    main()
