"""The shipped default model (models/longcat-tiny): found without --model from the checkout, through LONGCAT_MODEL and
after `install-model`; `longcat` alone answers; --show-compute and per-token compute; `longcat eval`; and its tool-call
accuracy on held-out dialogues with unseen tools, repeated through `longcat serve` with the official openai client."""

import json
import os
import re
import shutil
import subprocess

import pytest
from openai import OpenAI

import longcat_testlib as lib

MODEL = lib.ROOT / "models" / "longcat-tiny"
HELDOUT_DIALOGUES = 60  # of the model card's 600 (same seed and split): about 90 turns, in seconds
# LongCat-Tiny v10 (models/longcat-tiny/README.md) on these 60 dialogues: 59.0% of the 83 turns right,
# 72.2% valid calls, 97.2% of call turns make a call, every no-call turn right (all 600: 69.6%, 76.7%); issue 18's bar (80% of turns,
# 95% valid calls) is not met yet. The floors sit below what v10 measured, to catch a model or engine that got worse.
CALL_MADE_FLOOR = 0.9
NO_CALL_FLOOR = 0.9
TURN_ACCURACY_FLOOR = 0.5
VALID_CALL_FLOOR = 0.6
XFAIL_REASON = "issue 18 is open: LongCat-Tiny v10 gets 69.6% of held-out turns right, the bar is 80%"


def longcat(*args, input="", env=None, binary=lib.BINARY):
    return subprocess.run([str(binary), *map(str, args)], input=input, capture_output=True, text=True, timeout=600,
                          env={**os.environ, **(env or {})})


def readable(text):
    """Words, mostly letters: an answer, not token soup (ids, stray bytes, punctuation runs)."""
    words = re.findall(r"[A-Za-z]{2,}", text)
    visible = [c for c in text if not c.isspace()]
    return all(c.isprintable() for c in visible) and len(words) >= 3 and sum(c.isalpha() for c in visible) >= 0.5 * len(visible)


def test_the_checkout_binary_finds_the_default_model():
    r = longcat("inspect", "--json")
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout)
    assert info["path"] == str(MODEL)
    assert info["total_parameters"] > 10_000_000 and info["zero_computation_experts"] > 0
    size = sum(f.stat().st_size for f in MODEL.glob("*.safetensors"))
    assert size <= 30_000_000, f"the shipped weights are {size} bytes"


def test_longcat_alone_answers_the_built_in_prompt_without_a_terminal():
    r = longcat(input="")
    assert r.returncode == 0, r.stderr
    prompt, _, answer = r.stdout.partition("\n")
    assert prompt.startswith("> ")
    assert readable(answer), r.stdout
    assert "FFN experts/token" in r.stderr


def test_longcat_alone_answers_standard_input():
    r = longcat(input="What does hacker mean?\n")
    assert r.returncode == 0, r.stderr
    assert not r.stdout.startswith("> ") and readable(r.stdout), r.stdout


def test_longcat_alone_on_a_terminal_opens_a_chat():
    import pty

    terminal, side = pty.openpty()
    process = subprocess.Popen([str(lib.BINARY)], stdin=side, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    os.close(side)
    os.write(terminal, b"What does hacker mean?\n/quit\n")
    out, err = process.communicate(timeout=600)
    os.close(terminal)
    assert process.returncode == 0, err
    assert "Type a message" in err and out.startswith("> ") and readable(out), (out, err)


def test_longcat_model_and_install_model_serve_a_copied_binary(tmp_path):
    copied = tmp_path / "bin" / "longcat"
    copied.parent.mkdir()
    shutil.copy(lib.BINARY, copied)
    data_home = {"XDG_DATA_HOME": str(tmp_path / "data")}
    r = longcat("inspect", "--json", binary=copied, env=data_home)
    assert r.returncode == 64 and "LONGCAT_MODEL" in r.stderr and "install-model" in r.stderr, r.stderr
    r = longcat("inspect", "--json", binary=copied, env={**data_home, "LONGCAT_MODEL": str(MODEL)})
    assert r.returncode == 0 and json.loads(r.stdout)["path"] == str(MODEL), r.stderr
    r = longcat("install-model", env=data_home)
    installed = tmp_path / "data" / "longcat" / "longcat-tiny"
    assert r.returncode == 0 and r.stdout.strip() == str(installed), r.stderr
    r = longcat("inspect", "--json", binary=copied, env=data_home)
    assert r.returncode == 0 and json.loads(r.stdout)["path"] == str(installed), r.stderr
    r = longcat("inspect", "--json", binary=copied, env={**data_home, "LONGCAT_MODEL": str(tmp_path / "nowhere")})
    assert r.returncode == 64 and "nowhere" in r.stderr


def test_generate_reports_and_colours_each_tokens_compute():
    r = longcat("generate", "--prompt", "The hacker", "--max-tokens", "24", "--ignore-eos", "--json")
    assert r.returncode == 0, r.stderr
    result = json.loads(r.stdout)
    assert len(result["ffn_experts"]) == len(result["tokens"]) == 24
    assert all(0 <= e <= 4 for e in result["ffn_experts"]) and len(set(result["ffn_experts"])) > 1
    assert abs(sum(result["ffn_experts"]) / 24 - result["ffn_experts_per_token"]) < 4, "means of the same picks"
    r = longcat("generate", "--prompt", "The hacker", "--max-tokens", "24", "--ignore-eos", "--show-compute")
    assert r.returncode == 0, r.stderr
    assert len(re.findall(r"\x1b\[38;5;\d+m", r.stdout)) >= 20, r.stdout
    assert "FFN experts per layer" in r.stderr
    plain = longcat("generate", "--prompt", "The hacker", "--max-tokens", "24", "--ignore-eos")
    assert re.sub(r"\x1b\[[0-9;]*m", "", r.stdout) == plain.stdout, "colour only, same text"


def test_speculative_greedy_decoding_gives_plain_greedys_thousand_tokens():
    """Issue 19: on the default model, 1,000 greedy tokens are the same with and without the MTP head drafting, and
    the head drafts usefully (46% accepted here when written; a head that guesses blindly accepts next to none)."""
    args = ["generate", "--prompt", "Once", "--max-tokens", "1000", "--ignore-eos", "--temperature", "0",
            "--repetition-penalty", "1", "--json"]
    plain, speculative = (longcat(*args, *extra) for extra in ([], ["--speculative", "mtp"]))
    assert plain.returncode == 0 and speculative.returncode == 0, plain.stderr + speculative.stderr
    plain, speculative = json.loads(plain.stdout), json.loads(speculative.stdout)
    assert len(plain["tokens"]) == 1000 and speculative["tokens"] == plain["tokens"]
    drafts = speculative["speculative"]
    assert drafts["accepted"] > 0.3 * drafts["drafted"], drafts


def test_tokenize_uses_the_default_tokenizer():
    r = longcat("tokenize", "--text", "hello world", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["ids"]


@pytest.fixture(scope="module")
def heldout(tmp_path_factory):
    path = tmp_path_factory.mktemp("heldout") / "agent-heldout.jsonl"
    lib.run_cli("make-agent-data", "--seed", 2, "--count", 600, "--split", "heldout", "--out", path)
    lines = path.read_text().splitlines()[:HELDOUT_DIALOGUES]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="module")
def mistakes(tmp_path_factory):
    return tmp_path_factory.mktemp("mistakes") / "mistakes.jsonl"


@pytest.fixture(scope="module")
def evaluation(heldout, mistakes, tmp_path_factory):
    text = tmp_path_factory.mktemp("text") / "text.txt"
    text.write_text("A hacker is a person who enjoys exploring the details of programmable systems and how to stretch their "
                    "capabilities, as opposed to most users, who prefer to learn only the minimum necessary. The term also "
                    "tends to connote membership in the global community defined by the net, and implies that the person "
                    "described subscribes to some version of the hacker ethic.\n")
    r = longcat("eval", "--text", text, "--dialogues", heldout, "--mistakes", mistakes, "--json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_eval_summarises_text_and_tool_calls(evaluation):
    [entry] = evaluation["texts"]
    assert evaluation["bits_per_byte"]["text.txt"] == entry["bits_per_byte"] < entry["gzip_bits_per_byte"]
    assert set(evaluation["ffn_experts_by_token_class"]) >= {"function_word", "punctuation"}
    assert evaluation["turns"] == evaluation["call_turns"] + evaluation["no_call_turns"] >= 80
    # What LongCat-Tiny v10 has learned: LongCat's call format wherever a call is due, replies without calls to
    # requests no tool fits, and most of the time the offered tool's name and the request's values.
    assert evaluation["call_made_rate"] >= CALL_MADE_FLOOR, evaluation
    assert evaluation["no_call_turn_accuracy"] >= NO_CALL_FLOOR, evaluation
    assert evaluation["tool_call_accuracy"] >= TURN_ACCURACY_FLOOR, evaluation
    assert evaluation["valid_call_rate"] >= VALID_CALL_FLOOR, evaluation


def test_eval_writes_each_wrong_turn(evaluation, mistakes, heldout):
    wrong = [json.loads(line) for line in mistakes.read_text().splitlines()]
    assert len(wrong) == round(evaluation["turns"] * (1 - evaluation["tool_call_accuracy"]))
    turns = list(expected_turns(heldout))
    for m in wrong:
        messages, _, expected = turns[m["turn"]]
        assert m["request"] == messages[-1]["content"]
        assert len(m["expected_calls"]) == len(expected) and isinstance(m["answer"], str)


def expected_turns(path):
    """(messages before the turn, tools, expected calls as (name, arguments)) for each answer to a user message."""
    for line in path.read_text().splitlines():
        dialogue = json.loads(line)
        messages, tools = dialogue["messages"], dialogue.get("tools") or None
        for i, m in enumerate(messages):
            if m["role"] == "assistant" and messages[i - 1]["role"] == "user":
                calls = sorted((c["function"]["name"], json.dumps(c["function"]["arguments"], sort_keys=True)) for c in m.get("tool_calls", []))
                yield messages[:i], tools, calls


@pytest.fixture(scope="module")
def served(heldout):
    """Each held-out turn answered through `longcat serve` and the official client: (expected calls, calls made)."""
    server = lib.Server(MODEL, name="longcat-tiny")
    try:
        client = OpenAI(base_url=server.base_url + "/v1", api_key="unused", max_retries=0, timeout=120)
        results = []
        for messages, tools, expected in expected_turns(heldout):
            reply = client.chat.completions.create(model="longcat-tiny", messages=messages, tools=tools, temperature=0, max_tokens=160)
            calls = reply.choices[0].message.tool_calls or []
            made = sorted((c.function.name, json.dumps(json.loads(c.function.arguments), sort_keys=True)) for c in calls)
            results.append((expected, made))
        return results
    finally:
        assert server.stop() == 0


def test_tool_calls_through_the_server(served, evaluation):
    call_turns = [(e, m) for e, m in served if e]
    assert len(served) == evaluation["turns"] and len(call_turns) == evaluation["call_turns"]
    assert sum(bool(m) for _, m in call_turns) / len(call_turns) >= CALL_MADE_FLOOR, "calls arrive as message.tool_calls"
    assert sum(not m for e, m in served if not e) / (len(served) - len(call_turns)) >= NO_CALL_FLOOR


@pytest.mark.xfail(strict=True, reason=XFAIL_REASON)
def test_tool_call_accuracy_meets_the_bar(served, evaluation):
    """Issue 18's bar, through `longcat eval` and through the server: >= 80% of turns right, >= 95% valid calls."""
    assert evaluation["tool_call_accuracy"] >= 0.8 and evaluation["valid_call_rate"] >= 0.95, evaluation
    assert sum(e == m for e, m in served) / len(served) >= 0.8
