"""The ``openai`` engine: any OpenAI-compatible chat-completions endpoint over HTTP.

``POST {base_url}/chat/completions``: a ``vllm serve`` endpoint, Ollama, a hosted API. Only the
standard library is used (``http.client``, one keep-alive connection per worker thread).

Settings (engine args): ``model`` (the served model name; when omitted, the single model
listed by ``GET {base_url}/models``), ``base_url`` (default: env ``OPENAI_BASE_URL``, else
``http://127.0.0.1:8000/v1``), ``api_key_env`` (the *name* of the environment variable holding
the key, default ``OPENAI_API_KEY``; the key is read from the environment for every request,
sent as ``Authorization: Bearer ...`` when set, and never stored on the engine or recorded),
``max_concurrency`` (requests in flight, default 8), ``timeout_s`` (socket time-out of one
attempt: connecting, or waiting for the next bytes of the answer; default 120), ``max_retries``
(default 5), ``backoff_s``/``backoff_max_s`` (exponential back-off), ``image_format``
(``jpeg``, default, quality ``jpeg_quality`` 90; or ``png``, lossless), ``frame_labels``,
``max_pixels``, ``max_top_logprobs`` (20, the OpenAI API's limit), ``token_limit_field``
(``max_tokens``, or ``max_completion_tokens`` for APIs that want it), ``extra_body`` (a mapping
merged into every request body), ``seed``, ``batch_size`` (recorded only: every request of a
``generate`` call is submitted at once, at most ``max_concurrency`` in flight).

Conventions (beyond :mod:`harness.engines.base`):

* messages keep their roles. A message that is one text part is sent as a string; otherwise
  its content is a list of parts: text parts as ``text``, an image as one ``image_url`` part
  holding a ``data:image/jpeg;base64,...`` (or PNG) URL, and a video as one such image per
  frame, in order, each preceded by a text part ``"Frame k:"`` (k from 1) unless
  ``frame_labels=False``. System and assistant messages may hold text only.
  Frames whose H*W exceeds ``max_pixels`` are downscaled (bicubic, aspect kept) before
  encoding;
* sampling: ``max_tokens`` (or ``token_limit_field``), ``temperature``, ``top_p``, ``stop``,
  ``n`` and ``seed`` (``sampling.seed``, else ``engine seed + i`` for request ``i`` of the call,
  the ``hf`` engine's rule). A greedy request with ``n > 1`` is sent with ``n = 1`` and its
  completion copied. With ``sampling.logprobs`` set, ``logprobs: true`` and ``top_logprobs:
  min(k, max_top_logprobs)`` are asked for; ``choices[i].logprobs.content`` becomes
  ``Completion.token_logprobs`` and ``Completion.top_logprobs`` (token texts -> log-prob, best
  first, the chosen token always present, a text appearing twice keeps its best log-prob);
* not available over this API: ``token_ids`` (left empty), ``target_logprobs`` (left empty:
  methods fall back to the top-k), LoRA adapters, embeddings;
* failures: HTTP 408, 409, 429 and 5xx, connection errors and time-outs are retried up to
  ``max_retries`` times, waiting ``Retry-After`` when the server sends it (seconds or an HTTP
  date, at most ``retry_after_max_s``), else ``min(backoff_max_s, backoff_s * 2**attempt)``
  times a random factor in [0.5, 1). Other statuses fail at once. A request that still fails
  raises :class:`EngineError` naming the endpoint, the status and the start of the answer's
  body; the other requests of the call are cancelled.
"""

from __future__ import annotations

import base64
import email.utils
import http.client
import io
import json
import math
import os
import random
import threading
import time
import urllib.parse
from collections.abc import Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np

from harness.engines.base import (
    Completion,
    Engine,
    EngineCapabilities,
    EngineError,
    ImagePart,
    Message,
    Request,
    Response,
    TextPart,
    VideoPart,
)

DEFAULT_BASE_URL = "http://127.0.0.1:8000/v1"
#: Statuses worth retrying (besides every 5xx).
RETRY_STATUSES = frozenset({408, 409, 429})
_EXCERPT = 300


def _excerpt(data: bytes) -> str:
    text = data.decode("utf-8", errors="replace").strip().replace("\n", " ")
    return text[:_EXCERPT] + ("..." if len(text) > _EXCERPT else "")


def _public_url(url: str) -> str:
    """``url`` without user:password (never recorded)."""
    parts = urllib.parse.urlsplit(url)
    if parts.username or parts.password:
        netloc = parts.hostname or ""
        if parts.port:
            netloc += f":{parts.port}"
        parts = parts._replace(netloc=netloc)
    return urllib.parse.urlunsplit(parts)


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    try:
        secs = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        secs = when.timestamp() - (time.time() if now is None else now)
    if math.isnan(secs):
        return None
    return max(0.0, secs)


def encode_image(img: np.ndarray, fmt: str = "jpeg", quality: int = 90,
                 max_pixels: int | None = None) -> str:
    """An RGB ``uint8 (H, W, 3)`` frame -> ``data:image/...;base64,...`` URL."""
    from PIL import Image

    arr = np.asarray(img)
    if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[2] != 3:
        raise EngineError(f"frames must be uint8 (H, W, 3), got {arr.dtype} {arr.shape}")
    pil = Image.fromarray(np.ascontiguousarray(arr), mode="RGB")
    h, w = arr.shape[:2]
    if max_pixels is not None and h * w > max_pixels:
        scale = math.sqrt(max_pixels / (h * w))
        pil = pil.resize((max(1, int(w * scale)), max(1, int(h * scale))),
                         Image.Resampling.BICUBIC)
    buf = io.BytesIO()
    if fmt == "png":
        pil.save(buf, format="PNG")
        mime = "image/png"
    else:
        pil.save(buf, format="JPEG", quality=quality)
        mime = "image/jpeg"
    return f"data:{mime};base64,{base64.b64encode(buf.getvalue()).decode('ascii')}"


def parse_logprobs(content: Sequence[Mapping[str, Any]] | None
                   ) -> tuple[list[float], list[dict[str, float]]]:
    """``choices[i].logprobs.content`` -> (token log-probs, top-k dicts best first)."""
    token_lps: list[float] = []
    tops: list[dict[str, float]] = []
    for step in content or ():
        tok, lp = str(step.get("token", "")), float(step.get("logprob", -math.inf))
        d: dict[str, float] = {}
        for alt in step.get("top_logprobs") or ():
            t, alp = str(alt.get("token", "")), float(alt.get("logprob", -math.inf))
            d[t] = max(d.get(t, -math.inf), alp)
        d[tok] = max(d.get(tok, lp), lp)
        token_lps.append(lp)
        tops.append(dict(sorted(d.items(), key=lambda kv: -kv[1])))
    return token_lps, tops


class OpenAIEngine(Engine):
    """OpenAI-compatible chat completions over HTTP (see the module docstring)."""

    name = "openai"
    capabilities = EngineCapabilities(
        logprobs=True, lora=False, video=True, images=True, embeddings=False
    )

    def __init__(
        self,
        model: str | None = None,
        base_url: str | None = None,
        api_key_env: str | None = "OPENAI_API_KEY",
        max_concurrency: int = 8,
        timeout_s: float = 120.0,
        max_retries: int = 5,
        batch_size: int = 8,
        seed: int | None = 0,
        image_format: str = "jpeg",
        jpeg_quality: int = 90,
        frame_labels: bool = True,
        max_pixels: int | None = None,
        max_top_logprobs: int = 20,
        token_limit_field: str = "max_tokens",
        extra_body: Mapping[str, Any] | None = None,
        backoff_s: float = 0.5,
        backoff_max_s: float = 20.0,
        retry_after_max_s: float = 60.0,
        **_: Any,  # device, dtype, ... of the runner's common engine arguments
    ) -> None:
        if max_concurrency < 1:
            raise EngineError(f"max_concurrency must be >= 1, got {max_concurrency}")
        if max_retries < 0:
            raise EngineError(f"max_retries must be >= 0, got {max_retries}")
        if image_format not in ("jpeg", "png"):
            raise EngineError(f"image_format must be 'jpeg' or 'png', not {image_format!r}")
        url = (base_url or os.environ.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL).rstrip("/")
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise EngineError(f"base_url must be an http(s) URL, got {_public_url(url)!r}")
        self.base_url = url
        self._scheme, self._host, self._port = parts.scheme, parts.hostname, parts.port
        self._prefix = parts.path.rstrip("/")
        self._query = f"?{parts.query}" if parts.query else ""
        self.api_key_env = api_key_env
        self.max_concurrency = int(max_concurrency)
        self.timeout_s = float(timeout_s)
        self.max_retries = int(max_retries)
        self.batch_size = int(batch_size)
        self.seed = seed
        self.image_format = image_format
        self.jpeg_quality = int(jpeg_quality)
        self.frame_labels = bool(frame_labels)
        self.max_pixels = max_pixels
        self.max_top_logprobs = int(max_top_logprobs)
        self.token_limit_field = token_limit_field
        self.extra_body = dict(extra_body or {})
        self.backoff_s = float(backoff_s)
        self.backoff_max_s = float(backoff_max_s)
        self.retry_after_max_s = float(retry_after_max_s)
        self._local = threading.local()
        self._conns: list[http.client.HTTPConnection] = []
        self._conns_lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None
        self._pool_lock = threading.Lock()
        self.model = model or self._only_served_model()

    # -- HTTP ------------------------------------------------------------------------------------
    def endpoint(self, route: str) -> str:
        return f"{_public_url(self.base_url)}/{route.lstrip('/')}"

    def _connection(self) -> tuple[http.client.HTTPConnection, bool]:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            return conn, False
        cls = http.client.HTTPSConnection if self._scheme == "https" else http.client.HTTPConnection
        conn = cls(self._host, self._port, timeout=self.timeout_s)
        self._local.conn = conn
        with self._conns_lock:
            self._conns.append(conn)
        return conn, True

    def _drop_connection(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    def _headers(self, has_body: bool) -> dict[str, str]:
        headers = {"Accept": "application/json"}
        if has_body:
            headers["Content-Type"] = "application/json"
        key = os.environ.get(self.api_key_env) if self.api_key_env else None
        if key:
            headers["Authorization"] = f"Bearer {key}"
        return headers

    def _send_once(self, method: str, route: str, body: bytes | None
                   ) -> tuple[int, http.client.HTTPMessage, bytes]:
        """One exchange on this thread's connection; a stale kept-alive connection (closed by
        the server while idle) is replaced once, without counting as an attempt."""
        path = f"{self._prefix}/{route.lstrip('/')}{self._query}"
        for _ in range(2):
            conn, fresh = self._connection()
            try:
                conn.request(method, path, body=body, headers=self._headers(body is not None))
                resp = conn.getresponse()
                data = resp.read()
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                self._drop_connection()
                if fresh:
                    raise
                continue
            except (OSError, http.client.HTTPException):
                self._drop_connection()
                raise
            if resp.will_close:
                self._drop_connection()
            return resp.status, resp.headers, data
        raise http.client.RemoteDisconnected("connection closed twice")  # pragma: no cover

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(retry_after, self.retry_after_max_s)
        d = min(self.backoff_max_s, self.backoff_s * 2**attempt)
        return d * (0.5 + 0.5 * random.random())

    def _call(self, method: str, route: str, payload: Mapping[str, Any] | None = None
              ) -> dict[str, Any]:
        body = None if payload is None else json.dumps(payload).encode("utf-8")
        what = f"{method} {self.endpoint(route)}"
        last = ""
        attempts = 0
        for attempt in range(self.max_retries + 1):
            attempts = attempt + 1
            retry_after: float | None = None
            try:
                status, headers, data = self._send_once(method, route, body)
            except (OSError, http.client.HTTPException) as exc:
                last = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            else:
                if 200 <= status < 300:
                    try:
                        out = json.loads(data)
                    except ValueError as exc:
                        raise EngineError(f"openai engine: {what}: HTTP {status} but the body "
                                          f"is not JSON: {_excerpt(data)}") from exc
                    if not isinstance(out, dict):
                        raise EngineError(f"openai engine: {what}: unexpected answer "
                                          f"{_excerpt(data)}")
                    return out
                last = f"HTTP {status}: {_excerpt(data)}"
                if status not in RETRY_STATUSES and status < 500:  # permanent
                    raise EngineError(f"openai engine: {what} failed: {last}")
                retry_after = parse_retry_after(headers.get("Retry-After"))
            if attempt < self.max_retries:
                time.sleep(self._delay(attempt, retry_after))
        raise EngineError(f"openai engine: {what} failed after {attempts} attempt(s): {last}")

    def _only_served_model(self) -> str:
        data = self._call("GET", "models").get("data") or []
        ids = [str(m.get("id")) for m in data if isinstance(m, dict) and m.get("id")]
        if len(ids) != 1:
            raise EngineError(f"openai engine: no model given and {self.endpoint('models')} "
                              f"lists {len(ids)} models {ids[:10]}; pass the served model name")
        return ids[0]

    # -- requests --------------------------------------------------------------------------------
    def _image(self, img: np.ndarray) -> dict[str, Any]:
        url = encode_image(img, self.image_format, self.jpeg_quality, self.max_pixels)
        return {"type": "image_url", "image_url": {"url": url}}

    def _message(self, msg: Message) -> dict[str, Any]:
        parts = msg.content
        if all(isinstance(p, TextPart) for p in parts):
            texts = [p.text for p in parts if isinstance(p, TextPart)]
            if msg.role != "user" or len(texts) == 1:
                return {"role": msg.role, "content": "\n".join(texts)}
        if msg.role != "user":
            raise EngineError(f"openai engine: {msg.role} messages may hold text only")
        content: list[dict[str, Any]] = []
        for p in parts:
            if isinstance(p, TextPart):
                content.append({"type": "text", "text": p.text})
            elif isinstance(p, ImagePart):
                content.append(self._image(p.image))
            elif isinstance(p, VideoPart):
                frames = np.asarray(p.frames)
                if frames.ndim != 4:
                    raise EngineError(f"video frames must be (T, H, W, 3), got {frames.shape}")
                for k, frame in enumerate(frames, 1):
                    if self.frame_labels:
                        content.append({"type": "text", "text": f"Frame {k}:"})
                    content.append(self._image(frame))
            else:
                raise EngineError(f"openai engine: unsupported content part {type(p).__name__}")
        return {"role": msg.role, "content": content}

    def build_body(self, req: Request, index: int = 0) -> dict[str, Any]:
        """The JSON body of one request (``index``: its position in the ``generate`` call)."""
        if req.lora is not None:
            raise EngineError("the openai engine does not support LoRA adapters")
        sp = req.sampling
        if sp.n < 1:
            raise EngineError(f"sampling.n must be >= 1, got {sp.n}")
        if sp.allowed_tokens:
            raise EngineError("the openai engine does not serve sampling.allowed_tokens; use "
                              "the hf engine")
        greedy = sp.temperature <= 0
        body: dict[str, Any] = {
            "model": self.model,
            "messages": [self._message(m) for m in req.messages],
            self.token_limit_field: sp.max_new_tokens,
            "temperature": 0.0 if greedy else float(sp.temperature),
            "top_p": float(sp.top_p),
            "n": 1 if greedy else sp.n,
        }
        seed = sp.seed if sp.seed is not None else (
            None if self.seed is None else self.seed + index)
        if seed is not None:
            body["seed"] = int(seed)
        if sp.stop:
            body["stop"] = list(sp.stop)
        if sp.logprobs is not None:
            body["logprobs"] = True
            body["top_logprobs"] = max(0, min(int(sp.logprobs), self.max_top_logprobs))
        body.update(self.extra_body)
        return body

    def _parse(self, req: Request, data: Mapping[str, Any]) -> Response:
        choices = data.get("choices")
        if not isinstance(choices, list) or not choices:
            raise EngineError(f"openai engine: {self.endpoint('chat/completions')} answered "
                              f"without choices: {_excerpt(json.dumps(data).encode())}")
        comps: list[Completion] = []
        want_lp = req.sampling.logprobs is not None
        for ch in sorted(choices, key=lambda c: int(c.get("index", 0))):
            msg = ch.get("message") or {}
            lp_content = (ch.get("logprobs") or {}).get("content") if want_lp else None
            token_lps, tops = parse_logprobs(lp_content) if want_lp else ([], [])
            comps.append(Completion(
                text=str(msg.get("content") or ""),
                token_logprobs=token_lps,
                top_logprobs=tops,
                finish_reason=str(ch.get("finish_reason") or "stop"),
            ))
        n = req.sampling.n
        if req.sampling.temperature <= 0 and n > 1:
            c = comps[0]
            comps = [Completion(c.text, list(c.token_ids), list(c.token_logprobs),
                                [dict(d) for d in c.top_logprobs],
                                [dict(d) for d in c.target_logprobs], c.finish_reason)
                     for _ in range(n)]
        return Response(req.request_id, comps)

    def _one(self, req: Request, index: int) -> Response:
        body = self.build_body(req, index)
        return self._parse(req, self._call("POST", "chat/completions", body))

    def _executor(self) -> ThreadPoolExecutor:
        with self._pool_lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=self.max_concurrency,
                                                thread_name_prefix="openai-engine")
            return self._pool

    def generate(self, requests: Sequence[Request]) -> list[Response]:
        """All requests at once, at most ``max_concurrency`` in flight; responses in order."""
        if not requests:
            return []
        for req in requests:  # fail before sending anything
            if req.lora is not None:
                raise EngineError("the openai engine does not support LoRA adapters")
        pool = self._executor()
        futures: list[Future[Response]] = [pool.submit(self._one, r, i)
                                           for i, r in enumerate(requests)]
        try:
            return [f.result() for f in futures]
        except BaseException:
            for f in futures:
                f.cancel()
            raise

    # -- bookkeeping -----------------------------------------------------------------------------
    def describe(self) -> dict[str, Any]:
        """Engine, served model, endpoint and request settings; never the API key."""
        return {
            "engine": self.name,
            "model": self.model,
            "base_url": _public_url(self.base_url),
            "image_format": self.image_format,
            "jpeg_quality": self.jpeg_quality if self.image_format == "jpeg" else None,
            "frame_labels": self.frame_labels,
            "max_pixels": self.max_pixels,
            "max_top_logprobs": self.max_top_logprobs,
            "token_limit_field": self.token_limit_field,
            "extra_body": self.extra_body,
            "api_key_env": self.api_key_env,
            "max_concurrency": self.max_concurrency,
            "timeout_s": self.timeout_s,
            "max_retries": self.max_retries,
            "batch_size": self.batch_size,
            "seed": self.seed,
        }

    def close(self) -> None:
        with self._pool_lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
        with self._conns_lock:
            conns, self._conns = self._conns, []
        for c in conns:
            c.close()
