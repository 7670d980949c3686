#!/usr/bin/env python3
"""Runs every ```sh and ```python example of README.md against a small model, so that the README cannot rot.

Usage: python3 scripts/readme_examples.py [--binary .build/debug/longcat] [--readme README.md] [--verbose] [--keep]

Each shell line of a ```sh block (backslash continuations joined, comment lines dropped) is one example; each
```python block is one example. Before an example runs, its placeholders are bound (see `Binding`): `DIR` and
`path/to/...` to a small random-weight model, `DIR-q4` and `/tmp/...` to outputs in a scratch folder, `$KEY` to a key,
`conversation.json` and `F` to files made for it, port 8000 to a free port, and `longcat` to the binary (its folder
goes first on PATH). `longcat serve` examples are started, checked for readiness and stopped with SIGTERM; curl and
Python client examples run against a `longcat serve --model DIR` kept in the background; `chat` examples read
"Hello" and "/quit" from stdin. Examples that cannot run here are in SKIPS, each with its reason; a skip or a
special binding that no longer matches any example is an error, so the lists stay true to the README.

An example passes when it exits 0 and its checkable output checks out (`--json` output is one JSON object, a chat
completion parses and has choices, a stream ends with `data: [DONE]`). Failures print the bound command, the exit
code and the end of stderr, and the script exits 1. The last line gives the counts.
"""

import argparse
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "Tests" / "Fixtures"
EXAMPLE_TIMEOUT = 300  # seconds for one example
SERVE_READY_TIMEOUT = 60

# Examples not run, matched by a regular expression on the README's own text of the example, with the reason.
# `instead`, where given, is a shorter command run from the repository root in the example's place (it must pass).
SKIPS = [
    (r"^swift test\b", "the CI runs `swift test` itself (.ci/run)", None),
    (r"^benchmarks/run\.sh\b",
     "benchmarks/run.sh builds a release binary and runs every BENCHMARKS.md measurement on the 2.5 GB bench-1b "
     "model (tens of minutes); its second half, render.py over the committed JSON files, is run instead",
     "python3 benchmarks/render.py benchmarks/*.json benchmarks/rounds/*.json"),
    (r"^benchmarks/run-lite\.sh\b",
     "benchmarks/run-lite.sh builds a release binary and writes the 6 GB bench-lite model and a 3.3 GB q8 copy; its second half, "
     "render.py over the committed JSON files, is run instead",
     "python3 benchmarks/render.py benchmarks/lite/*.json"),
]

# Bindings that hold for one example only, each with why it is honest; applied to the README text of the example.
SPECIAL = [
    # The default command: `swift run -c release longcat` builds a release binary (minutes); the debug binary runs
    # the same default (the shipped model, found above the binary; standard input is empty, so the built-in prompt).
    (r"^swift run -c release longcat\b", "longcat",
     "the built binary instead of `swift run -c release` (no release build here)"),
    # bench-1b writes 2.5 GB; the same command with the small model's config exercises every flag. The real config
    # is still checked: `longcat inspect` must read it (see check_init_config).
    (r"benchmarks/kit/bench-1b\.config\.json", "{small_config}",
     "run with the small model's config instead of bench-1b's (whose checkpoint is 2.5 GB)"),
]


# ---------------------------------------------------------------------------------------------------------------
# The model the examples run against. This is the one place that chooses it: when a trained default model ships,
# bind `model` to it here.

def make_small_model(work, binary):
    """A random-weight LongCat-Flash with the tiny-fp32 fixture's shape, the fixture tokenizer's vocabulary
    (as Tests/python/longcat_testlib.py's write_random_model) and a context long enough for the README's
    `bench --context 512,4096,16384`; returns (model directory, its config file)."""
    config = json.loads((FIXTURES / "tiny-fp32" / "config.json").read_text())
    config["vocab_size"] = 4006
    config["max_position_embeddings"] = 32768
    config_path = work / "small.config.json"
    config_path.write_text(json.dumps(config))
    directory = work / "longcat-small"
    subprocess.run([str(binary), "init", "--config", str(config_path), "--out", str(directory), "--dtype", "f32", "--seed", "3"],
                   check=True, capture_output=True, text=True, timeout=120)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copyfile(FIXTURES / "tokenizer-bpe-qwenstyle" / name, directory / name)
    return directory, config_path


class Binding:
    """What the README's placeholders mean in this run."""

    def __init__(self, work, binary):
        self.work = work
        self.binary = binary
        self.model, self.small_config = make_small_model(work, binary)
        self.port = free_port()
        self.key = "readme-example-key"
        (work / "conversation.json").write_text(json.dumps(
            [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Hello!"}]))
        (work / "F").write_text("Tell me about cats\n")
        # The training example's batches: train-tiny's (token ids inside the small model's vocabulary).
        shutil.copyfile(FIXTURES / "train-tiny" / "expected.json", work / "batches.json")
        # The --data example's text: fortune-style records.
        (work / "sayings").write_text("\n%\n".join(
            " ".join(["the", "cat", "sat", "on", "a", "mat", "and", "ran", "far", "away"][(i * 3 + j) % 10] for j in range(6 + i % 15))
            for i in range(120)) + "\n")
        bin_dir = work / "bin"
        bin_dir.mkdir()
        (bin_dir / "longcat").symlink_to(binary)
        # XDG_DATA_HOME: `longcat install-model` copies the built-in model into the scratch folder, not the home.
        self.env = dict(os.environ, PATH=f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}", KEY=self.key,
                        XDG_DATA_HOME=str(work / "data"))
        self.env.pop("LONGCAT_API_KEY", None)

    def bind(self, text):
        """The example's text with its placeholders bound, and notes on the special bindings used."""
        notes = []
        # /tmp/... outputs first: the bound paths below lie in the scratch folder, under /tmp themselves.
        text = re.sub(r"(?<![\w.])/tmp/([\w.-]+)", lambda m: str(self.work / m.group(1)), text)
        for pattern, replacement, note in SPECIAL:
            if re.search(pattern, text, re.M):
                text = re.sub(pattern, replacement.format(small_config=self.small_config), text, flags=re.M)
                notes.append(note)
        text = re.sub(r"\bpath/to/[\w./-]+", str(self.model), text)
        text = re.sub(r"\bDIR((?:-[\w.]+)?)\b", lambda m: f"{self.model}{m.group(1)}", text)
        text = re.sub(r"(127\.0\.0\.1|localhost|0\.0\.0\.0):8000\b", rf"\g<1>:{self.port}", text)
        text = re.sub(r"--port 8000\b", f"--port {self.port}", text)
        text = re.sub(r'"?\$KEY\b"?', self.key, text)
        return text, notes


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------------------------------------------------------
# The README's examples.

class Example:
    def __init__(self, kind, line, text):
        self.kind, self.line, self.text = kind, line, text

    @property
    def title(self):
        first = self.text.strip().splitlines()[0]
        first = re.sub(r"\s+#\s.*$", "", first) if self.kind == "sh" else "python: " + first
        return first if len(first) <= 100 else first[:97] + "..."


def examples(readme):
    """Each logical line of a ```sh block, and each ```python block, with its line number."""
    found = []
    lines = readme.read_text().splitlines()
    i = 0
    while i < len(lines):
        m = re.match(r"^```(\w+)\s*$", lines[i])
        if not m:
            i += 1
            continue
        kind, start = m.group(1), i + 1
        end = start
        while end < len(lines) and not lines[end].startswith("```"):
            end += 1
        block = lines[start:end]
        if kind == "python":
            found.append(Example("python", start + 1, "\n".join(block) + "\n"))
        elif kind == "sh":
            j = 0
            while j < len(block):
                line, number = block[j], start + j + 1
                while line.endswith("\\") and j + 1 < len(block):
                    j += 1
                    line = line + "\n" + block[j]  # kept as written: bash joins the lines
                j += 1
                if line.strip() and not line.lstrip().startswith("#"):
                    found.append(Example("sh", number, line.strip()))
        i = end + 1
    return found


def words(command):
    """The command's words as bash splits them, without a trailing comment and line continuations."""
    return shlex.split(command.replace("\\\n", " "), comments=True)


# ---------------------------------------------------------------------------------------------------------------
# Running and checking.

class Failure(Exception):
    pass


def http(method, url, body=None, headers=None, timeout=10):
    request = urllib.request.Request(url, data=None if body is None else json.dumps(body).encode(), method=method,
                                     headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()
    except (urllib.error.URLError, OSError):
        return None, b""


def tail(text, lines=20):
    return "\n".join(text.rstrip().splitlines()[-lines:])


class Runner:
    def __init__(self, binding, verbose):
        self.b = binding
        self.verbose = verbose
        self.background = None  # (process, log path) of the server the client examples talk to

    # The background server for curl and Python client examples: the README's own first serve line.
    def ensure_background(self):
        if self.background:
            return
        log = self.b.work / "background-serve.log"
        process = subprocess.Popen(["longcat", "serve", "--model", str(self.b.model), "--port", str(self.b.port)],
                                   env=self.b.env, cwd=self.b.work, stdin=subprocess.DEVNULL,
                                   stdout=open(log, "w"), stderr=subprocess.STDOUT)
        self.background = (process, log)
        self.wait_ready(process, log, "longcat serve (background, for the client examples)")

    def stop_background(self):
        if not self.background:
            return
        process, log = self.background
        self.background = None
        code = stop(process)
        if code != 0:
            raise Failure(f"the background server exited {code} on SIGTERM:\n{tail(log.read_text())}")

    def wait_ready(self, process, log, what):
        deadline = time.time() + SERVE_READY_TIMEOUT
        while time.time() < deadline:
            if process.poll() is not None:
                raise Failure(f"{what} exited {process.returncode} before it was ready:\n{tail(log.read_text())}")
            if http("GET", f"http://127.0.0.1:{self.b.port}/health", timeout=2)[0] == 200:
                return
            time.sleep(0.1)
        stop(process)
        raise Failure(f"{what}: /health was not 200 within {SERVE_READY_TIMEOUT} s:\n{tail(log.read_text())}")

    def run(self, example):
        """Runs one example; returns notes on what was checked. Raises Failure."""
        bound, notes = self.b.bind(example.text)
        if self.verbose:
            print(f"      $ {bound}", flush=True)
        if example.kind == "python":
            self.ensure_background()
            return notes + self.run_python(bound)
        command = shlex.join(words(bound))
        if re.match(r"longcat serve\b", command):
            self.stop_background()  # it holds the port
            return notes + self.run_serve(bound, command)
        client = re.search(rf"127\.0\.0\.1:{self.b.port}\b", command) is not None
        if client:
            self.ensure_background()
        stdin = "Hello\n/quit\n" if re.match(r"longcat chat\b", command) else None
        result = self.shell(bound, stdin)
        checks = []
        if "--json" in words(bound):
            checks.append(check_json_object(result.stdout))
        if command.startswith("curl"):
            checks.append(check_curl(command, result.stdout))
        if "bench-1b.config.json" in example.text and re.match(r"longcat init\b", command):
            checks.append(self.check_init_config())
        return notes + checks

    def shell(self, command, stdin=None):
        try:
            result = subprocess.run(["bash", "-c", command], env=self.b.env, cwd=self.b.work, text=True, capture_output=True,
                                    input=stdin, stdin=None if stdin is not None else subprocess.DEVNULL,
                                    timeout=EXAMPLE_TIMEOUT)
        except subprocess.TimeoutExpired as e:
            stderr = e.stderr.decode(errors="replace") if isinstance(e.stderr, bytes) else (e.stderr or "")
            raise Failure(f"timed out after {EXAMPLE_TIMEOUT} s\n$ {command}\nstderr:\n{tail(stderr)}")
        if result.returncode != 0:
            raise Failure(f"exit code {result.returncode}\n$ {command}\nstderr:\n{tail(result.stderr)}\nstdout:\n{tail(result.stdout, 5)}")
        return result

    def run_python(self, source):
        path = self.b.work / "example.py"
        path.write_text(source)
        result = self.shell(f"{shlex.quote(sys.executable)} {shlex.quote(str(path))}")
        if not result.stdout.strip():
            raise Failure(f"the Python example printed nothing\n$ python3 {path}")
        return ["exit 0 and printed a reply"]

    def run_serve(self, bound, command):
        """Starts the serve example, checks it is ready and answers /v1/models, then stops it with SIGTERM."""
        argv = words(bound)
        if "--port" not in argv:
            argv += ["--port", str(self.b.port)]  # the README's default port 8000, rebound like the others
        log = self.b.work / "serve-example.log"
        if self.verbose and argv != words(bound):
            print(f"      $ {shlex.join(argv)}", flush=True)
        process = subprocess.Popen(argv, env=self.b.env, cwd=self.b.work,
                                   stdin=subprocess.DEVNULL, stdout=open(log, "w"), stderr=subprocess.STDOUT)
        try:
            self.wait_ready(process, log, "the serve example")
            name = argv[argv.index("--served-model-name") + 1] if "--served-model-name" in argv else self.b.model.name
            headers = {}
            if "--api-key" in argv:
                status, _ = http("GET", f"http://127.0.0.1:{self.b.port}/v1/models")
                if status != 401:
                    raise Failure(f"/v1/models without the key answered {status}, not 401")
                headers = {"Authorization": f"Bearer {self.b.key}"}
            status, data = http("GET", f"http://127.0.0.1:{self.b.port}/v1/models", headers=headers)
            if status != 200 or [m["id"] for m in json.loads(data)["data"]] != [name]:
                raise Failure(f"/v1/models answered {status} {data[:300]!r}, expected the model '{name}'")
        finally:
            code = stop(process)
        if code != 0:
            raise Failure(f"the serve example exited {code} on SIGTERM:\n{tail(log.read_text())}")
        return [f"ready, /v1/models lists '{name}', exit 0 on SIGTERM"]

    def check_init_config(self):
        result = subprocess.run(["longcat", "inspect", "--model", str(ROOT / "benchmarks/kit/bench-1b.config.json"), "--json"],
                                env=self.b.env, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
        if result.returncode != 0:
            raise Failure(f"longcat inspect of benchmarks/kit/bench-1b.config.json failed:\n{tail(result.stderr)}")
        check_json_object(result.stdout)
        return "bench-1b's own config reads (longcat inspect)"

    def run_instead(self, command):
        result = subprocess.run(["bash", "-c", command], cwd=ROOT, env=self.b.env, capture_output=True, text=True,
                                timeout=EXAMPLE_TIMEOUT, stdin=subprocess.DEVNULL)
        if result.returncode != 0 or not result.stdout.strip():
            raise Failure(f"exit code {result.returncode}\n$ {command}\nstderr:\n{tail(result.stderr)}")


def stop(process, timeout=40):
    """SIGTERM, then wait (the server drains for up to 30 s); returns the exit code (killed after the timeout)."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        return process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        return "killed after no exit within %d s of SIGTERM" % timeout


def check_json_object(stdout):
    try:
        value = json.loads(stdout)
    except json.JSONDecodeError as e:
        raise Failure(f"--json output is not one JSON object ({e}):\n{stdout[:500]}")
    if not isinstance(value, dict):
        raise Failure(f"--json output is not an object: {stdout[:200]}")
    return "stdout is one JSON object"


def check_curl(command, stdout):
    if '"stream": true' in command:
        events = [line[len("data: "):] for line in stdout.splitlines() if line.startswith("data: ")]
        if not events or events[-1] != "[DONE]":
            raise Failure(f"the stream does not end with data: [DONE]:\n{stdout[-500:]}")
        chunks = [json.loads(e) for e in events[:-1]]
        if not chunks or any("error" in c for c in chunks):
            raise Failure(f"the stream holds no chunks or an error:\n{stdout[:500]}")
        return f"{len(chunks)} server-sent events, then data: [DONE]"
    try:
        body = json.loads(stdout)
    except json.JSONDecodeError:
        raise Failure(f"the reply is not JSON:\n{stdout[:500]}")
    if "error" in body or not body.get("choices"):
        raise Failure(f"the reply is an error or has no choices:\n{stdout[:500]}")
    return f"a {body.get('object')} with {len(body['choices'])} choice(s)"


# ---------------------------------------------------------------------------------------------------------------

def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--binary", default=os.environ.get("LONGCAT_BIN", str(ROOT / ".build" / "debug" / "longcat")))
    parser.add_argument("--readme", default=str(ROOT / "README.md"))
    parser.add_argument("--verbose", "-v", action="store_true", help="print each bound command")
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder")
    args = parser.parse_args()
    binary = Path(args.binary).resolve()
    if not binary.is_file():
        sys.exit(f"readme_examples: no binary at {binary} (swift build first, or pass --binary)")

    started = time.time()
    work = Path(tempfile.mkdtemp(prefix="longcat-readme-"))
    found = examples(Path(args.readme))
    ran, skipped, failed, problems = [], [], [], []
    used_skips, used_special = set(), set()
    runner = None
    try:
        binding = Binding(work, binary)
        runner = Runner(binding, args.verbose)
        print(f"README examples: {len(found)} found in {args.readme}; model {binding.model} (small, random weights), "
              f"port {binding.port}", flush=True)
        for example in found:
            for i, (pattern, _, _) in enumerate(SPECIAL):
                if re.search(pattern, example.text, re.M):
                    used_special.add(i)
            where = f"{Path(args.readme).name}:{example.line}"
            skip = next(((i, rule) for i, rule in enumerate(SKIPS) if re.search(rule[0], example.text)), None)
            if skip:
                i, (_, reason, instead) = skip
                used_skips.add(i)
                if instead:
                    try:
                        runner.run_instead(instead)
                    except Failure as f:
                        failed.append((example, f"the command run instead failed: {f}"))
                        print(f"FAIL  {where}  {example.title}\n{indent(str(f))}", flush=True)
                        continue
                skipped.append((example, reason))
                print(f"skip  {where}  {example.title}", flush=True)
                continue
            t0 = time.time()
            try:
                checks = runner.run(example)
            except Failure as f:
                failed.append((example, str(f)))
                print(f"FAIL  {where}  {example.title}  ({time.time() - t0:.1f} s)\n{indent(str(f))}", flush=True)
                continue
            ran.append(example)
            detail = "; ".join(c for c in checks if c)
            print(f"ok    {where}  {example.title}  ({time.time() - t0:.1f} s{'; ' + detail if detail else ''})", flush=True)
    finally:
        if runner:
            try:
                runner.stop_background()
            except Failure as f:
                problems.append(str(f))
        if args.keep:
            print(f"scratch folder kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)

    for i, (pattern, reason, _) in enumerate(SKIPS):
        if i not in used_skips:
            problems.append(f"the skip /{pattern}/ ({reason}) matches no README example: remove it or fix it")
    for i, (pattern, _, note) in enumerate(SPECIAL):
        if i not in used_special:
            problems.append(f"the binding /{pattern}/ ({note}) matches no README example: remove it or fix it")
    for problem in problems:
        print(f"FAIL  {problem}")
    if skipped:
        print("skipped:")
        for example, reason in skipped:
            print(f"  {Path(args.readme).name}:{example.line}  {example.title}\n      {reason}")
    elapsed = time.time() - started
    verdict = f", {len(failed)} failed" if failed else ""
    print(f"README examples: {len(ran)} run, {len(skipped)} skipped{verdict} in {elapsed:.0f} s")
    sys.exit(1 if failed or problems else 0)


def indent(text):
    return "\n".join("      " + line for line in text.splitlines())


if __name__ == "__main__":
    main()
