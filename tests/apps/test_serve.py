"""`letterbench serve`: the page in headless Chromium (a letter drawn stroke by stroke, a photo
uploaded, refusals shown), the same answers and refusals over plain HTTP, and the command."""

from __future__ import annotations

import base64
import dataclasses
import io
import json
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw, ImageFilter

from letterbench.apps.predict import Predictor, choose_runs
from letterbench.apps.serve import create_app, page_title
from letterbench.apps.server import serving
from letterbench.cli.main import main
from letterbench.core.runtime import Runtime
from letterbench.evaluation.inference import torch_scorers
from letterbench.images.letters import prepare_image

LIMIT = 2**20  # the test servers' upload limit: 1 MB


def _arc(cx, cy, r, a0, a1, n=12):
    return [
        (
            cx + r * math.cos(math.radians(a0 + (a1 - a0) * i / n)),
            cy - r * math.sin(math.radians(a0 + (a1 - a0) * i / n)),
        )
        for i in range(n + 1)
    ]


_BOWL = [(0, 0), (0.6, 0), (0.85, 0.1), (0.85, 0.4), (0.6, 0.5), (0, 0.5)]
# Capital letters as pen strokes in a unit box (x right, y down): what the browser test draws.
STROKES = {
    "a": [[(0, 1), (0.5, 0), (1, 1)], [(0.2, 0.6), (0.8, 0.6)]],
    "b": [
        [(0, 0), (0, 1)],
        [(0, 0), (0.6, 0), (0.8, 0.1), (0.8, 0.35), (0.6, 0.45), (0, 0.45)],
        [(0.6, 0.45), (0.9, 0.55), (0.9, 0.9), (0.7, 1), (0, 1)],
    ],
    "c": [_arc(0.5, 0.5, 0.5, 45, 315)],
    "d": [[(0, 0), (0, 1)], [(0, 0), (0.5, 0), (0.9, 0.25), (1, 0.5), (0.9, 0.75), (0.5, 1), (0, 1)]],
    "e": [[(1, 0), (0, 0), (0, 1), (1, 1)], [(0, 0.5), (0.7, 0.5)]],
    "f": [[(1, 0), (0, 0), (0, 1)], [(0, 0.5), (0.7, 0.5)]],
    "g": [_arc(0.5, 0.5, 0.5, 45, 330), [(0.55, 0.55), (1, 0.55), (1, 1)]],
    "h": [[(0, 0), (0, 1)], [(1, 0), (1, 1)], [(0, 0.5), (1, 0.5)]],
    "i": [[(0.5, 0), (0.5, 1)], [(0.2, 0), (0.8, 0)], [(0.2, 1), (0.8, 1)]],
    "j": [[(0.2, 0), (0.9, 0)], [(0.7, 0), (0.7, 0.8), (0.5, 1), (0.2, 0.9), (0.1, 0.7)]],
    "k": [[(0, 0), (0, 1)], [(1, 0), (0, 0.55)], [(0.3, 0.4), (1, 1)]],
    "l": [[(0, 0), (0, 1), (0.8, 1)]],
    "m": [[(0, 1), (0, 0), (0.5, 0.6), (1, 0), (1, 1)]],
    "n": [[(0, 1), (0, 0), (1, 1), (1, 0)]],
    "o": [_arc(0.5, 0.5, 0.5, 0, 360, 16)],
    "p": [[(0, 1), *_BOWL]],
    "q": [_arc(0.5, 0.5, 0.5, 0, 360, 16), [(0.6, 0.7), (1, 1.05)]],
    "r": [[(0, 1), *_BOWL], [(0.4, 0.5), (1, 1)]],
    "s": [
        [
            (0.9, 0.1),
            (0.6, 0),
            (0.2, 0),
            (0, 0.2),
            (0.2, 0.45),
            (0.8, 0.55),
            (1, 0.8),
            (0.8, 1),
            (0.3, 1),
            (0, 0.9),
        ]
    ],
    "t": [[(0, 0), (1, 0)], [(0.5, 0), (0.5, 1)]],
    "u": [[(0, 0), (0, 0.75), (0.2, 1), (0.8, 1), (1, 0.75), (1, 0)]],
    "v": [[(0, 0), (0.5, 1), (1, 0)]],
    "w": [[(0, 0), (0.25, 1), (0.5, 0.4), (0.75, 1), (1, 0)]],
    "x": [[(0, 0), (1, 1)], [(1, 0), (0, 1)]],
    "y": [[(0, 0), (0.5, 0.5), (1, 0)], [(0.5, 0.5), (0.5, 1)]],
    "z": [[(0, 0), (1, 0), (0, 1), (1, 1)]],
}


def place(letter: str, rng: np.random.Generator | None = None) -> list[list[tuple[float, float]]]:
    """The letter's strokes on a unit canvas: centred, or (with ``rng``) moved, sized, turned, wobbly."""
    if rng is None:
        h, w, x0, y0, angle, wobble = 0.6, 0.45, 0.27, 0.2, 0.0, 0.0
    else:
        h = rng.uniform(0.4, 0.75)
        w = h * rng.uniform(0.5, 1.0)
        x0, y0 = rng.uniform(0.05, 0.95 - w), rng.uniform(0.05, 0.95 - h)
        angle, wobble = rng.uniform(-0.15, 0.15), 0.03
    c, s = math.cos(angle), math.sin(angle)
    out = []
    for stroke in STROKES[letter]:
        points = []
        for x, y in stroke:
            if rng is not None:
                x, y = x + rng.normal(0, wobble), y + rng.normal(0, wobble)
            x, y = (x - 0.5) * c - (y - 0.5) * s + 0.5, (x - 0.5) * s + (y - 0.5) * c + 0.5
            points.append((x0 + x * w, y0 + y * h))
        out.append(points)
    return out


def render(
    strokes, size: int = 280, width: float | None = None, paper: int = 255, ink: int = 17
) -> Image.Image:
    """Strokes drawn as the page draws them: round caps and joins, line width a 16th of the side."""
    width = width or size / 16
    img = Image.new("L", (size, size), paper)
    draw = ImageDraw.Draw(img)
    for stroke in strokes:
        points = [(x * size, y * size) for x, y in stroke]
        draw.line(points, fill=ink, width=round(width), joint="curve")
        for x, y in (points[0], points[-1]):
            draw.ellipse((x - width / 2, y - width / 2, x + width / 2, y + width / 2), fill=ink)
    return img


def png(img: Image.Image, fmt: str = "PNG") -> bytes:
    out = io.BytesIO()
    img.save(out, format=fmt)
    return out.getvalue()


@pytest.fixture(scope="module")
def stroke_run(tmp_path_factory):
    """timm's tiny test ResNet trained here (seconds) on letters drawn as pen strokes, moved, sized
    and turned: it recognises letters drawn the way the browser test draws them. One thread: a
    network this small gains nothing from two, and two stall whenever another process holds a core."""
    from conftest import write_emnist

    threads = torch.get_num_threads()
    torch.set_num_threads(1)

    root = tmp_path_factory.mktemp("serve")
    rng = np.random.default_rng(0)
    images, labels = [], []
    for k, letter in enumerate(sorted(STROKES)):
        for _ in range(8):
            img = render(place(letter, rng), size=96, width=96 / rng.uniform(12, 22))
            images.append(prepare_image(img))
            labels.append(k)
    images, labels = np.stack(images), np.array(labels, np.uint8)
    write_emnist(root / "data", (images, labels), (images[::4], labels[::4]))
    args = ["--quiet", "--data-dir", str(root / "data"), "--out", str(root / "run"), "--pretrained", "false"]
    train = ["train", "--model", "timm:test_resnet", "--epochs", "10", "--batch-size", "32", *args]
    try:
        assert main([*train, "--set", "val_fraction=0.125"]) == 0
        yield root / "run"
    finally:
        torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def servers(stroke_run):
    """Two real servers: the model alone; and an ensemble of it with its test-time-augmented self,
    whose answers are all marked unsure (threshold 1)."""
    runtime = Runtime.create("cpu")
    runs = choose_runs(stroke_run, None, ensemble=True)
    [plain] = torch_scorers(runs, runtime)
    tta = dataclasses.replace(
        torch_scorers(runs, runtime, tta=True)[0], name="timm:test_resnet-tta", model="timm:test_resnet-tta"
    )
    one = create_app(Predictor([plain]), "letterbench: test", LIMIT)
    two = create_app(Predictor([plain, tta], unsure_below=1.0), "letterbench: two", LIMIT)
    # as if its evaluation had measured it at chance (``measured_usefulness`` reads metrics.json)
    untrained = dataclasses.replace(plain, not_useful="at chance: 4.2% of 260 test letters right")
    three = create_app(Predictor([untrained]), "letterbench: three", LIMIT)
    # a study whose ensemble, chosen on held-out images, is one of its two models
    chosen = Predictor([plain, tta], ensemble=["timm:test_resnet-tta"])
    four = create_app(chosen, page_title(stroke_run.parent / "letters-study"), LIMIT)
    with (
        serving(one) as url_one,
        serving(two) as url_two,
        serving(three) as url_three,
        serving(four) as url_four,
    ):
        yield {"one": url_one, "two": url_two, "three": url_three, "chosen": url_four}


def post(
    url: str,
    data: bytes,
    name: str = "letter.png",
    kind: str = "image/png",
    field: str = "image",
    headers: dict | None = None,
):
    """POST a multipart upload: (status, JSON body, headers)."""
    boundary = uuid.uuid4().hex
    head = f'--{boundary}\r\nContent-Disposition: form-data; name="{field}"; filename="{name}"\r\n'
    body = (head + f"Content-Type: {kind}\r\n\r\n").encode() + data + f"\r\n--{boundary}--\r\n".encode()
    sent = {"Content-Type": f"multipart/form-data; boundary={boundary}", **(headers or {})}
    return _send(url + "predict", body, sent)


def _send(url, body, headers):
    try:
        with urllib.request.urlopen(urllib.request.Request(url, body, headers), timeout=60) as reply:
            return reply.status, json.load(reply), reply.headers
    except urllib.error.HTTPError as error:
        return error.code, json.load(error), error.headers


def check_answer(answer: dict, models: int) -> None:
    assert set(answer) >= {"models", "ensemble", "top3", "unsure", "input_png"}
    assert len(answer["models"]) == models and (models > 1 or answer["ensemble"] is None)
    assert (answer["ensemble"] is None) == (answer["answer_model"] in answer["models"])  # one or the other
    for top in [*answer["models"].values(), answer["top3"]]:
        assert [len(t["letter"]) for t in top] == [1, 1, 1]
        assert sum(t["probability"] for t in top) <= 1 + 1e-6
        assert [t["probability"] for t in top] == sorted((t["probability"] for t in top), reverse=True)
    assert answer["top3"] == (answer["ensemble"] or answer["models"][answer["answer_model"]])
    assert answer["unsure"] == (answer["top3"][0]["probability"] < answer["unsure_below"])
    seen = Image.open(io.BytesIO(base64.b64decode(answer["input_png"].split(",", 1)[1])))
    assert answer["input_png"].startswith("data:image/png;base64,") and seen.size == (28, 28)


# ---------------------------------------------------------------- plain HTTP


def test_other_sites_cannot_use_the_page(servers):
    """A page elsewhere in the user's browser may post here (its Origin says so), and a
    DNS-rebinding page reaches this port under its own name (its Host says so): both are refused."""
    url = servers["one"]
    letter = png(render(place("l")))
    status, answer, _ = post(url, letter, headers={"Origin": "http://evil.example"})
    assert status == 403 and "another site" in answer["error"]
    status, answer, _ = post(url, letter, headers={"Host": "evil.example"})
    assert status == 403 and "this machine only" in answer["error"]
    status, answer, _ = _send(url + "health", None, {"Host": "evil.example:8000"})
    assert status == 403
    # another port of this very host is another site: a page on 127.0.0.1:3000 may not post here
    host, port = url.split("//")[1].rstrip("/").rsplit(":", 1)
    other = f"http://{host}:{int(port) + 1 if int(port) < 65535 else int(port) - 1}"
    status, answer, _ = post(url, letter, headers={"Origin": other})
    assert status == 403 and "another site" in answer["error"]
    status, answer, _ = post(url, letter, headers={"Origin": url.rstrip("/")})  # the page itself
    assert status == 200 and answer["top3"][0]["letter"] == "l"


def test_http_answers_drawn_letters_and_refuses_bad_uploads(servers):
    url = servers["one"]
    hits = 0
    for letter in STROKES:
        status, answer, headers = post(url, png(render(place(letter))))
        assert status == 200, answer
        check_answer(answer, models=1)
        hits += answer["top3"][0]["letter"] == letter
        assert headers["Server-Timing"].startswith("predict;dur=")
    assert hits >= 22, f"only {hits}/26 drawn letters recognised"

    status, answer, _ = post(servers["two"], png(render(place("k"))))
    assert status == 200 and answer["unsure"] is True
    check_answer(answer, models=2)

    def refused(status, answer, _):
        return status, answer["error"]

    code, message = refused(*post(url, b"x" * (LIMIT + 1)))  # refused by its Content-Length
    assert code == 413 and "larger than the 1 MB limit" in message and "--max-upload-mb" in message
    chunks = iter(
        [b"--b\r\nContent-Disposition: form-data; name=image; filename=a.png\r\n\r\n", b"x" * 2 * LIMIT]
    )
    code, message = refused(
        *_send(url + "predict", chunks, {"Content-Type": "multipart/form-data; boundary=b"})
    )
    assert code == 413 and "larger than the 1 MB limit" in message  # no Content-Length: counted as read
    code, message = refused(*post(url, b"just some notes", "notes.txt", "text/plain"))
    assert code == 415 and message.startswith("not an image: ")
    code, message = refused(*post(url, png(render(place("a")))[:300]))
    assert code == 400 and message.startswith("not an image: ") and "damaged" in message
    code, message = refused(*post(url, png(render([]))))
    assert code == 422 and message.startswith("no ink found: draw a letter")
    code, message = refused(*post(url, png(render(place("a"))), field="photo"))
    assert code == 400 and "form field 'image'" in message

    with urllib.request.urlopen(url + "health", timeout=10) as reply:
        assert json.load(reply) == {
            "status": "ok",
            "models": ["timm:test_resnet"],
            "ensemble": None,  # one model: no ensemble
            "trained_on": {"timm:test_resnet": "EMNIST only (timm:test_resnet recipe)"},
            "not_useful": None,  # the fixture's run was never evaluated: nothing measured says so
            "max_upload_bytes": LIMIT,
        }
    with urllib.request.urlopen(url, timeout=10) as reply:
        page = reply.read().decode()
        assert "default-src 'none'" in reply.headers["Content-Security-Policy"]
    assert "<title>letterbench: test</title>" in page and "{{" not in page
    assert "://" not in page.replace("http://www.w3.org", "")  # nothing from the network


def test_a_study_s_choice_of_one_model_is_answered_by_that_model_shown_once(servers):
    """Two models served, the study's choice one of them: the answer names that model, and no
    ensemble's top 3 repeats its own (the page showed the model twice)."""
    status, answer, _ = post(servers["chosen"], png(render(place("k"))))
    assert status == 200
    assert list(answer["models"]) == ["timm:test_resnet", "timm:test_resnet-tta"]
    assert answer["ensemble"] is None and answer["ensemble_models"] is None
    assert answer["answer_model"] == "timm:test_resnet-tta"
    assert answer["top3"] == answer["models"]["timm:test_resnet-tta"]
    check_answer(answer, models=2)
    status, answer, _ = post(servers["two"], png(render(place("k"))))  # a mean of two: an ensemble
    assert answer["ensemble"] is not None and answer["answer_model"] is None


def test_the_page_is_titled_with_the_study_not_one_of_its_models(servers):
    with urllib.request.urlopen(servers["chosen"], timeout=10) as reply:
        page = reply.read().decode()
    assert "<title>letterbench: letters-study</title>" in page
    assert "<h1>letterbench: letters-study</h1>" in page and "test_resnet" not in page


def test_uploads_beyond_what_the_page_prepares_at_once_are_answered_busy(stroke_run):
    """Decoding is bounded: with every preparation slot taken, an upload waits, then gets 503 with
    Retry-After and a message the page shows; once a slot frees, the same upload is answered."""
    from letterbench.apps.serve import PREPARED_AT_ONCE

    scorers = torch_scorers(choose_runs(stroke_run, None, ensemble=True), Runtime.create("cpu"))
    app = create_app(Predictor(scorers), "letterbench: busy", LIMIT, busy_wait_s=0.2)
    letter = png(render(place("a")))
    with serving(app) as url:
        for _ in range(PREPARED_AT_ONCE):
            assert app.state.preparing.acquire(timeout=1)
        status, answer, headers = post(url, letter)
        assert status == 503 and headers["Retry-After"] == "2"
        assert answer == {"error": "the page is busy preparing other images; try again in a moment"}
        for _ in range(PREPARED_AT_ONCE):
            app.state.preparing.release()
        status, answer, _ = post(url, letter)
        assert status == 200 and answer["top3"]


def test_an_upload_waits_for_a_slot_before_its_bytes_are_read(stroke_run):
    """The bytes of an upload are read into memory only once a preparation slot is free: with
    every slot taken, even an empty upload is answered busy (503), not read and refused (400)."""
    from letterbench.apps.serve import PREPARED_AT_ONCE

    scorers = torch_scorers(choose_runs(stroke_run, None, ensemble=True), Runtime.create("cpu"))
    app = create_app(Predictor(scorers), "letterbench: busy", LIMIT, busy_wait_s=0.2)
    with serving(app) as url:
        for _ in range(PREPARED_AT_ONCE):
            assert app.state.preparing.acquire(timeout=1)
        assert post(url, b"")[0] == 503
        for _ in range(PREPARED_AT_ONCE):
            app.state.preparing.release()
        status, answer, _ = post(url, b"")
        assert status == 400 and "empty" in answer["error"]


@pytest.mark.slow  # a real server held by stalled uploads
def test_an_upload_that_stalls_is_answered_408_and_its_connection_closed(stroke_run):
    """Half an upload, then nothing: after the stall limit the server answers 408 and closes the
    connection instead of holding it for ever."""
    import socket
    from urllib.parse import urlsplit

    scorers = torch_scorers(choose_runs(stroke_run, None, ensemble=True), Runtime.create("cpu"))
    app = create_app(Predictor(scorers), "letterbench: stalls", LIMIT, stall_s=0.5)
    with serving(app) as url:
        where = urlsplit(url)
        with socket.create_connection((where.hostname, where.port), timeout=20) as sock:
            head = (
                f"POST /predict HTTP/1.1\r\nHost: {where.netloc}\r\nContent-Length: 10000\r\n"
                "Content-Type: multipart/form-data; boundary=x\r\n\r\n--x\r\n"
            )
            sock.sendall(head.encode())
            began = time.monotonic()
            reply = b""
            while chunk := sock.recv(65536):  # until the server closes the connection
                reply += chunk
        assert reply.startswith(b"HTTP/1.1 408") and b"stalled" in reply, reply[:200]
        assert time.monotonic() - began < 15


@pytest.mark.slow  # a real server held by stalled uploads
def test_connections_beyond_the_cap_are_answered_busy_at_once(stroke_run, monkeypatch):
    """Open connections are capped (here at 3, the one asking included): two stalled uploads hold
    theirs, and the next request is answered 503 at once rather than queued behind them."""
    import socket
    from urllib.parse import urlsplit

    import letterbench.apps.server as server

    monkeypatch.setattr(server, "MAX_CONNECTIONS", 3)
    scorers = torch_scorers(choose_runs(stroke_run, None, ensemble=True), Runtime.create("cpu"))
    app = create_app(Predictor(scorers), "letterbench: crowded", LIMIT, stall_s=30)
    with serving(app) as url:
        where = urlsplit(url)
        held = [socket.create_connection((where.hostname, where.port), timeout=20) for _ in range(2)]
        try:
            for sock in held:
                sock.sendall(
                    f"POST /predict HTTP/1.1\r\nHost: {where.netloc}\r\nContent-Length: 10000\r\n"
                    "Content-Type: multipart/form-data; boundary=x\r\n\r\n--x\r\n".encode()
                )
            time.sleep(0.5)  # both are being read
            began = time.monotonic()
            with pytest.raises(urllib.error.HTTPError) as refused:
                urllib.request.urlopen(url + "health", timeout=20)
            refused.value.close()
            assert refused.value.code == 503 and time.monotonic() - began < 5
        finally:
            for sock in held:
                sock.close()


def test_a_large_16_bit_scan_is_reduced_before_any_float_copy_of_it():
    """A 4000 x 4000 16-bit image (32 MB as decoded): preparing it allocates little beyond the
    decoded pixels (a float64 copy of the whole image would be 128 MB), and reads the letter as
    its 8-bit twin does."""
    import tracemalloc

    from letterbench.images.letters import prepare_image

    side = 4000
    ink = np.asarray(render(place("t"), size=side, width=side / 14), np.uint16) * 257  # 0..65535
    deep = Image.fromarray(ink.astype(np.uint16))
    assert deep.mode == "I;16"
    tracemalloc.start()
    seen = prepare_image(deep)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 2.5 * side * side * 2, f"{peak / 1e6:.0f} MB at the peak"
    twin = prepare_image(Image.fromarray((ink // 257).astype(np.uint8)))
    assert np.abs(seen.astype(int) - twin.astype(int)).mean() < 2.0


# ---------------------------------------------------------------- in a browser


@pytest.fixture(scope="module")
def browser():
    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        sync_playwright = None
    if sync_playwright is None or not os.path.exists(chromium):
        missing = "the playwright package" if sync_playwright is None else "Debian's chromium"
        if os.environ.get("CI"):
            pytest.fail(f"{missing} is missing in CI: .ci/run installs chromium, the dev extra playwright")
        pytest.skip(f"{missing} is not installed (.ci/run installs chromium)")
    flags = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run"]
    flags += ["--disable-background-networking", "--disable-component-update", "--disable-sync"]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=flags, headless=True)
        yield browser
        browser.close()


def draw(page, letter: str, pause_ms: int = 0) -> None:
    """Draw the letter on the pad stroke by stroke with the mouse (pointer events), the pen up for
    ``pause_ms`` between strokes."""
    box = page.locator("#pad").bounding_box()
    for k, stroke in enumerate(place(letter)):
        if k and pause_ms:
            page.wait_for_timeout(pause_ms)
        points = [(box["x"] + x * box["width"], box["y"] + y * box["height"]) for x, y in stroke]
        page.mouse.move(*points[0])
        page.mouse.down()
        for point in points[1:]:
            page.mouse.move(*point, steps=4)
        page.mouse.up()


def refusal(page) -> str:
    page.locator("body[data-state=error]").wait_for(timeout=30_000)
    assert page.locator("#error").is_visible() and page.locator("#answer").is_hidden()
    return page.locator("#error").text_content()


# ---------------------------------------------------------------- the command


@pytest.mark.slow
def test_serve_command_starts_prints_its_address_and_stops_on_ctrl_c(stroke_run):
    command = [sys.executable, "-m", "letterbench", "serve", "--run", str(stroke_run), "--port", "0"]
    server = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = server.stdout.readline()  # (not stderr here: it stays open while the server runs)
        assert line.startswith("serving timm:test_resnet on 127.0.0.1:"), line
        assert ": open http://127.0.0.1:" in line
        models = server.stdout.readline()
        assert models == "models: timm:test_resnet, trained on EMNIST only (timm:test_resnet recipe)\n", (
            models
        )
        url = line.split("open ")[1].split()[0]
        status, answer, _ = post(url, png(render(place("l"))))
        assert status == 200 and answer["top3"][0]["letter"] == "l"
    finally:
        server.send_signal(signal.SIGINT)
        out, err = server.communicate(timeout=30)
    assert server.returncode == 0 and out.strip() == "stopped", err


@pytest.mark.slow
def test_serve_command_titles_the_page_with_the_study_s_folder(stroke_run, tmp_path):
    """`serve --run STUDY`: the page is titled with the study's folder, not with a model."""
    study = tmp_path / "letters-study"
    shutil.copytree(stroke_run, study / "runs" / "timm-test_resnet")
    command = [sys.executable, "-m", "letterbench", "serve", "--run", str(study), "--port", "0"]
    server = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = server.stdout.readline()
        url = line.split("open ")[1].split()[0]
        with urllib.request.urlopen(url, timeout=30) as reply:
            page = reply.read().decode()
        assert "<title>letterbench: letters-study</title>" in page, line
    finally:
        server.send_signal(signal.SIGINT)
        server.communicate(timeout=30)


@pytest.mark.slow
@pytest.mark.parametrize("host", ["LOCALHOST", "127.1"])
def test_a_loopback_host_however_typed_keeps_the_host_check(stroke_run, host):
    """Local or not is decided by the address the socket is bound to, not by how --host was typed;
    the refusal names the address serve printed."""
    command = [sys.executable, "-m", "letterbench", "serve", "--run", str(stroke_run), "--port", "0"]
    server = subprocess.Popen(
        [*command, "--host", host], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        line = server.stdout.readline()
        url = line.split("open ")[1].split()[0]
        status, answer, _ = post(url, png(render(place("l"))), headers={"Host": "evil.example"})
        assert status == 403 and "this machine only" in answer["error"] and url in answer["error"]
        status, answer, _ = post(url, png(render(place("l"))))
        assert status == 200
    finally:
        server.send_signal(signal.SIGINT)
        server.communicate(timeout=30)


def test_serve_command_refuses_a_busy_port_and_warns_off_localhost(stroke_run, capsys):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["serve", "--run", str(stroke_run), "--port", str(port)]) == 1
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith(f"letterbench: error: port {port} ") and "--port" in err[0]
    with socket.socket() as taken:
        taken.bind(("0.0.0.0", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["serve", "--run", str(stroke_run), "--host", "0.0.0.0", "--port", str(port)]) == 1
        (error,) = capsys.readouterr().err.strip().splitlines()  # nothing served: nothing to warn of
        assert error.startswith(f"letterbench: error: port {port} ")


def test_serve_names_where_it_listens_for_a_wildcard_host():
    """`--host 0` is 0.0.0.0, every interface: the warning and the address line say so, not
    "port 0" or a loopback address alone."""
    from letterbench.apps.server import bind, is_loopback, listening, url

    for host in ("0", "0.0.0.0"):
        with bind(host, 0) as sock:
            port = sock.getsockname()[1]
            assert not is_loopback(sock.getsockname()[0])
            assert listening(sock) == f"every network interface (0.0.0.0), port {port}"
            assert url(sock) == f"http://127.0.0.1:{port}/"  # where this machine's browser finds it
    with bind("127.0.0.1", 0) as sock:
        assert listening(sock) == f"127.0.0.1:{sock.getsockname()[1]}"


def test_serve_command_without_the_web_extra_names_the_install(stroke_run, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "uvicorn", None)  # as if it were not installed
    assert main(["serve", "--run", str(stroke_run)]) == 1
    assert "pip install 'letterbench[serve]'" in capsys.readouterr().err


def open_page(browser, url):
    page = browser.new_page(viewport={"width": 900, "height": 800})
    replies = []
    page.on("response", lambda r: replies.append(r) if r.url.endswith("/predict") else None)
    page.goto(url)
    return page, replies


def shown(page, replies) -> dict:
    """Wait for the page's answer; check it shows the last /predict reply; that reply."""
    page.locator("body[data-state=shown], body[data-state=error]").wait_for(timeout=30_000)
    answer = replies[-1].json()
    assert page.locator("#error").is_hidden(), page.locator("#error").text_content()
    blocks = page.locator("#results section.model")
    expected = ([("ensemble", answer["ensemble"])] if answer["ensemble"] else []) + list(
        answer["models"].items()
    )
    assert blocks.count() == len(expected)
    for i, (name, top) in enumerate(expected):
        rows = blocks.nth(i).locator("li")
        assert blocks.nth(i).get_attribute("data-model") == name and rows.count() == 3
        letters = [rows.nth(j).get_attribute("data-letter") for j in range(3)]
        probs = [float(rows.nth(j).get_attribute("data-probability")) for j in range(3)]
        assert letters == [t["letter"] for t in top] and sum(probs) <= 1 + 1e-6
        assert rows.nth(0).locator(".pct").text_content() == f"{100 * top[0]['probability']:.1f}%"
    letter = answer["top3"][0]["letter"]
    if answer["not_a_letter"]:
        assert page.locator("#best-p").text_content() == "not a letter"
        assert "not a single letter (" + answer["not_a_letter_why"] in page.locator("#unsure").text_content()
    else:  # case-free: both cases shown
        assert page.locator("#best").text_content() == f"{letter.upper()} / {letter}"
        assert page.locator("#best").get_attribute("data-letter") == letter
    unsure = answer["unsure"] or bool(answer["not_useful"]) or answer["not_a_letter"]
    assert page.locator("#unsure").is_visible() == unsure
    seen = page.evaluate(
        "(() => { const i = document.getElementById('seen'); return [i.complete, i.naturalWidth]; })()"
    )
    assert seen == [True, 28]
    return answer


@pytest.mark.slow
def test_page_answers_a_drawn_letter_and_an_uploaded_photo(servers, browser, tmp_path):
    page, replies = open_page(browser, servers["one"])
    assert page.title() == "letterbench: test"
    hits = 0
    for letter in "kezw":
        page.click("#clear")
        draw(page, letter)
        answer = shown(page, replies)
        assert letter in [t["letter"] for t in answer["top3"]]
        hits += answer["top3"][0]["letter"] == letter
    assert hits >= 3
    # A phone photo: the letter in dark ink on grey, unevenly lit paper, as a JPEG.
    photo = render(place("m"), size=900, paper=190, ink=40).filter(ImageFilter.GaussianBlur(2))
    light = np.linspace(0.85, 1.1, 900)[None, :] * np.ones((900, 1))
    photo = Image.fromarray(np.clip(np.asarray(photo) * light, 0, 255).astype(np.uint8)).convert("RGB")
    (tmp_path / "photo.jpg").write_bytes(png(photo, "JPEG"))
    page.set_input_files("#file", tmp_path / "photo.jpg")
    assert shown(page, replies)["top3"][0]["letter"] == "m"
    page.close()


@pytest.mark.slow
def test_page_waits_for_the_whole_letter_through_a_slow_writers_pauses(servers, browser):
    """A writer who pauses 0.9 s between strokes gets one answer, for the whole letter: the page
    reads the drawing only once the pen has been up for the time its hint states. The times are
    the page's own (pen events and requests), so that a slow machine stretching a pause past that
    time cannot be mistaken for the page answering early."""
    from letterbench.apps.serve import PEN_UP_SECONDS

    page, replies = open_page(browser, servers["one"])
    page.evaluate(
        """() => { window.seen = [];
        for (const kind of ["pointerdown", "pointerup"])
          document.getElementById("pad").addEventListener(kind, () => seen.push([kind, performance.now()]));
        const send = window.fetch;
        window.fetch = (...args) => { seen.push(["request", performance.now()]); return send(...args); }; }"""
    )
    assert f"pen has been up for {PEN_UP_SECONDS:.1f} s" in page.locator(".hint").text_content()
    assert len(place("k")) == 3  # three strokes, two pauses
    draw(page, "k", pause_ms=900)
    answer = shown(page, replies)
    seen = page.evaluate("window.seen")
    ups = [t for kind, t in seen if kind == "pointerup"]
    downs = [t for kind, t in seen if kind == "pointerdown"]
    requests = [t for kind, t in seen if kind == "request"]
    assert len(ups) == len(downs) == 3 and requests and requests[-1] > ups[-1], seen
    for sent in requests:  # each only after the pen had been up for the stated time, and stayed up
        up = max(t for t in ups if t < sent)
        assert sent - up >= 1000 * PEN_UP_SECONDS - 20 and not any(up < t < sent for t in downs), seen
    pauses = [down - up for up, down in zip(ups, downs[1:], strict=False)]
    if max(pauses) < 1000 * PEN_UP_SECONDS:  # the pauses the writer made (not stretched by a stall)
        assert len(requests) == 1, seen
    assert "k" in [t["letter"] for t in answer["top3"]]
    page.close()


@pytest.mark.slow
def test_page_says_not_a_single_letter_for_a_tap_and_a_dash(servers, browser):
    page, replies = open_page(browser, servers["one"])
    box = page.locator("#pad").bounding_box()
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)  # a single tap
    answer = shown(page, replies)
    assert answer["not_a_letter"] and answer["not_a_letter_why"] == "a dot"
    assert page.locator("#unsure").text_content().startswith("not a single letter (a dot)")
    page.click("#clear")
    y = box["y"] + box["height"] / 2
    page.mouse.move(box["x"] + 0.2 * box["width"], y)
    page.mouse.down()
    page.mouse.move(box["x"] + 0.8 * box["width"], y + 4, steps=8)
    page.mouse.up()
    answer = shown(page, replies)
    assert answer["not_a_letter"] and answer["not_a_letter_why"] == "a dash"
    page.close()


@pytest.mark.slow
def test_page_shows_every_model_the_ensemble_and_the_unsure_mark(servers, browser):
    page, replies = open_page(browser, servers["two"])
    draw(page, "x")
    answer = shown(page, replies)
    assert answer["unsure"] is True and page.locator("#unsure").text_content().startswith("unsure")
    assert list(answer["models"]) == ["timm:test_resnet", "timm:test_resnet-tta"]
    assert page.locator("#results section.ensemble").count() == 1
    assert page.locator("#results section.ensemble h2").text_content() == (
        "Ensemble of timm:test_resnet + timm:test_resnet-tta"
    )
    page.close()


@pytest.mark.slow
def test_page_names_the_models_the_ensemble_averages_not_the_models_served(servers, browser):
    """Two models served, the study's ensemble one of them: /health says the one, not "Ensemble
    of 2"; the page shows each model once, the chosen one's card marked as the answer, under the
    study's name."""
    with urllib.request.urlopen(servers["chosen"] + "health", timeout=60) as reply:
        health = json.load(reply)
    assert health["models"] == ["timm:test_resnet", "timm:test_resnet-tta"]
    assert health["ensemble"] == ["timm:test_resnet-tta"]
    page, replies = open_page(browser, servers["chosen"])
    assert page.title() == "letterbench: letters-study"  # the study, not one of its models
    draw(page, "x")
    answer = shown(page, replies)  # a card per model, no ensemble's card
    assert answer["ensemble"] is None and answer["answer_model"] == "timm:test_resnet-tta"
    assert page.locator("#results section.model").count() == 2
    heading = page.locator("#results section.ensemble h2").text_content()
    assert heading.startswith("timm:test_resnet-tta (the study's choice: the answer) · EMNIST only")
    page.close()


@pytest.mark.slow
def test_page_says_a_model_is_not_yet_useful_instead_of_blaming_the_letter(servers, browser):
    page, replies = open_page(browser, servers["three"])
    draw(page, "x")
    answer = shown(page, replies)
    assert answer["not_useful"].startswith("these models are not yet useful, so their answers are guesses")
    text = page.locator("#unsure").text_content()
    assert text.startswith("not a useful answer:") and "4.2% of 260 test letters" in text
    assert "clearer" not in text
    with urllib.request.urlopen(servers["three"] + "health", timeout=30) as reply:
        assert json.load(reply)["not_useful"] == answer["not_useful"]
    page.close()


@pytest.mark.slow
def test_page_shows_why_an_upload_is_refused(servers, browser):
    page, replies = open_page(browser, servers["one"])
    big = {"name": "huge.png", "mimeType": "image/png", "buffer": b"\x89PNG" + bytes(LIMIT)}
    page.set_input_files("#file", files=[big])
    assert "larger than the 1 MB limit" in refusal(page) and replies[-1].status == 413
    page.set_input_files("#file", files=[{"name": "notes.txt", "mimeType": "text/plain", "buffer": b"hello"}])
    assert refusal(page).startswith("not an image: ") and replies[-1].status == 415
    blank = {"name": "blank.png", "mimeType": "image/png", "buffer": png(render([]))}
    page.set_input_files("#file", files=[blank])
    assert refusal(page).startswith("no ink found: draw a letter") and replies[-1].status == 422
    draw(page, "t")  # and after a refusal, the next letter is answered
    shown(page, replies)
    page.close()
