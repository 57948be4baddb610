"""What stands between a request and a route of the explore server (docs/SECURITY.md, rules 2
and 6): the ASGI guard against other sites (Host, Origin, Sec-Fetch-Site), bounded bodies and
bounded JSON, one-line errors that echo untrusted text cut short, and a daemon-thread await for
blocking calls. Shared by :mod:`~actlab.explore.server`, :mod:`~actlab.explore.runs` and
:mod:`~actlab.explore.studies`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import re
import threading
from itertools import accumulate
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse

from actlab import catalog

__all__ = [
    "ECHO",
    "MAX_BODY",
    "MAX_DEPTH",
    "MAX_DIGITS",
    "BadRequest",
    "Guard",
    "echo",
    "float_text",
    "in_daemon_thread",
    "one_line",
    "parse_json",
    "read_json",
]

MAX_BODY = 64 * 1024  # bytes of a request body (a Playground's settings: ~200)
MAX_DEPTH = 8  # nesting of a JSON body ({"layers": [...]} is 2)
MAX_DIGITS = 20  # characters of one JSON or query-string number
ECHO = 80  # characters of an untrusted value quoted back in an error


class BadRequest(HTTPException):
    def __init__(self, message: str, status_code: int = 400) -> None:
        super().__init__(status_code=status_code, detail=message)


def echo(text: str) -> str:
    """``repr`` of an untrusted string, cut to :data:`ECHO` characters."""
    return repr(text if len(text) <= ECHO else text[: ECHO - 3] + "...")


def float_text(text: str) -> float:
    """A finite number written in ASCII (``-1.5e3``), else NaN."""
    if len(text) > MAX_DIGITS or not catalog.PLAIN_NUMBER.fullmatch(text):
        return math.nan
    value = float(text)
    return value if math.isfinite(value) else math.nan


class _TooLong(ValueError):
    pass


def _int_token(text: str) -> int:
    if len(text) > MAX_DIGITS:
        raise _TooLong(text)
    return int(text)


def _float_token(text: str) -> float:
    if len(text) > MAX_DIGITS:
        raise _TooLong(text)
    return float(text)


def _no_constant(text: str) -> float:
    raise ValueError(f"{text} is not JSON")


def parse_json(raw: bytes) -> Any:
    """A request body as JSON, bounded: nesting at most :data:`MAX_DEPTH`, numbers at most
    :data:`MAX_DIGITS` characters, no NaN/Infinity; BadRequest (one line) otherwise."""
    example = 'e.g. {"dataset": "moons"}'
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequest(f"the request body must be JSON in UTF-8, {example}") from None
    bare = re.sub(r'"(?:[^"\\]|\\.)*"', "", text)  # brackets inside strings do not nest
    depth = max(accumulate(1 if c in "[{" else -1 for c in bare if c in "[]{}"), default=0)
    if depth > MAX_DEPTH:
        raise BadRequest(f"the JSON body is nested {depth} deep; at most {MAX_DEPTH} is allowed")
    try:
        return json.loads(
            text, parse_int=_int_token, parse_float=_float_token, parse_constant=_no_constant
        )
    except _TooLong as exc:
        raise BadRequest(
            f"a number in the JSON body is longer than {MAX_DIGITS} characters: {echo(str(exc))}"
        ) from None
    except (ValueError, RecursionError):
        raise BadRequest(f"the request body must be JSON, {example}") from None


async def read_json(request: Request) -> Any:
    """The body (already bounded by the guard to :data:`MAX_BODY` bytes) as bounded JSON."""
    return parse_json(await request.body())


async def in_daemon_thread(fn: Any, *args: Any, **kwargs: Any) -> Any:
    """``fn(*args, **kwargs)`` in a daemon thread of its own, awaited without blocking the loop.

    Not anyio's thread pool: its threads are not daemons, so one still waiting on a worker would
    hold up the interpreter's exit after Ctrl-C; a cancelled request simply stops waiting (the
    thread ends when its worker answers or is killed)."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future = loop.create_future()

    def settle(result: Any, error: BaseException | None) -> None:
        if future.done():
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)

    def run() -> None:
        try:
            outcome: tuple[Any, BaseException | None] = (fn(*args, **kwargs), None)
        except BaseException as exc:  # handed to the awaiting request
            outcome = (None, exc)
        with contextlib.suppress(RuntimeError):  # the loop closed: nobody is waiting
            loop.call_soon_threadsafe(settle, *outcome)

    threading.Thread(target=run, daemon=True, name="actlab-explore-wait").start()
    return await future


def one_line(message: str, limit: int = 400) -> str:
    """An error message as one line of at most ``limit`` characters."""
    text = " ".join(str(message).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


LOCAL_NAMES = ("127.0.0.1", "localhost", "[::1]")
JSON_TYPE = "application/json"
BODY_METHODS = ("POST", "PUT", "PATCH")
# Sec-Fetch-Site values of a request the page itself (or the user, typing the address) made
OWN_SITE = ("same-origin", "none")


class Guard:
    """Checks before any route, against other web sites the browser also has open
    (docs/SECURITY.md states each rule and the test that checks it):

    * the Host header must name this machine (``local_only``), so a DNS-rebinding page cannot
      read the runs or drive the Playground through a name of its own;
    * a request to ``/api/`` or ``/runs/`` that the browser marks as made by another site
      (``Sec-Fetch-Site`` other than same-origin/none, or an ``Origin`` that is not this
      server's) is refused with 403, GET included: an ``<img>`` tag on any page can send a GET;
    * bodies are at most :data:`MAX_BODY` bytes (413 before reading, whatever Content-Length
      claims) and must be exactly ``application/json``, which a cross-site page can only send
      after a CORS preflight this server never grants (a plain form post cannot start training).
    """

    def __init__(self, app: Any, local_only: bool) -> None:
        self.app = app
        self.local_only = local_only

    def refuse(self, scope: Any) -> tuple[int, str] | None:
        """(status, reason) when the request must not reach a route."""
        headers: dict[str, list[str]] = {}
        for k, v in scope["headers"]:
            headers.setdefault(k.decode("latin-1").lower(), []).append(v.decode("latin-1"))
        host = (headers.get("host") or [""])[-1]
        name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
        if self.local_only and name not in LOCAL_NAMES:
            return 400, f"this server answers only to 127.0.0.1 or localhost, not {echo(host)}"
        path = scope.get("path", "")
        if path.startswith(("/api/", "/runs/")):
            own = f"{scope.get('scheme', 'http')}://{host}".lower()
            sites = headers.get("sec-fetch-site", [])
            origins = headers.get("origin", [])
            if any(s.strip().lower() not in OWN_SITE for s in sites) or any(
                o.strip().lower() != own for o in origins
            ):
                return 403, (
                    "cross-site request refused: only this server's own page may call it "
                    f"(Origin {echo(origins[-1] if origins else '-')}, Sec-Fetch-Site "
                    f"{echo(sites[-1] if sites else '-')})"
                )
        if scope["method"] in BODY_METHODS:
            length = (headers.get("content-length") or [""])[-1].strip()
            if length and not (length.isascii() and length.isdigit()):
                return 400, f"Content-Length must be a number of bytes, got {echo(length)}"
            if length and int(length) > MAX_BODY:
                return 413, f"the request body is over {MAX_BODY} bytes ({int(length)})"
            media = (headers.get("content-type") or [""])[-1].split(";")[0].strip().lower()
            if media != JSON_TYPE:
                return 415, f"send the body as JSON with 'Content-Type: {JSON_TYPE}'"
        return None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            error = self.refuse(scope)
            if error is None and scope["method"] in BODY_METHODS:
                body = await _read_body(receive)
                if body is None:
                    error = (413, f"the request body is over {MAX_BODY} bytes")
                else:
                    receive = _replay(body, receive)
            if error:
                response = JSONResponse({"error": error[1]}, status_code=error[0])
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


async def _read_body(receive: Any) -> bytes | None:
    """The whole body, or None once it passes :data:`MAX_BODY` (chunked bodies have no length)."""
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _replay(body: bytes, receive: Any) -> Any:
    """An ASGI receive that gives ``body`` once, then waits as the real one does (disconnect)."""
    sent = False

    async def replay() -> Any:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
