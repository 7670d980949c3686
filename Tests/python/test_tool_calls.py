"""Tool calls end to end: a model whose weights make it reply `Let me check. <longcat_tool_call>{...}</longcat_tool_call>`
(see longcat_testlib.write_tool_call_model), served by `longcat serve`, read with the official client."""

import json

import pytest
from openai import OpenAI

import longcat_testlib as lib

QUESTION = [{"role": "user", "content": "What is the weather in Paris?"}]


@pytest.fixture(scope="module")
def tool_server(tool_model):
    directory, _ = tool_model
    s = lib.Server(directory, name="tool-caller")
    yield s
    assert s.stop() == 0


@pytest.fixture
def tool_client(tool_server):
    return OpenAI(base_url=tool_server.base_url + "/v1", api_key="unused", max_retries=0, timeout=60)


@pytest.mark.parametrize("temperature", [0, 1.0])
def test_tool_call_becomes_message_tool_calls(tool_client, tool_model, temperature):
    reply = tool_client.chat.completions.create(model="tool-caller", messages=QUESTION, tools=[lib.WEATHER_TOOL], temperature=temperature)
    choice = reply.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content == lib.TOOL_CALL_PREFIX
    [call] = choice.message.tool_calls
    assert call.type == "function" and call.id.startswith("call_")
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "Paris"}
    # Every token the model produced is counted: the reply, its tags, and the end-of-sequence token.
    assert reply.usage.completion_tokens == len(tool_model[1]) + 1


def test_tool_call_streams_as_delta_tool_calls(tool_client):
    stream = tool_client.chat.completions.create(
        model="tool-caller", messages=QUESTION, tools=[lib.WEATHER_TOOL], stream=True, stream_options={"include_usage": True})
    content, calls, finish = "", {}, None
    for chunk in stream:
        for c in chunk.choices:
            content += c.delta.content or ""
            for call in c.delta.tool_calls or []:
                entry = calls.setdefault(call.index, {"id": call.id, "name": "", "arguments": ""})
                entry["name"] += call.function.name or ""
                entry["arguments"] += call.function.arguments or ""
            finish = c.finish_reason or finish
    assert finish == "tool_calls"
    assert content == lib.TOOL_CALL_PREFIX and "<longcat_tool_call>" not in content
    assert list(calls) == [0]
    assert calls[0]["name"] == "get_weather" and json.loads(calls[0]["arguments"]) == {"city": "Paris"}


@pytest.mark.parametrize("temperature", [0, 1.0])
def test_streamed_content_equals_the_whole_replys_content(tool_client, temperature):
    """One rule for content: the streamed deltas add up to `message.content` (no space left before the call)."""
    options = dict(model="tool-caller", messages=QUESTION, tools=[lib.WEATHER_TOOL], temperature=temperature, seed=1)
    whole = tool_client.chat.completions.create(**options).choices[0].message
    content, calls = "", {}
    for chunk in tool_client.chat.completions.create(**options, stream=True):
        for c in chunk.choices:
            content += c.delta.content or ""
            for call in c.delta.tool_calls or []:
                entry = calls.setdefault(call.index, {"name": "", "arguments": ""})
                entry["name"] += call.function.name or ""
                entry["arguments"] += call.function.arguments or ""
    assert content == (whole.content or "")
    assert [(c["name"], c["arguments"]) for c in calls.values()] == [(c.function.name, c.function.arguments) for c in whole.tool_calls]


def test_tool_choice_none_leaves_the_text_alone(tool_client):
    reply = tool_client.chat.completions.create(model="tool-caller", messages=QUESTION, tools=[lib.WEATHER_TOOL], tool_choice="none")
    choice = reply.choices[0]
    assert choice.finish_reason == "stop" and not choice.message.tool_calls
    assert '"get_weather"' in choice.message.content


def test_a_conversation_with_the_tool_result_goes_on(tool_client):
    first = tool_client.chat.completions.create(model="tool-caller", messages=QUESTION, tools=[lib.WEATHER_TOOL])
    call = first.choices[0].message.tool_calls[0]
    messages = QUESTION + [
        {"role": "assistant", "content": None, "tool_calls": [call.model_dump()]},
        {"role": "tool", "tool_call_id": call.id, "content": json.dumps({"temperature_c": 18})},
    ]
    second = tool_client.chat.completions.create(model="tool-caller", messages=messages, tools=[lib.WEATHER_TOOL])
    assert second.usage.prompt_tokens > first.usage.prompt_tokens
    assert second.choices[0].finish_reason == "tool_calls"


def test_required_tool_choice_is_refused_clearly(tool_client):
    import openai

    with pytest.raises(openai.BadRequestError) as error:
        tool_client.chat.completions.create(model="tool-caller", messages=QUESTION, tools=[lib.WEATHER_TOOL], tool_choice="required")
    assert error.value.body["param"] == "tool_choice"
