"""Bad requests get a 4xx with an OpenAI-style error body naming the problem, and never take the server down."""

import json

import pytest

LONG = "lorem ipsum dolor sit amet " * 400  # well over the 1024-token context
USER = [{"role": "user", "content": "hi"}]

# (name, path, body (bytes or a JSON-able object), status, param, code)
CASES = [
    ("invalid JSON", "/v1/chat/completions", b'{"messages": [', 400, None, "invalid_json"),
    ("not an object", "/v1/chat/completions", b"[1, 2, 3]", 400, None, "invalid_json"),
    ("invalid UTF-8", "/v1/chat/completions", b'{"messages": [{"role": "user", "content": "caf\xc3\x28"}]}', 400, None, "invalid_utf8"),
    ("missing messages", "/v1/chat/completions", {"max_tokens": 5}, 400, "messages", "missing_required_parameter"),
    ("messages of the wrong type", "/v1/chat/completions", {"messages": "hi"}, 400, "messages", "invalid_type"),
    ("a message that is not an object", "/v1/chat/completions", {"messages": [42]}, 400, "messages[0]", "invalid_type"),
    ("unknown role", "/v1/chat/completions", {"messages": [{"role": "wizard", "content": "hi"}]}, 400, "messages[0].role", "invalid_value"),
    ("missing content", "/v1/chat/completions", {"messages": [{"role": "user"}]}, 400, "messages[0].content", "missing_required_parameter"),
    ("max_tokens zero", "/v1/chat/completions", {"messages": USER, "max_tokens": 0}, 400, "max_tokens", "invalid_value"),
    ("max_tokens negative", "/v1/completions", {"prompt": "x", "max_tokens": -1}, 400, "max_tokens", "invalid_value"),
    ("max_tokens a string", "/v1/completions", {"prompt": "x", "max_tokens": "many"}, 400, "max_tokens", "invalid_type"),
    ("temperature a string", "/v1/chat/completions", {"messages": USER, "temperature": "warm"}, 400, "temperature", "invalid_type"),
    ("top_p out of range", "/v1/chat/completions", {"messages": USER, "top_p": 1.5}, 400, "top_p", "invalid_value"),
    ("stream not a boolean", "/v1/chat/completions", {"messages": USER, "stream": "yes"}, 400, "stream", "invalid_type"),
    ("prompt over the context", "/v1/completions", {"prompt": LONG}, 400, "prompt", "context_length_exceeded"),
    ("chat over the context", "/v1/chat/completions", {"messages": [{"role": "user", "content": LONG}]}, 400, "messages", "context_length_exceeded"),
    ("token id out of range", "/v1/completions", {"prompt": [1, 5, 123456]}, 400, "prompt", "invalid_value"),
    ("missing prompt", "/v1/completions", {"max_tokens": 3}, 400, "prompt", "missing_required_parameter"),
    ("json_object response format", "/v1/chat/completions", {"messages": USER, "response_format": {"type": "json_object"}}, 400,
     "response_format", "unsupported_parameter"),
    ("model not a string", "/v1/chat/completions", {"messages": USER, "model": 4}, 400, "model", "invalid_type"),
    ("body over 4 MB", "/v1/completions", json.dumps({"prompt": "a" * (5 << 20)}).encode(), 413, None, "request_too_large"),
    ("unknown path", "/v1/embeddings", {"input": "x"}, 404, None, "not_found"),
]


def test_each_bad_request_gets_its_status_and_error_body(server):
    for name, path, body, status, param, code in CASES:
        got, headers, data = server.request("POST", path, body)
        assert got == status, f"{name}: {got} {data[:300]!r}"
        assert headers.get("Content-Type") == "application/json", name
        error = json.loads(data)["error"]
        assert set(error) == {"message", "type", "param", "code"}, name
        assert error["param"] == param and error["code"] == code, f"{name}: {error}"
        assert isinstance(error["message"], str) and len(error["message"]) > 10, name
        assert error["type"] in ("invalid_request_error", "not_found_error"), name
        if param:
            assert param.split("[")[0].split(".")[0] in error["message"], f"{name}: the message names the field: {error['message']}"
    # The server is fine and serves the next request normally.
    assert server.json("GET", "/health") == (200, {"status": "ok"})
    status, body = server.json("POST", "/v1/chat/completions", {"messages": USER, "max_tokens": 5})
    assert status == 200 and body["choices"][0]["message"]["role"] == "assistant"


@pytest.mark.parametrize("payload", [b"", b"null", b"{", b'{"messages": [{"role": "user", "content": "' + b"\xff" * 10 + b'"}]}',
                                     b'{"messages": ' + b"[" * 5000 + b"]" * 5000 + b"}", b'{"prompt": "x", "max_tokens": 9223372036854775807}',
                                     b'{"prompt": [1, -5]}', b'{"prompt": "x", "seed": 1e400}'],
                         ids=["empty", "null", "truncated", "invalid UTF-8", "nested 5000 deep", "max_tokens Int.max", "negative token id",
                              "seed overflow"])
def test_garbage_never_breaks_the_server(server, payload):
    status, _, _ = server.request("POST", "/v1/chat/completions", payload)
    assert status == 400
    assert server.json("GET", "/health")[0] == 200


def test_the_official_client_raises_the_right_errors(client):
    import openai

    with pytest.raises(openai.BadRequestError) as error:
        client.chat.completions.create(model="test-model", messages=USER, max_tokens=0)
    assert error.value.status_code == 400 and error.value.body["param"] == "max_tokens"
    with pytest.raises(openai.NotFoundError):  # any model name is served, but only the served one has a card
        client.models.retrieve("no-such-model")
