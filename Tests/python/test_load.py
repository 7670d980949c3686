"""A bounded load test on loopback: 32 concurrent streaming clients, a quarter of which disconnect after two chunks.
Afterwards the server is healthy, /metrics accounts for every request, and the cache accounting is back to zero."""

import asyncio
import time

from openai import AsyncOpenAI

import longcat_testlib as lib

CLIENTS = 32
QUITTERS = 8
TOKENS = 24


def test_32_streaming_clients_some_disconnecting(random_model):
    server = lib.Server(random_model, "--max-concurrent", "8")
    try:
        before = server.metrics()
        results = asyncio.run(asyncio.wait_for(run_clients(server.base_url), timeout=180))
        finished = [r for r in results if r[0] == "finished"]
        quit_early = [r for r in results if r[0] == "quit"]
        assert len(finished) == CLIENTS - QUITTERS and len(quit_early) == QUITTERS
        assert all(r[1] == TOKENS and r[2] == "length" for r in finished), finished

        # The server notices each disconnect and cancels its generation; wait for the books to settle.
        deadline = time.time() + 30
        while True:
            after = server.metrics()

            def delta(name, **labels):
                return lib.metric(after, name, **labels) - lib.metric(before, name, **labels)

            outcomes = {o: sum(delta("longcat_requests_total", endpoint=e, outcome=o) for e in ("chat", "completions"))
                        for o in ("finished", "cancelled", "rejected", "failed")}
            settled = (outcomes["cancelled"] == QUITTERS and lib.metric(after, "longcat_running_sessions") == 0
                       and lib.metric(after, "longcat_waiting_sessions") == 0)
            if settled or time.time() > deadline:
                break
            time.sleep(0.1)
        assert outcomes == {"finished": CLIENTS - QUITTERS, "cancelled": QUITTERS, "rejected": 0, "failed": 0}
        assert delta("longcat_engine_sequences_finished_total") == CLIENTS - QUITTERS
        assert delta("longcat_engine_sequences_cancelled_total") == QUITTERS
        assert lib.metric(after, "longcat_cache_tokens_in_use") == 0
        assert lib.metric(after, "longcat_cache_tokens_reserved") == 0
        assert lib.metric(after, "longcat_running_sessions") == 0 and lib.metric(after, "longcat_waiting_sessions") == 0
        assert delta("longcat_time_to_first_token_seconds_count") == CLIENTS
        assert delta("longcat_generation_tokens_total") >= TOKENS * (CLIENTS - QUITTERS)
        assert lib.metric(after, "longcat_inter_token_latency_seconds_count") > 0
        assert 0 < lib.metric(after, "longcat_ffn_experts_per_token") <= 3

        # Healthy, and serving.
        assert server.json("GET", "/health") == (200, {"status": "ok"})
        status, body = server.json("POST", "/v1/completions", {"prompt": "after the storm", "max_tokens": 4})
        assert status == 200 and body["usage"]["completion_tokens"] >= 1
    finally:
        assert server.stop() == 0


async def run_clients(base_url):
    client = AsyncOpenAI(base_url=base_url + "/v1", api_key="unused", max_retries=0, timeout=120)

    async def one(i):
        quitter = i % (CLIENTS // QUITTERS) == 0
        max_tokens = 400 if quitter else TOKENS  # quitters would run long if they were not cancelled
        common = dict(model="test-model", max_tokens=max_tokens, stream=True, stream_options={"include_usage": True},
                      extra_body={"ignore_eos": True})
        if i % 2:
            stream = await client.chat.completions.create(messages=[{"role": "user", "content": f"client {i}"}], **common)
        else:
            stream = await client.completions.create(prompt=f"client {i} says", **common)
        chunks, usage, finish = 0, None, None
        async for chunk in stream:
            chunks += 1
            usage = chunk.usage or usage
            for c in chunk.choices:
                finish = c.finish_reason or finish
            if quitter and chunks == 3:
                await stream.close()  # hang up mid-stream
                return ("quit", chunks, None)
        return ("finished", usage.completion_tokens, finish)

    try:
        return await asyncio.gather(*(one(i) for i in range(CLIENTS)))
    finally:
        await client.close()

