"""Helpers for the integration tests: build test models with the `longcat` binary, start and stop
`longcat serve`, and talk HTTP with the standard library where the `openai` client is not the point."""

import http.client
import json
import os
import re
import shutil
import signal
import struct
import subprocess
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "Tests" / "Fixtures"
TOKENIZER_DIR = FIXTURES / "tokenizer-bpe-qwenstyle"
BINARY = Path(os.environ.get("LONGCAT_BIN", ROOT / ".build" / "debug" / "longcat"))


def run_cli(*args):
    result = subprocess.run([str(BINARY), *map(str, args)], capture_output=True, text=True, timeout=120)
    if result.returncode != 0:
        raise RuntimeError(f"longcat {' '.join(map(str, args))} failed:\n{result.stderr}")
    return result.stdout


def write_random_model(directory, vocab_size=4006, context=1024, seed=3):
    """The tiny-fp32 fixture's shape with random weights and an MTP head, the fixture tokenizer's vocabulary and a
    longer context, beside the fixture tokenizer (whose chat template renders tools)."""
    config = json.loads((FIXTURES / "tiny-fp32" / "config.json").read_text())
    config["vocab_size"] = vocab_size
    config["max_position_embeddings"] = context
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    config_path = directory.parent / (directory.name + ".config.json")
    config_path.write_text(json.dumps(config))
    run_cli("init", "--config", config_path, "--out", directory, "--dtype", "f32", "--seed", seed, "--mtp")
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(TOKENIZER_DIR / name, directory / name)
    return directory


# ---------------------------------------------------------------------------------------------------------------
# A model that calls a tool.
#
# Random weights never emit a tool call, so this model is rigged, honestly: it is a real LongCat-Flash checkpoint
# run by the real engine, whose weights make it a bigram model. Every attention output projection and every FFN
# down projection is zero, so the residual stream stays the token's embedding (identity experts only rescale it,
# and RMSNorm removes the scale); the embedding of each token of the planned reply is a one-hot vector, and the
# lm_head row of its successor points at that one-hot direction. The logits then say "after token a comes token b"
# by a margin of ~40, greedy or not. A bigram cannot repeat a token with two different successors, and JSON repeats
# quotes, so the call's JSON travels as three added (non-special) tokens of the test tokenizer, split mid-call so
# that streaming has to assemble it. The server sees nothing special: the engine samples
# `<longcat_tool_call>` (a special token of the LongCat vocabulary), the JSON pieces and `</longcat_tool_call>`,
# then EOS, and the server must turn that text into `tool_calls`.

TOOL_CALL_PIECES = ['{"name": "get_weather", ', '"arguments": {"city": ', '"Paris"}}']
TOOL_CALL_PREFIX = "Let me check."
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


def read_safetensors(path):
    data = bytearray(Path(path).read_bytes())
    (header_size,) = struct.unpack_from("<Q", data, 0)
    header = json.loads(data[8 : 8 + header_size])
    return data, header, 8 + header_size


def write_tool_call_model(directory):
    """Writes the rigged model (see above) and returns the token ids it replies with after any chat prompt."""
    directory = Path(directory)
    base_vocab = 4006
    write_random_model(directory, vocab_size=base_vocab + len(TOOL_CALL_PIECES), seed=9)
    # The JSON pieces become added tokens of this model's tokenizer.
    tokenizer = json.loads((directory / "tokenizer.json").read_text())
    for i, piece in enumerate(TOOL_CALL_PIECES):
        tokenizer["added_tokens"].append({
            "id": base_vocab + i, "content": piece, "single_word": False, "lstrip": False, "rstrip": False,
            "normalized": False, "special": False,
        })
    (directory / "tokenizer.json").write_text(json.dumps(tokenizer, ensure_ascii=False))

    def ids(text):
        return [int(x) for x in run_cli("tokenize", "--tokenizer", directory, "--text", text).strip().split(",")]

    messages = directory.parent / "probe-messages.json"
    messages.write_text(json.dumps([{"role": "user", "content": "What is the weather in Paris?"}]))
    prompt = run_cli("chat-template", "--tokenizer", directory, "--messages", messages, "--add-generation-prompt", "--ids")
    prompt_end = int(prompt.strip().split(",")[-1])  # every chat prompt ends with the template's " ASSISTANT:"
    open_tag, close_tag, eos = 4000, 4001, 2
    reply = ids(TOOL_CALL_PREFIX + " ") + [open_tag] + [base_vocab + i for i in range(len(TOOL_CALL_PIECES))] + [close_tag]
    sequence = [prompt_end] + reply + [eos]
    successor = {}
    for a, b in zip(sequence, sequence[1:]):
        assert successor.setdefault(a, b) == b, f"token {a} would need two successors; choose another reply"

    data, header, base = read_safetensors(directory / "model.safetensors")
    hidden = json.loads((directory / "config.json").read_text())["hidden_size"]
    assert len(successor) <= hidden

    def tensor(name):
        info = header[name]
        start, end = info["data_offsets"]
        assert info["dtype"] == "F32"
        return memoryview(data)[base + start : base + end].cast("f"), info["shape"]

    for name in header:
        if name == "__metadata__":
            continue
        values, _ = tensor(name)
        if name.endswith(("o_proj.weight", "down_proj.weight")):
            for i in range(len(values)):
                values[i] = 0.0
        elif "layernorm" in name or name == "model.norm.weight":
            for i in range(len(values)):
                values[i] = 1.0
    embed, _ = tensor("model.embed_tokens.weight")
    head, _ = tensor("lm_head.weight")
    predecessors = list(successor)
    for slot, a in enumerate(predecessors):
        for j in range(hidden):
            embed[a * hidden + j] = 1.0 if j == slot else 0.0
    # A successor's lm_head row points at its predecessors' directions and nowhere else.
    for b in set(successor.values()):
        slots = {slot for slot, a in enumerate(predecessors) if successor[a] == b}
        for j in range(hidden):
            head[b * hidden + j] = 5.0 if j in slots else 0.0
    (directory / "model.safetensors").write_bytes(bytes(data))
    return reply


# ---------------------------------------------------------------------------------------------------------------
# The server process.

class Server:
    """`longcat serve` on 127.0.0.1 at a free port (it binds port 0 and prints the port)."""

    def __init__(self, model_dir, *extra_args, name="test-model"):
        self.model_dir = Path(model_dir)
        self.name = name
        self.log_path = Path(tempfile.mkstemp(prefix="longcat-serve-", suffix=".log")[1])
        self.log = open(self.log_path, "w")
        self.process = subprocess.Popen(
            [str(BINARY), "serve", "--model", str(model_dir), "--host", "127.0.0.1", "--port", "0",
             "--served-model-name", name, *map(str, extra_args)],
            stdout=self.log, stderr=subprocess.STDOUT)
        self.port = None
        deadline = time.time() + 60
        while time.time() < deadline:
            match = re.search(r"listening on http://127\.0\.0\.1:(\d+)", self.log_path.read_text())
            if match:
                self.port = int(match.group(1))
                break
            if self.process.poll() is not None:
                raise RuntimeError("longcat serve exited:\n" + self.log_path.read_text())
            time.sleep(0.05)
        assert self.port, "longcat serve did not start:\n" + self.log_path.read_text()
        while time.time() < deadline:
            if self.request("GET", "/health")[0] == 200:
                return
            time.sleep(0.05)
        raise RuntimeError("longcat serve never became healthy:\n" + self.log_path.read_text())

    @property
    def base_url(self):
        return f"http://127.0.0.1:{self.port}"

    def request(self, method, path, body=None, headers=None, timeout=60):
        """(status, headers, body bytes); body may be bytes, str or a JSON-able object."""
        if body is not None and not isinstance(body, (bytes, str)):
            body = json.dumps(body)
        if isinstance(body, str):
            body = body.encode()
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            connection.request(method, path, body=body, headers={"Content-Type": "application/json", **(headers or {})})
            response = connection.getresponse()
            return response.status, dict(response.getheaders()), response.read()
        except (ConnectionError, OSError):
            return None, {}, b""
        finally:
            connection.close()

    def json(self, method, path, body=None, headers=None):
        status, _, data = self.request(method, path, body, headers)
        return status, json.loads(data) if data else None

    def metrics(self):
        """Prometheus samples as {(name, frozenset(labels)): value}, parsed by prometheus_client."""
        from prometheus_client.parser import text_string_to_metric_families

        status, _, data = self.request("GET", "/metrics")
        assert status == 200
        samples = {}
        for family in text_string_to_metric_families(data.decode()):
            for sample in family.samples:
                samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
        return samples

    def stop(self, sig=signal.SIGTERM, timeout=30):
        """Signals the server and returns its exit code."""
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            code = self.process.wait(timeout=timeout)
        finally:
            self.log.close()
        if code == 0:
            self.log_path.unlink(missing_ok=True)  # kept only when something went wrong
        return code

    def kill(self):
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.log.close()


def metric(samples, name, **labels):
    return samples.get((name, frozenset(labels.items())), 0.0)


def render_chat_template(config_path, messages, tools=None, add_generation_prompt=True):
    """A tokenizer_config.json's chat template rendered as transformers' apply_chat_template(..., tokenize=False) does."""
    import jinja2
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    config = json.loads(Path(config_path).read_text())

    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=["jinja2.ext.loopcontrols"])
    env.filters["tojson"] = lambda x, indent=None, separators=None, sort_keys=False: json.dumps(
        x, ensure_ascii=False, indent=indent, separators=separators, sort_keys=sort_keys)
    env.globals["raise_exception"] = raise_exception
    return env.from_string(config["chat_template"]).render(
        messages=messages, tools=tools, add_generation_prompt=add_generation_prompt, bos_token=config["bos_token"],
        eos_token=config["eos_token"])
