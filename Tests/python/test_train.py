"""`longcat train` as a user runs it: the train-tiny trajectory through the command line, a log of one JSON line per
step, --stop-after then --resume equal to one run, SIGINT stopping at a step boundary with the state saved."""

import json
import signal
import subprocess
import time

import longcat_testlib as lib

TIMING_KEYS = {"seconds", "tokens_per_second", "mfu"}
TRAIN_TINY = lib.FIXTURES / "train-tiny" / "expected.json"
# train-tiny's hyperparameters (Tests/Fixtures/train-tiny/README.md, part 2).
FLAGS = ["--batches", TRAIN_TINY, "--lr", "3e-3", "--warmup-steps", "2", "--beta1", "0.9", "--beta2", "0.95",
         "--eps", "1e-16", "--weight-decay", "0.1", "--grad-clip", "1", "--z-loss", "1e-3", "--balance-loss", "1e-2",
         "--balance-groups", "2", "--target-ffn-experts", "2.25", "--bias-rate", "1e-3", "--threads", "2"]


def train(*args):
    return subprocess.run([str(lib.BINARY), "train", *map(str, args)], capture_output=True, text=True, timeout=300,
                          stdin=subprocess.DEVNULL)


def log_lines(path):
    lines = path.read_text().splitlines()
    return [json.loads(line) for line in lines]


def without_timing(entries):
    return [{k: v for k, v in e.items() if k not in TIMING_KEYS} for e in entries]


def test_the_train_tiny_trajectory_through_the_command_line(tmp_path):
    result = train("--model", lib.FIXTURES / "tiny-fp32", "--out", tmp_path / "out", "--log", tmp_path / "log.jsonl",
                   "--steps", "8", *FLAGS)
    assert result.returncode == 0, result.stderr
    expected = json.loads(TRAIN_TINY.read_text())["steps"]
    entries = log_lines(tmp_path / "log.jsonl")
    assert [e["step"] for e in entries] == list(range(8))
    for got, want in zip(entries, expected):
        for key in ("ce_loss", "z_loss", "balance_loss", "total_loss"):
            assert abs(got[key] - want[key]) <= 1e-5 * abs(want[key]), (got["step"], key)
        for key in ("grad_norm", "clip_scale"):
            assert abs(got[key] - want[key]) <= 1e-4 * abs(want[key]), (got["step"], key)
        assert [layer["expert_counts"] for layer in got["layers"]] == [layer["expert_counts"] for layer in want["layers"]]
        for g, w in zip(got["layers"], want["layers"]):
            assert max(abs(a - b) for a, b in zip(g["bias_after"], w["bias_after"])) <= 1e-6
        assert got["tokens_per_second"] > 0
    # What it wrote is a checkpoint the other commands load.
    logits = json.loads(lib.run_cli("logits", "--model", tmp_path / "out", "--prompt-ids", "5,17,42", "--json"))
    assert len(logits["logits"]) == 3


def test_stop_after_then_resume_equals_one_run(tmp_path):
    straight, split = tmp_path / "straight", tmp_path / "split"
    assert train("--model", lib.FIXTURES / "tiny-fp32", "--out", straight, "--log", tmp_path / "a.jsonl", "--steps", "6", *FLAGS).returncode == 0
    first = train("--model", lib.FIXTURES / "tiny-fp32", "--out", split, "--log", tmp_path / "b.jsonl", "--steps", "6",
                  "--stop-after", "3", *FLAGS)
    assert first.returncode == 0, first.stderr
    assert "--resume" in first.stderr
    second = train("--resume", "--out", split, "--log", tmp_path / "b.jsonl", "--steps", "6", *FLAGS)
    assert second.returncode == 0, second.stderr
    for name in ["model.safetensors", "trainer_state/optimizer.safetensors", "trainer_state/state.json", "config.json"]:
        assert (straight / name).read_bytes() == (split / name).read_bytes(), name
    assert without_timing(log_lines(tmp_path / "a.jsonl")) == without_timing(log_lines(tmp_path / "b.jsonl"))


def test_sigint_stops_at_a_step_boundary_with_the_state_saved(tmp_path):
    out, log = tmp_path / "out", tmp_path / "log.jsonl"
    process = subprocess.Popen([str(lib.BINARY), "train", "--model", lib.FIXTURES / "tiny-fp32", "--out", out, "--log", log,
                                "--steps", "100000", "--save-every", "0", *map(str, FLAGS)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and (not log.exists() or len(log.read_text().splitlines()) < 2):
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 0, stderr
    assert "interrupted" in stderr
    steps = len(log_lines(log))
    state = json.loads((out / "trainer_state" / "state.json").read_text())
    assert state["step"] == steps >= 2
    # The run continues from there, and its log keeps one line per step.
    resumed = train("--resume", "--out", out, "--log", log, "--steps", str(steps + 2), *FLAGS)
    assert resumed.returncode == 0, resumed.stderr
    assert [e["step"] for e in log_lines(log)] == list(range(steps + 2))


def test_bad_training_input_is_named(tmp_path):
    (tmp_path / "bad.json").write_text('{"steps": [{"input_ids": [[5, 999999]]}]}')
    result = train("--model", lib.FIXTURES / "tiny-fp32", "--out", tmp_path / "out", "--log", tmp_path / "log.jsonl",
                   "--steps", "2", "--batches", tmp_path / "bad.json")
    assert result.returncode != 0
    assert "999999" in result.stderr
    result = train("--model", lib.FIXTURES / "tiny-fp32", "--out", tmp_path / "out2", "--log", tmp_path / "log.jsonl",
                   "--steps", "2", "--batches", TRAIN_TINY, "--balance-groups", "3")
    assert result.returncode == 64 and "balance-groups" in result.stderr
    result = train("--model", lib.FIXTURES / "tiny-fp32", "--out", tmp_path / "out3", "--log", tmp_path / "log.jsonl",
                   "--steps", "2", "--batches", TRAIN_TINY, "--mtp-targets", "model")
    assert result.returncode == 64 and "--mtp-targets needs" in result.stderr
    result = train("--resume", "--out", tmp_path / "nothing", "--log", tmp_path / "log.jsonl", "--steps", "2", "--batches", TRAIN_TINY)
    assert result.returncode != 0 and "state.json" in result.stderr


def test_training_on_text_data_with_evaluation_resumes_exactly(tmp_path, random_model):
    """--data: fortune records packed into windows in a seeded order, a held-out share evaluated into the log;
    stopping and resuming gives the same files as one run."""
    words = "the cat sat on a mat and then it ran far away from home over the hills".split()
    records = [" ".join(words[(i * 7 + j) % len(words)] for j in range(5 + i % 20)) for i in range(200)]
    data = tmp_path / "sayings"
    data.write_text("\n%\n".join(records) + "\n")
    flags = ["--data", data, "--seq-len", "32", "--batch-size", "4", "--steps", "6", "--lr", "3e-3", "--eval-every", "2",
             "--seed", "5", "--z-loss", "1e-4", "--balance-loss", "1e-2"]
    one, two = tmp_path / "one", tmp_path / "two"
    result = train("--model", random_model, "--out", one, "--log", tmp_path / "one.jsonl", *flags)
    assert result.returncode == 0, result.stderr
    entries = log_lines(tmp_path / "one.jsonl")
    assert [e["step"] for e in entries] == list(range(6))
    assert [("eval_loss" in e) for e in entries] == [False, True, False, True, False, True]
    assert all(0 < e["eval_bits_per_byte"] < e["eval_loss"] for e in entries if "eval_loss" in e)
    assert entries[-1]["ce_loss"] < entries[0]["ce_loss"]
    assert train("--model", random_model, "--out", two, "--log", tmp_path / "two.jsonl", "--stop-after", "3", *flags).returncode == 0
    resumed = train("--resume", "--out", two, "--log", tmp_path / "two.jsonl", *flags)
    assert resumed.returncode == 0, resumed.stderr
    for name in ["model.safetensors", "trainer_state/optimizer.safetensors", "trainer_state/state.json"]:
        assert (one / name).read_bytes() == (two / name).read_bytes(), name
    assert without_timing(entries) == without_timing(log_lines(tmp_path / "two.jsonl"))
    # Another seed is another order, which resuming refuses.
    other = train("--resume", "--out", two, "--log", tmp_path / "two.jsonl", *flags[:-6], "--seed", "6", *flags[-4:])
    assert other.returncode == 65 and "data" in other.stderr, other.stderr


def test_fitting_the_mtp_head_alone_keeps_the_model_and_drafts_for_speculation(tmp_path, random_model):
    """--train-only mtp: the head's loss falls, the model's logits stay bit for bit, and the result decodes with
    --speculative mtp to the same greedy tokens as without."""
    data = tmp_path / "text"
    data.write_text(("one two three four five six seven eight nine ten. " * 40 + "\n") * 20)
    out = tmp_path / "head"
    result = train("--model", random_model, "--out", out, "--log", tmp_path / "head.jsonl", "--data", data, "--seq-len", "64",
                   "--batch-size", "4", "--steps", "24", "--lr", "1e-2", "--train-only", "mtp")
    assert result.returncode == 0, result.stderr
    entries = log_lines(tmp_path / "head.jsonl")
    assert all(e["total_loss"] == e["mtp_loss"] for e in entries)
    # A random model's lm_head has little room (σ 0.02): the head gains about a nat in these steps.
    assert entries[-1]["mtp_loss"] < entries[0]["mtp_loss"] - 1
    logits = [lib.run_cli("logits", "--model", m, "--prompt-ids", "1,5,9,300", "--json") for m in (random_model, out)]
    assert logits[0] == logits[1], "the model's weights did not move"
    # Stopped and resumed (the frozen model has no optimizer moments to save), the same files as one run.
    flags = ["--log", tmp_path / "two.jsonl", "--data", data, "--seq-len", "64", "--batch-size", "4", "--steps", "24", "--lr", "1e-2",
             "--train-only", "mtp"]
    two = tmp_path / "two"
    assert train("--model", random_model, "--out", two, "--stop-after", "10", *flags).returncode == 0
    resumed = train("--resume", "--out", two, *flags)
    assert resumed.returncode == 0, resumed.stderr
    for name in ["model.safetensors", "trainer_state/optimizer.safetensors"]:
        assert (out / name).read_bytes() == (two / name).read_bytes(), name
    prompt = ["generate", "--model", out, "--prompt-ids", "1,5,9,300,17", "--max-tokens", "40", "--ignore-eos", "--json"]
    plain = json.loads(lib.run_cli(*prompt))
    speculative = json.loads(lib.run_cli(*prompt, "--speculative", "mtp"))
    assert speculative["tokens"] == plain["tokens"]
    assert speculative["speculative"]["drafted"] > 0 and "speculative" not in plain


def test_a_recipe_holds_the_options_and_the_command_line_overrides_it(tmp_path):
    recipe = {"lr": 3e-3, "warmup_steps": 2, "z_loss": 1e-3, "balance_loss": 1e-2, "balance_groups": 2,
              "target_ffn_experts": 2.25, "bias_rate": 1e-3, "steps": 8, "batches": str(TRAIN_TINY), "threads": 2}
    (tmp_path / "recipe.json").write_text(json.dumps(recipe))
    out = tmp_path / "out"
    result = train("--recipe", tmp_path / "recipe.json", "--model", lib.FIXTURES / "tiny-fp32", "--out", out,
                   "--log", tmp_path / "log.jsonl", "--steps", "3", "--lr-embedding", "1e-3")
    assert result.returncode == 0, result.stderr
    entries = log_lines(tmp_path / "log.jsonl")
    assert len(entries) == 3, "--steps on the command line wins"
    # Steps 0 and 1 follow train-tiny (the embedding's rate only changes the weights after step 0's update).
    expected = json.loads(TRAIN_TINY.read_text())["steps"]
    assert abs(entries[0]["total_loss"] - expected[0]["total_loss"]) <= 1e-5 * expected[0]["total_loss"]
    used = json.loads((out / "recipe.json").read_text())
    assert used["steps"] == 3 and used["lr"] == 3e-3 and used["lr_embedding"] == 1e-3 and used["z_loss"] == 1e-3
    (tmp_path / "bad.json").write_text('{"lr": {"nested": 1}}')
    bad = train("--recipe", tmp_path / "bad.json", "--model", lib.FIXTURES / "tiny-fp32", "--out", tmp_path / "o2", "--log", tmp_path / "l2.jsonl")
    assert bad.returncode == 65 and "lr" in bad.stderr
