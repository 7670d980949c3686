"""A checkpoint trained by `longcat train` loads in Hugging Face transformers (LongcatFlashForCausalLM) and gives the
logits `longcat logits` gives. Not part of CI (PyPI's torch wheel is several GB): run scripts/transformers-roundtrip.sh,
which makes a venv with transformers and torch and runs this file."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "python"))
import longcat_testlib as lib  # noqa: E402

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

TRAIN_TINY = lib.FIXTURES / "train-tiny" / "expected.json"
PROMPTS = [[5, 17, 42, 300, 7, 7, 99, 250], [1, 2, 3]]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("trained") / "out"
    result = subprocess.run(
        [str(lib.BINARY), "train", "--model", str(lib.FIXTURES / "tiny-fp32"), "--out", str(out), "--log", str(out) + ".jsonl",
         "--batches", str(TRAIN_TINY), "--steps", "8", "--lr", "3e-3", "--warmup-steps", "2", "--z-loss", "1e-3",
         "--balance-loss", "1e-2", "--balance-groups", "2", "--target-ffn-experts", "2.25", "--bias-rate", "1e-3"],
        capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    return out


def test_transformers_loads_the_trained_checkpoint_and_agrees(trained):
    model = transformers.AutoModelForCausalLM.from_pretrained(str(trained), dtype=torch.float32)
    model.eval()
    if hasattr(model, "set_experts_implementation"):
        model.set_experts_implementation("eager")
    untrained = json.loads(lib.run_cli("logits", "--model", lib.FIXTURES / "tiny-fp32", "--prompt-ids", "5,17,42", "--json"))
    worst = 0.0
    for prompt in PROMPTS:
        ours = json.loads(lib.run_cli("logits", "--model", trained, "--prompt-ids", ",".join(map(str, prompt)), "--json"))["logits"]
        with torch.no_grad():
            theirs = model(torch.tensor([prompt])).logits[0].double().tolist()
        scale = max(abs(v) for row in theirs for v in row)
        error = max(abs(a - b) for ra, rb in zip(ours, theirs) for a, b in zip(ra, rb))
        worst = max(worst, error / scale)
        print(f"prompt {prompt}: max |longcat - transformers| = {error:.3g} of max |logit| {scale:.3g}")
    assert worst <= 1e-4, worst
    # Training moved the weights: the trained logits are not the fixture's.
    assert untrained["logits"][0] != json.loads(lib.run_cli("logits", "--model", trained, "--prompt-ids", "5,17,42", "--json"))["logits"][0]


def test_transformers_loads_the_shipped_default_model_and_agrees():
    """models/longcat-tiny (bf16 weights, float32 router biases) read as float32 by both."""
    directory = lib.ROOT / "models" / "longcat-tiny"
    model = transformers.AutoModelForCausalLM.from_pretrained(str(directory), dtype=torch.float32)
    model.eval()
    if hasattr(model, "set_experts_implementation"):
        model.set_experts_implementation("eager")
    tokenizer = transformers.AutoTokenizer.from_pretrained(str(directory))
    prompt = tokenizer.apply_chat_template([{"role": "user", "content": "What does hacker mean?"}], add_generation_prompt=True)
    if hasattr(prompt, "keys"):  # a BatchEncoding in recent transformers
        prompt = prompt["input_ids"]
    ours = json.loads(lib.run_cli("logits", "--model", directory, "--prompt-ids", ",".join(map(str, prompt)), "--json"))["logits"]
    with torch.no_grad():
        theirs = model(torch.tensor([prompt])).logits[0].double().tolist()
    scale = max(abs(v) for row in theirs for v in row)
    error = max(abs(a - b) for ra, rb in zip(ours, theirs) for a, b in zip(ra, rb))
    print(f"default model, {len(prompt)} tokens: max |longcat - transformers| = {error:.3g} of max |logit| {scale:.3g}")
    assert error / scale <= 1e-4
    assert [max(range(len(r)), key=r.__getitem__) for r in ours] == [max(range(len(r)), key=r.__getitem__) for r in theirs]
