"""`letterbench serve`: a local page where a user draws a letter or uploads a photo of one and sees
what the models answer. The page (``static/serve.html``) posts the image to ``/predict``; the
answer is JSON. Models are loaded once, by the caller; predictions run in the threadpool, one at
a time (on a few CPU cores one answer after another is faster than several side by side)."""

# No `from __future__ import annotations` here: FastAPI reads the endpoints' annotations at run time.

import asyncio
import base64
import html
import io
import json
import os
import threading
import time
from importlib import resources
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from letterbench.apps.predict import Answer, Predictor, top3_json
from letterbench.apps.server import is_loopback
from letterbench.core.errors import LetterbenchError
from letterbench.evaluation.thresholds import CASE_NOTE
from letterbench.images.letters import WORK_SIDE, BlankImage, prepare_letter
from letterbench.models import display_name

DEFAULT_MAX_UPLOAD_MB = 8
# How long the page waits with the pen up before it reads the drawing: longer than a slow writer's
# pause between strokes (0.9 s), so that a half-drawn A is never answered "n".
PEN_UP_SECONDS = 1.2
MAX_PIXELS = 64_000_000  # a decoded image's size cap: phone photos are 12 to 50 megapixels
FORM_OVERHEAD = 64 * 1024  # what a multipart request may add around the image itself
NO_INK = "no ink found: draw a letter, or photograph one written dark on plain paper"
SEND_AS = "send the picture as the multipart form field 'image'"
NOT_AN_IMAGE = "not an image: {what}; send a PNG, JPEG, WebP or other picture file"


def require_web() -> None:
    """LetterbenchError naming the install command where FastAPI, uvicorn or python-multipart is missing."""
    try:
        import fastapi  # noqa: F401
        import uvicorn  # noqa: F401

        try:
            import python_multipart  # noqa: F401
        except ImportError:  # before 0.0.13 its module was `multipart`
            import multipart  # noqa: F401
    except ImportError as exc:
        raise LetterbenchError(
            f"serve needs FastAPI, uvicorn and python-multipart ({exc.name or exc} is missing): "
            "pip install 'letterbench[serve]'"
        ) from None


def too_large(limit: int) -> str:
    return (
        f"the upload is larger than the {limit / 2**20:g} MB limit: send a smaller image, "
        "or start serve with a larger --max-upload-mb"
    )


async def _discard(receive, budget: int) -> None:
    """Read and drop the rest of a refused body, up to ``budget`` bytes: a client still sending
    when the connection closes sees it reset and never reads the refusal."""
    while budget > 0:
        message = await receive()
        budget -= len(message.get("body", b""))
        if message["type"] != "http.request" or not message.get("more_body", False):
            return


BODY_STALL_S = 15.0  # seconds an upload may send nothing before it is answered 408


class UploadLimit:
    """ASGI middleware: a request body over ``limit`` bytes is refused with 413, at once by its
    Content-Length (nothing is parsed or kept), else as soon as the bytes read pass the limit; a
    body that stalls (nothing arrives for ``stall_s`` seconds) is answered 408 and its connection
    closed, so that half-sent uploads do not hold connections for ever."""

    def __init__(self, app, limit: int, message: str, stall_s: float = BODY_STALL_S):
        self.app, self.limit, self.message, self.stall_s = app, limit, message, stall_s
        self.discard = max(64 * 2**20, 4 * limit)  # beyond this, a refused body is cut off

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        from fastapi import HTTPException
        from fastapi.responses import JSONResponse

        headers = dict(scope["headers"])
        length = headers.get(b"content-length", b"")
        if length.isdigit() and int(length) > self.limit:
            if headers.get(b"expect", b"").lower() != b"100-continue":  # else it waits to be asked
                await _discard(receive, self.discard)
            refusal = JSONResponse({"error": self.message}, 413, headers={"Connection": "close"})
            return await refusal(scope, receive, send)
        read = 0

        async def counted():
            nonlocal read
            try:
                message = await asyncio.wait_for(receive(), self.stall_s)
            except asyncio.TimeoutError:
                stalled = f"the upload stalled: nothing arrived for {self.stall_s:g} s; send it again"
                raise HTTPException(408, stalled, headers={"Connection": "close"}) from None
            read += len(message.get("body", b""))
            if read > self.limit:
                if message.get("more_body", False):
                    await _discard(receive, self.discard)
                raise HTTPException(413, self.message, headers={"Connection": "close"})
            return message

        await self.app(scope, counted, send)


class SameSite:
    """ASGI middleware against other web pages in the user's browser: a request whose ``Host`` is
    not this machine (a DNS-rebinding page's name) is refused with 403 where the server listens on
    loopback only (``local``), and so is any request whose ``Origin`` names another site than its
    ``Host`` (a page elsewhere posting to this one). Tools that send no ``Origin`` (curl) pass."""

    def __init__(self, app, local: bool, url: str = "http://127.0.0.1:8000"):
        self.app, self.local, self.url = app, local, url  # url: where serve said the page is

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        from urllib.parse import urlsplit

        from fastapi.responses import JSONResponse

        headers = dict(scope["headers"])
        host = headers.get(b"host", b"").decode("latin-1")
        origin = headers.get(b"origin", b"").decode("latin-1")
        name = urlsplit(f"//{host}").hostname or ""
        why = None
        if self.local and not is_loopback(name):
            why = f"this page serves this machine only; open it as {self.url} (Host {host!r} refused)"
        elif origin and origin != "null" and urlsplit(origin).netloc != host:
            why = f"a request from another site ({origin}) is refused"
        elif origin == "null":
            why = "a request from an opaque origin is refused"
        if why is not None:
            return await JSONResponse({"error": why}, 403)(scope, receive, send)
        await self.app(scope, receive, send)


BUSY = "the page is busy preparing other images; try again in a moment"


def read_image(data: bytes) -> Image.Image:
    """Uploaded bytes -> a decoded PIL image, or an HTTPException saying why not."""
    from fastapi import HTTPException

    try:
        img = Image.open(io.BytesIO(data))
        if img.width * img.height > MAX_PIXELS:
            raise HTTPException(
                413,
                f"the image is {img.width} x {img.height} pixels; the limit is {MAX_PIXELS // 10**6} "
                "megapixels: send a smaller photo",
            )
        img.draft(img.mode, (2 * WORK_SIDE, 2 * WORK_SIDE))  # a JPEG decodes at a fraction of its size
        img.load()
    except UnidentifiedImageError:
        raise HTTPException(415, NOT_AN_IMAGE.format(what="no picture format Pillow reads")) from None
    except Image.DecompressionBombError as exc:
        raise HTTPException(413, f"the image is too large: {exc}") from None
    except (OSError, ValueError, SyntaxError) as exc:
        raise HTTPException(
            400, NOT_AN_IMAGE.format(what=f"the file is damaged or cut short ({exc})")
        ) from None
    return img


def png_data_url(image: np.ndarray) -> str:
    out = io.BytesIO()
    Image.fromarray(image).save(out, format="PNG")
    return "data:image/png;base64," + base64.b64encode(out.getvalue()).decode("ascii")


def answer_json(
    answer: Answer,
    seen: np.ndarray,
    trained_on: dict[str, str] | None = None,
    caveat: str | None = None,
    ensemble_models: list[str] | None = None,
) -> dict:
    """What /predict answers: each model's top 3 (labelled with what it learned from), once each;
    the ensemble's where it averages several models (else null, and ``answer_model`` names the
    model that answers alone); the top 3 shown first, whether it is unsure, and the 28x28 image the
    models saw as a PNG data URL."""
    learned = trained_on or {}
    return {
        "models": {m: top3_json(top) for m, top in answer.models.items()},
        "labels": {m: display_name(m) + (f" · {learned[m]}" if m in learned else "") for m in answer.models},
        "trained_on": learned,
        "not_useful": caveat,
        "ensemble": top3_json(answer.ensemble) if answer.ensemble is not None else None,
        "ensemble_models": ensemble_models if answer.ensemble is not None else None,
        "answer_model": answer.answer_model if answer.ensemble is None else None,
        "top3": top3_json(answer.top3),
        "unsure": answer.unsure,
        "unsure_below": answer.unsure_below,
        "not_a_letter": answer.not_a_letter is not None,
        "not_a_letter_why": answer.not_a_letter,
        "case": CASE_NOTE,
        "input_png": png_data_url(seen),
    }


def page(title: str, predictor: Predictor, max_upload_bytes: int) -> str:
    """The page with its title and settings filled in."""
    text = resources.files("letterbench").joinpath("static/serve.html").read_text(encoding="utf-8")
    settings = {"maxUploadBytes": max_upload_bytes, "penUpMs": round(PEN_UP_SECONDS * 1000)}
    script_safe = json.dumps(settings).replace("<", "\\u003c")
    return text.replace("{{TITLE}}", html.escape(title)).replace("{{SETTINGS}}", script_safe)


def page_title(served: str | os.PathLike) -> str:
    """The page's title: the study (or run) served, by its folder's name, whatever model answers."""
    return f"letterbench: {Path(served).resolve().name}"


SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
    "img-src data: blob:; connect-src 'self'; form-action 'none'; base-uri 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


PREPARED_AT_ONCE = 2  # images decoded and prepared at the same time; more wait, up to BUSY_WAIT_S
BUSY_WAIT_S = 10.0


def create_app(
    predictor: Predictor,
    title: str,
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_MB * 2**20,
    local: bool = True,
    busy_wait_s: float = BUSY_WAIT_S,
    url: str = "http://127.0.0.1:8000",
    stall_s: float = BODY_STALL_S,
):
    """The FastAPI app: GET / (the page), POST /predict (a multipart ``image``), GET /health.
    ``local``: it listens on loopback only, and answers only requests addressed to this machine
    (a refusal names ``url``, the page's address as serve printed it).
    At most ``PREPARED_AT_ONCE`` uploads are decoded at a time (a decoded photo can take hundreds
    of megabytes); one that waits longer than ``busy_wait_s`` is answered 503."""
    require_web()
    from fastapi import FastAPI, File, UploadFile
    from fastapi.responses import HTMLResponse, JSONResponse

    app = FastAPI(title=title, docs_url=None, redoc_url=None, openapi_url=None)
    limit = max_upload_bytes + FORM_OVERHEAD
    app.add_middleware(UploadLimit, limit=limit, message=too_large(max_upload_bytes), stall_s=stall_s)
    app.add_middleware(SameSite, local=local, url=url)  # added last: it runs first
    body, lock = page(title, predictor, max_upload_bytes), threading.Lock()
    app.state.preparing = threading.BoundedSemaphore(PREPARED_AT_ONCE)
    with lock:  # the first answer as fast as the rest
        predictor.answers(np.zeros((1, 28, 28), np.uint8))

    _add_error_handlers(app)

    @app.get("/", response_class=HTMLResponse)
    def index():
        return HTMLResponse(body, headers=SECURITY_HEADERS)

    @app.get("/health")
    def health():
        return _health(predictor, max_upload_bytes)

    @app.post("/predict")
    def predict(image: UploadFile = File(...)):
        start = time.perf_counter()
        seen, shape = _prepared(app, image, max_upload_bytes, busy_wait_s)
        with lock:
            answer = predictor.answers(seen[None], [shape])[0]
        timing = {"Server-Timing": f"predict;dur={(time.perf_counter() - start) * 1000:.1f}"}
        said = answer_json(answer, seen, predictor.trained_on, predictor.caveat, predictor.ensemble)
        return JSONResponse(said, headers=timing)

    return app


def _add_error_handlers(app) -> None:
    """Every refusal as ``{"error": one line}``, with the fix where the form was wrong."""
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse
    from starlette.exceptions import HTTPException as StarletteHTTPException

    @app.exception_handler(StarletteHTTPException)  # FastAPI's, and Starlette's own (a bad form)
    async def refused(request, exc: StarletteHTTPException):
        message = str(exc.detail)
        if exc.status_code == 400 and not message.startswith(("not an image", "no image")):
            message = f"{message.rstrip('.')}: {SEND_AS}"
        return JSONResponse({"error": message}, exc.status_code, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def malformed(request, exc: RequestValidationError):
        return JSONResponse({"error": f"no image in the request: {SEND_AS}"}, 400)


def _health(predictor: Predictor, max_upload_bytes: int) -> dict:
    return {
        "status": "ok",
        "models": predictor.models,
        "ensemble": predictor.ensemble if len(predictor.models) > 1 else None,
        "trained_on": predictor.trained_on,
        "not_useful": predictor.caveat,
        "max_upload_bytes": max_upload_bytes,
    }


def _prepared(app, image, max_upload_bytes: int, busy_wait_s: float) -> tuple[np.ndarray, str | None]:
    """The upload read (at most the limit), decoded and prepared as EMNIST's 28x28 letter (with
    what its ink is instead of a letter, or None), with at most ``PREPARED_AT_ONCE`` uploads read
    into memory and decoded at a time; an HTTP error otherwise."""
    from fastapi import HTTPException

    if not app.state.preparing.acquire(timeout=busy_wait_s):  # before its bytes are read into memory
        raise HTTPException(503, BUSY, headers={"Retry-After": "2"})
    try:
        data = image.file.read(max_upload_bytes + 1)
        if len(data) > max_upload_bytes:
            raise HTTPException(413, too_large(max_upload_bytes))
        if not data:
            raise HTTPException(400, NOT_AN_IMAGE.format(what="the upload is empty"))
        return prepare_letter(read_image(data))
    except LetterbenchError as exc:
        blank = isinstance(exc, BlankImage)
        raise HTTPException(
            422 if blank else 400, NO_INK if blank else NOT_AN_IMAGE.format(what=exc)
        ) from None
    finally:
        app.state.preparing.release()
