"""`longcat train-tokenizer`: the tokenizer.json it writes loads in Hugging Face `tokenizers` and gives the same ids as
longcat's own tokenizer on the whole training corpus (the repository's documentation: English prose, code, tables,
and the fixture tokenizer's test texts, Chinese among them); transformers' chat-template engine renders its template."""

import json
import unicodedata

from tokenizers import Tokenizer

import longcat_testlib as lib

CORPUS = [lib.ROOT / name for name in ("README.md", "TRAINING.md", "BENCHMARKS.md", "docs/DESIGN.md")]


def test_trained_tokenizer_matches_tokenizers_on_its_corpus(tmp_path):
    cases = json.loads((lib.TOKENIZER_DIR / "expected.json").read_text())["cases"]
    (tmp_path / "cases.txt").write_text("\n".join(c["text"] for c in cases))
    files = CORPUS + [tmp_path / "cases.txt"]
    out = tmp_path / "tok"
    lib.run_cli("train-tokenizer", "--data", *files, "--data-format", "text", "--vocab-size", "1200", "--out", out)
    hf = Tokenizer.from_file(str(out / "tokenizer.json"))
    assert hf.get_vocab_size(with_added_tokens=True) == 1200
    assert [hf.token_to_id(t) for t in ("<unk>", "<s>", "</s>", "<pad>")] == [0, 1, 2, 3]
    assert hf.token_to_id("<longcat_tool_call>") == 1194
    tokens = 0
    for path in files:
        text = path.read_bytes().decode("utf-8")  # as stored: read_text would turn \r\n into \n
        ours = json.loads(lib.run_cli("tokenize", "--tokenizer", out, "--file", path, "--json"))["ids"]
        theirs = hf.encode(text, add_special_tokens=False).ids
        assert ours == theirs, path
        assert hf.decode(theirs, skip_special_tokens=False) == unicodedata.normalize("NFC", text)
        tokens += len(theirs)
    # Merges were learned: far fewer tokens than bytes.
    assert tokens < 0.5 * sum(len(p.read_bytes()) for p in files)


def test_the_written_template_renders_tools_calls_and_results(tmp_path):
    out = tmp_path / "tok"
    lib.run_cli("train-tokenizer", "--data", lib.ROOT / "README.md", "--vocab-size", "400", "--out", out)
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}]
    messages = [{"role": "user", "content": "Weather in Oslo?"},
                {"role": "assistant", "content": "", "tool_calls": [{"type": "function", "function": {"name": "get_weather", "arguments": {"city": "Oslo"}}}]},
                {"role": "tool", "content": "4 degrees"}]
    rendered = lib.render_chat_template(out / "tokenizer_config.json", messages, tools)
    assert "get_weather" in rendered.split("USER:")[0]
    assert '<longcat_tool_call>{"name": "get_weather", "arguments": {"city": "Oslo"}}</longcat_tool_call></s>' in rendered
    assert rendered.endswith("[Round 1] USER:<longcat_tool_response>4 degrees</longcat_tool_response> ASSISTANT:")


def test_the_merges_are_those_of_the_tokenizers_bpe_trainer(tmp_path):
    """Same normalizer, pre-tokenizer, special tokens, size and minimum frequency: the same merges, in the same order."""
    from tokenizers import Regex, models, normalizers, pre_tokenizers, trainers

    out = tmp_path / "tok"
    lib.run_cli("train-tokenizer", "--data", *CORPUS, "--data-format", "text", "--vocab-size", "1500", "--out", out)
    ours = json.loads((out / "tokenizer.json").read_text())
    theirs = Tokenizer(models.BPE())
    theirs.normalizer = normalizers.NFC()
    split = ours["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"]
    theirs.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Split(Regex(split), behavior="isolated"),
                                                    pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    trainer = trainers.BpeTrainer(vocab_size=1500 - 6, min_frequency=2, special_tokens=["<unk>", "<s>", "</s>", "<pad>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    theirs.train_from_iterator([p.read_bytes().decode("utf-8") for p in CORPUS], trainer)
    model = json.loads(theirs.to_str())["model"]
    assert [list(m) if isinstance(m, list) else m.split(" ") for m in model["merges"]] == ours["model"]["merges"]
    assert model["vocab"] == ours["model"]["vocab"]
