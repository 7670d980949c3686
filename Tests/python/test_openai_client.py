"""The official `openai` client against `longcat serve`: chat and completions, streamed and not, stop strings,
seeded sampling, logprobs, and usage counts checked against an independent tokenizer (Hugging Face `tokenizers`
and the chat template rendered by jinja2 the way transformers renders it). Every check runs against a server
decoding plainly and one decoding with MTP speculation (`--speculative mtp`)."""

import json

import pytest
from tokenizers import Tokenizer

import longcat_testlib as lib

GREEDY = {"temperature": 0, "extra_body": {"ignore_eos": True}}


@pytest.fixture(scope="module", params=["none", "mtp"], ids=["plain", "speculative"])
def server(request, random_model):
    s = lib.Server(random_model, "--speculative", request.param)
    s.speculative = request.param
    yield s
    assert s.stop() == 0, "the server must exit cleanly on SIGTERM"


@pytest.fixture(scope="module")
def hf_tokenizer():
    return Tokenizer.from_file(str(lib.TOKENIZER_DIR / "tokenizer.json"))


def render_chat(messages, tools=None):
    """transformers' apply_chat_template(..., tokenize=False, add_generation_prompt=True)."""
    return lib.render_chat_template(lib.TOKENIZER_DIR / "tokenizer_config.json", messages, tools)


def test_models_lists_the_served_name(client, server):
    models = client.models.list()
    assert [m.id for m in models.data] == ["test-model"]
    assert server.json("GET", "/health") == (200, {"status": "ok"})


def test_any_model_name_is_answered_under_the_served_name(client):
    # A single-model server accepts whatever model a client names, as llama-server does.
    reply = client.chat.completions.create(model="anything-else", messages=[{"role": "user", "content": "hi"}], max_tokens=3)
    assert reply.model == "test-model" and reply.choices[0].message.role == "assistant"
    chunks = list(client.completions.create(model="gpt-4o", prompt="Once", max_tokens=3, stream=True))
    assert chunks and all(c.model == "test-model" for c in chunks)


def test_chat_completion_usage_matches_the_tokenizer(client, hf_tokenizer):
    messages = [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Name three colours."}]
    reply = client.chat.completions.create(model="test-model", messages=messages, max_tokens=12, logprobs=True, top_logprobs=2, **GREEDY)
    choice = reply.choices[0]
    assert reply.object == "chat.completion" and choice.message.role == "assistant"
    assert choice.finish_reason == "length"
    prompt_ids = hf_tokenizer.encode(render_chat(messages), add_special_tokens=False).ids
    assert reply.usage.prompt_tokens == len(prompt_ids)
    assert reply.usage.completion_tokens == 12 == len(choice.logprobs.content)
    assert reply.usage.total_tokens == len(prompt_ids) + 12
    assert all(len(entry.top_logprobs) == 2 and entry.logprob <= 0 for entry in choice.logprobs.content)
    # The reply's text is its tokens' text (when no character is split across tokens).
    pieces = [entry.token for entry in choice.logprobs.content]
    if not any("\ufffd" in p for p in pieces):
        assert "".join(pieces) == choice.message.content


def test_chat_stream_matches_the_whole_reply(client):
    messages = [{"role": "user", "content": "Tell me a story."}]
    whole = client.chat.completions.create(model="test-model", messages=messages, max_tokens=20, **GREEDY)
    stream = client.chat.completions.create(
        model="test-model", messages=messages, max_tokens=20, stream=True, stream_options={"include_usage": True}, **GREEDY)
    text, finish, usage, roles = "", None, None, []
    for chunk in stream:
        assert chunk.object == "chat.completion.chunk"
        if chunk.usage:
            usage = chunk.usage
        for c in chunk.choices:
            if c.delta.role:
                roles.append(c.delta.role)
            text += c.delta.content or ""
            finish = c.finish_reason or finish
    assert roles == ["assistant"]
    assert text == whole.choices[0].message.content
    assert finish == "length"
    assert usage.completion_tokens == 20 and usage.prompt_tokens == whole.usage.prompt_tokens


def test_completions_streamed_and_not_with_text_and_token_prompts(client, hf_tokenizer):
    prompt = "The quick brown fox jumps over the lazy dog"
    whole = client.completions.create(model="test-model", prompt=prompt, max_tokens=16, **GREEDY)
    assert whole.object == "text_completion"
    assert whole.usage.prompt_tokens == len(hf_tokenizer.encode(prompt).ids)
    assert whole.usage.completion_tokens == 16 and whole.choices[0].finish_reason == "length"
    streamed = "".join(c.choices[0].text for c in client.completions.create(
        model="test-model", prompt=prompt, max_tokens=16, stream=True, **GREEDY) if c.choices)
    assert streamed == whole.choices[0].text
    # The same prompt as token ids gives the same completion.
    by_ids = client.completions.create(model="test-model", prompt=hf_tokenizer.encode(prompt).ids, max_tokens=16, **GREEDY)
    assert by_ids.choices[0].text == whole.choices[0].text


def test_tokenize_counts_like_the_tokenizer(server, hf_tokenizer):
    text = "Hello, world! Ünïcödé text 你好"
    status, body = server.json("POST", "/tokenize", {"prompt": text})
    assert status == 200 and body["tokens"] == hf_tokenizer.encode(text).ids and body["count"] == len(body["tokens"])
    status, body = server.json("POST", "/detokenize", {"tokens": body["tokens"]})
    assert status == 200 and body["prompt"] == text


@pytest.mark.parametrize("endpoint", ["chat", "completions"])
def test_stop_strings_cut_the_text_before_them(client, endpoint):
    def run(**kwargs):
        if endpoint == "chat":
            r = client.chat.completions.create(
                model="test-model", messages=[{"role": "user", "content": "Keep talking"}], max_tokens=24, **GREEDY, **kwargs)
            return r.choices[0].message.content, r.choices[0].finish_reason
        r = client.completions.create(model="test-model", prompt="Keep talking", max_tokens=24, **GREEDY, **kwargs)
        return r.choices[0].text, r.choices[0].finish_reason

    free, _ = run()
    assert len(free) > 12
    stop = free[8:11]
    cut, finish = run(stop=[stop, "zzz-never"])
    assert finish == "stop"
    assert cut == free[: free.index(stop)]
    single, _ = run(stop=stop)  # a plain string works too
    assert single == cut


def test_seeded_sampling_repeats_across_calls(client):
    def sample(seed, n=1):
        r = client.chat.completions.create(
            model="test-model", messages=[{"role": "user", "content": "Surprise me"}], max_tokens=16, temperature=1.0,
            top_p=0.95, seed=seed, n=n, extra_body={"ignore_eos": True})
        return [c.message.content for c in r.choices]

    first = sample(1234)
    assert sample(1234) == first, "same seed, same text"
    assert sample(4321) != first
    pair = sample(1234, n=2)
    assert len(pair) == 2 and pair[0] == first[0] and pair[1] != pair[0]


def test_completion_logprobs_are_per_token(client):
    r = client.completions.create(model="test-model", prompt="Probabilities", max_tokens=6, logprobs=3, **GREEDY)
    lp = r.choices[0].logprobs
    assert len(lp.tokens) == len(lp.token_logprobs) == len(lp.top_logprobs) == 6
    if not any("\ufffd" in t for t in lp.tokens):
        assert "".join(lp.tokens) == r.choices[0].text
    assert all(len(top) <= 3 for top in lp.top_logprobs)
    # Greedy: the chosen token is the most likely one.
    assert all(abs(max(top.values()) - value) < 1e-5 for top, value in zip(lp.top_logprobs, lp.token_logprobs))


def test_penalties_bias_and_sampling_fields_are_accepted(client):
    r = client.completions.create(
        model="test-model", prompt="Fields", max_tokens=4, temperature=0.8, top_p=0.9, presence_penalty=0.5,
        frequency_penalty=0.5, seed=3, logit_bias={"1871": 5},
        extra_body={"top_k": 40, "min_p": 0.01, "repetition_penalty": 1.1, "ignore_eos": True})
    assert r.usage.completion_tokens == 4
    # A +100 bias makes token 1871 ("name") the pick at every step.
    forced = client.completions.create(model="test-model", prompt="Fields", max_tokens=3, temperature=0, logit_bias={"1871": 100},
                                       extra_body={"ignore_eos": True})
    assert forced.choices[0].text == "namenamename"


def test_speculation_per_request_keeps_greedy_replies_and_counts_drafts(client, server):
    """A request may choose speculation itself; greedy replies are the same either way, and /metrics counts the drafts
    verified and accepted."""
    def metric(name):
        status, _, body = server.request("GET", "/metrics")
        assert status == 200
        return float(next(line.split()[-1] for line in body.decode().splitlines() if line.startswith(name + " ")))

    drafted = metric("longcat_spec_drafted_total")
    replies = {}
    for mode in ("none", "mtp"):
        r = client.completions.create(model="test-model", prompt="The quick brown fox", max_tokens=60, temperature=0,
                                      extra_body={"ignore_eos": True, "speculative": mode})
        replies[mode] = r.choices[0].text
    assert replies["none"] == replies["mtp"]
    assert metric("longcat_spec_drafted_total") >= drafted + 30, "a speculative request verifies a draft per step"
    assert metric("longcat_spec_accepted_total") <= metric("longcat_spec_drafted_total")
    status, _, body = server.request("POST", "/v1/completions", body={"model": "m", "prompt": "x", "speculative": "eagle"})
    assert status == 400 and b"speculative" in body
