"""Server lifecycle and protection: API key, a full queue, graceful shutdown on SIGTERM/SIGINT."""

import http.client
import json
import signal
import threading
import time

import openai
import pytest
from openai import OpenAI

import longcat_testlib as lib


def test_api_key_is_required(random_model):
    server = lib.Server(random_model, "--api-key", "sesame")
    try:
        for key in ("wrong", ""):
            bad = OpenAI(base_url=server.base_url + "/v1", api_key=key or "x", max_retries=0)
            with pytest.raises(openai.AuthenticationError) as error:
                bad.completions.create(model="test-model", prompt="hi", max_tokens=2)
            assert error.value.body["code"] == "invalid_api_key"
        assert server.request("POST", "/v1/completions", {"prompt": "hi"})[0] == 401  # no header at all
        good = OpenAI(base_url=server.base_url + "/v1", api_key="sesame", max_retries=0)
        assert good.completions.create(model="test-model", prompt="hi", max_tokens=2).usage.completion_tokens >= 1
        assert server.request("GET", "/health")[0] == 200
    finally:
        assert server.stop() == 0


def open_stream(server, max_tokens):
    """Starts a streamed completion and returns (connection, response) once the first event has arrived."""
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    body = {"prompt": "A long story", "max_tokens": max_tokens, "temperature": 0, "ignore_eos": True, "stream": True}
    connection.request("POST", "/v1/completions", body=json.dumps(body), headers={"Content-Type": "application/json"})
    response = connection.getresponse()
    assert response.status == 200
    assert response.readline().startswith(b"data: ")
    return connection, response


def test_a_full_queue_answers_503_with_retry_after(long_model):
    server = lib.Server(long_model, "--max-concurrent", "1", "--max-queued", "1")
    try:
        running = open_stream(server, 8000)
        waiting = threading.Thread(target=lambda: server.request("POST", "/v1/completions", {"prompt": "wait", "max_tokens": 2}))
        waiting.start()
        deadline = time.time() + 10
        while lib.metric(server.metrics(), "longcat_waiting_sessions") < 1 and time.time() < deadline:
            time.sleep(0.02)
        status, headers, data = server.request("POST", "/v1/completions", {"prompt": "me too", "max_tokens": 2})
        assert status == 503, data
        assert headers.get("Retry-After") == "1"
        assert json.loads(data)["error"]["code"] == "server_busy"
        running[0].close()  # hang up: the running request is cancelled and the waiting one proceeds
        waiting.join(timeout=30)
        assert not waiting.is_alive()
        assert server.request("POST", "/v1/completions", {"prompt": "now", "max_tokens": 2})[0] == 200
    finally:
        assert server.stop() == 0


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_shutdown_drains_in_flight_requests_then_exits_cleanly(random_model, sig):
    server = lib.Server(random_model)
    connection, response = open_stream(server, 900)
    code = None

    def stop():
        nonlocal code
        code = server.stop(sig, timeout=60)

    stopper = threading.Thread(target=stop)
    stopper.start()
    rest = response.read().decode()  # the stream goes on to its end
    events = [e for e in rest.split("\n\n") if e.strip()]
    assert events[-1] == "data: [DONE]"
    assert json.loads(events[-2][len("data: "):])["choices"][0]["finish_reason"] == "length"
    stopper.join(timeout=60)
    assert code == 0
    # Nothing listens any more.
    with pytest.raises(OSError):
        http.client.HTTPConnection("127.0.0.1", server.port, timeout=2).request("GET", "/health")


def test_shutdown_cancels_what_outlasts_the_drain_timeout(long_model):
    server = lib.Server(long_model, "--drain-timeout", "0.5")
    connection, response = open_stream(server, 8000)
    started = time.time()
    assert server.stop(signal.SIGTERM, timeout=30) == 0
    assert time.time() - started < 15
    try:
        rest = response.read().decode(errors="replace")
    except http.client.IncompleteRead as cut:  # the connection closed mid-stream
        rest = cut.partial.decode(errors="replace")
    assert '"finish_reason":"length"' not in rest, "the long generation was cut short"
    connection.close()
