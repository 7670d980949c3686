"""The `longcat` command line as a user meets it: help and version print and exit 0, and each kind of mistake
exits with its documented status (64 usage, 65 bad input data) and a message that names it."""

import json
import subprocess

import pytest

import longcat_testlib as lib


def longcat(*args):
    return subprocess.run([str(lib.BINARY), *map(str, args)], capture_output=True, text=True, timeout=120,
                          stdin=subprocess.DEVNULL)


@pytest.mark.parametrize("args, title", [
    (["--help"], "Run LongCat-Flash mixture-of-experts models"),
    (["-h"], "Run LongCat-Flash mixture-of-experts models"),
    (["bench", "--help"], "longcat bench"),
    (["help", "quantize"], "longcat quantize"),
    (["serve", "-h"], "longcat serve"),
])
def test_help_prints_usage_and_exits_0(args, title):
    result = longcat(*args)
    assert result.returncode == 0, result.stderr
    assert "USAGE:" in result.stdout and title in result.stdout, result.stdout
    assert "CommandError" not in result.stdout + result.stderr


def test_version_prints_the_version():
    result = longcat("--version")
    assert result.returncode == 0
    assert result.stdout.strip().count(".") == 2, result.stdout


def test_usage_errors_exit_64_with_the_usage():
    result = longcat("generate", "--model", lib.FIXTURES / "tiny-fp32", "--prompt-ids", "1", "--no-such-option")
    assert result.returncode == 64
    assert "--no-such-option" in result.stderr and "Usage:" in result.stderr


def test_a_malformed_config_exits_65_and_names_the_file(tmp_path):
    (tmp_path / "config.json").write_text("{ not json")
    result = longcat("inspect", "--model", tmp_path)
    assert result.returncode == 65, result.stderr
    assert "config.json" in result.stderr


def test_a_missing_model_directory_is_named(tmp_path):
    result = longcat("generate", "--model", tmp_path / "absent", "--prompt", "hi")
    assert result.returncode != 0
    assert "absent" in result.stderr


def test_inspect_json_is_one_object(tmp_path):
    config = json.loads((lib.FIXTURES / "tiny-ngram" / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps(config))
    result = longcat("inspect", "--model", tmp_path / "config.json", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["ngram_embedding_params"] > 0 and report["total_parameters"] > report["ngram_embedding_params"]


def test_init_copies_a_tokenizer_that_fits_and_refuses_one_that_does_not(tmp_path):
    config = json.loads((lib.FIXTURES / "tiny-fp32" / "config.json").read_text())
    config["vocab_size"] = 4006
    (tmp_path / "fits.json").write_text(json.dumps(config))
    result = longcat("init", "--config", tmp_path / "fits.json", "--out", tmp_path / "model", "--tokenizer", lib.TOKENIZER_DIR)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "model" / "tokenizer.json").read_bytes() == (lib.TOKENIZER_DIR / "tokenizer.json").read_bytes()
    ids = json.loads(longcat("tokenize", "--tokenizer", tmp_path / "model", "--text", "hello", "--json").stdout)
    assert ids
    small = longcat("init", "--config", lib.FIXTURES / "tiny-fp32" / "config.json", "--out", tmp_path / "small", "--tokenizer", lib.TOKENIZER_DIR)
    assert small.returncode == 65 and "vocab_size" in small.stderr
    assert not (tmp_path / "small").exists(), "nothing is written when the tokenizer does not fit"


def test_init_transfers_from_a_proxy_and_writes_the_learning_rates(tmp_path):
    proxy = json.loads((lib.FIXTURES / "tiny-fp32" / "config.json").read_text())
    target = dict(proxy, hidden_size=proxy["hidden_size"] * 4)
    (tmp_path / "proxy.json").write_text(json.dumps(proxy))
    (tmp_path / "target.json").write_text(json.dumps(target))
    result = longcat("init", "--config", tmp_path / "target.json", "--out", tmp_path / "model", "--dtype", "f32",
                     "--proxy-config", tmp_path / "proxy.json", "--init-std", "0.1", "--proxy-lr", "8e-3",
                     "--recipe-out", tmp_path / "recipe.json")
    assert result.returncode == 0, result.stderr
    assert json.loads((tmp_path / "recipe.json").read_text()) == {"lr": 2e-3, "lr_embedding": 8e-3}
    assert "s = 4" in result.stderr
    lonely = longcat("init", "--config", tmp_path / "target.json", "--out", tmp_path / "m2", "--recipe-out", tmp_path / "r2.json")
    assert lonely.returncode == 64


def test_generation_config_gives_the_sampling_defaults_and_options_override_them(tmp_path):
    model = lib.write_random_model(tmp_path / "model")
    def tokens(*options):
        r = longcat("generate", "--model", model, "--prompt", "hello hello hello", "--max-tokens", 24, "--json", *options)
        assert r.returncode == 0, r.stderr
        return json.loads(r.stdout)["tokens"]
    plain, penalised = tokens(), tokens("--repetition-penalty", 3)
    assert plain != penalised, "a strong repetition penalty changes a random model's greedy tokens"
    config = model / "generation_config.json"
    settings = json.loads(config.read_text())
    config.write_text(json.dumps({**settings, "repetition_penalty": 3}))
    assert tokens() == penalised
    assert tokens("--repetition-penalty", 1) == plain
    config.write_text(json.dumps({**settings, "repetition_penalty": 3, "do_sample": True, "temperature": 1.5}))
    assert tokens() == tokens("--repetition-penalty", 3, "--temperature", 1.5) != penalised
    config.write_text(json.dumps({**settings, "repetition_penalty": 3, "temperature": 1.5}))
    assert tokens() == penalised, "without do_sample the temperature is not a default (Hugging Face's reading)"
    for bad in ({"repetition_penalty": -1}, {"repetition_penalty": "high"}, {"do_sample": True, "top_p": 2}):
        config.write_text(json.dumps({**settings, **bad}))
        r = longcat("generate", "--model", model, "--prompt", "hi", "--max-tokens", 2)
        assert r.returncode != 0 and "generation_config.json" in r.stderr and next(iter(bad.keys() - {"do_sample"})) in r.stderr, r.stderr
