"""Issue 12: the answer's contract survives translation. Structured outputs through the openai and
anthropic SDKs, the Responses API to an Anthropic-kind target, refused contract fields and model
refusals, each against both kinds of provider of `moat demo` (gpt-4o-mini is OpenAI-kind,
claude-haiku Anthropic-kind)."""

import copy
import json
from datetime import datetime
from typing import Literal, Optional

import anthropic
import openai
import pytest
from pydantic import BaseModel, Field

MODELS = ["gpt-4o-mini", "claude-haiku"]
REFUSAL = "I'm sorry, I can't help with that."


class Reading(BaseModel):
    at: datetime
    value: float
    unit: Literal["celsius", "fahrenheit"]


class Forecast(BaseModel):
    city: str
    days: int = Field(ge=1, le=14)
    sunny: bool
    note: Optional[str]
    readings: list[Reading]


def strict_schema(model):
    """The model's JSON schema as strict structured outputs want it: every object closed and with
    every property required (pydantic emits `$defs` and `$ref`, which stay)."""
    schema = copy.deepcopy(model.model_json_schema())

    def close(node):
        if isinstance(node, dict):
            if node.get("type") == "object" and "properties" in node:
                node["additionalProperties"] = False
                node["required"] = list(node["properties"])
            for value in node.values():
                close(value)
        elif isinstance(node, list):
            for value in node:
                close(value)

    close(schema)
    return schema


FORECAST_SCHEMA = strict_schema(Forecast)
CHAT_FORMAT = {"type": "json_schema", "json_schema": {"name": "forecast", "schema": FORECAST_SCHEMA, "strict": True}}
RESPONSES_FORMAT = {"type": "json_schema", "name": "forecast", "schema": FORECAST_SCHEMA, "strict": True}
ANTHROPIC_FORMAT = {"type": "json_schema", "schema": FORECAST_SCHEMA}

WEATHER_TOOL = {
    "type": "function",
    "name": "get_weather",
    "description": "Weather for a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"],
                   "additionalProperties": False},
    "strict": True,
}


@pytest.fixture()
def oai(demo):
    return openai.OpenAI(base_url=demo.base_url, api_key=demo.key, max_retries=0, timeout=20)


@pytest.fixture()
def ant(demo):
    return anthropic.Anthropic(base_url=demo.anthropic_base_url, api_key=demo.key, max_retries=0, timeout=20)


def ask(text="Forecast for Oslo, please."):
    return [{"role": "user", "content": text}]


# 1. The openai SDK asks for structured output.

@pytest.mark.parametrize("model", MODELS)
def test_chat_json_schema_content_validates(oai, model):
    r = oai.chat.completions.create(model=model, messages=ask(), response_format=CHAT_FORMAT)
    message = r.choices[0].message
    assert r.choices[0].finish_reason == "stop"
    assert message.refusal is None
    forecast = Forecast.model_validate_json(message.content)
    assert len(forecast.readings) >= 1
    assert r.usage.completion_tokens > 0


@pytest.mark.parametrize("model", MODELS)
def test_chat_parse_gives_a_model_instance(oai, model):
    r = oai.chat.completions.parse(model=model, messages=ask(), response_format=Forecast)
    parsed = r.choices[0].message.parsed
    assert isinstance(parsed, Forecast)
    assert parsed == Forecast.model_validate_json(r.choices[0].message.content)


@pytest.mark.parametrize("model", MODELS)
def test_chat_stream_parse_joins_deltas_into_an_instance(oai, model):
    with oai.chat.completions.stream(model=model, messages=ask(), response_format=Forecast,
                                     stream_options={"include_usage": True}) as stream:
        deltas = [e.delta for e in stream if e.type == "content.delta"]
        final = stream.get_final_completion()
    assert len(deltas) > 1, "the JSON arrives in several pieces"
    content = final.choices[0].message.content
    assert "".join(deltas) == content
    assert isinstance(final.choices[0].message.parsed, Forecast)
    assert final.choices[0].finish_reason == "stop"
    assert final.usage.completion_tokens > 0


@pytest.mark.parametrize("model", MODELS)
def test_chat_create_stream_with_json_schema(oai, model):
    chunks = list(oai.chat.completions.create(model=model, messages=ask(), response_format=CHAT_FORMAT,
                                              stream=True))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    Forecast.model_validate_json(text)
    assert chunks[-1].choices[0].finish_reason == "stop"


# 2. The anthropic SDK asks for structured output.

@pytest.mark.parametrize("model", MODELS)
def test_messages_output_config_text_validates(ant, model):
    m = ant.messages.create(model=model, max_tokens=1024, messages=ask(),
                            output_config={"format": ANTHROPIC_FORMAT})
    assert m.stop_reason == "end_turn"
    text = next(b.text for b in m.content if b.type == "text")
    Forecast.model_validate_json(text)
    assert m.usage.output_tokens > 0


@pytest.mark.parametrize("model", MODELS)
def test_messages_output_config_streamed(ant, model):
    with ant.messages.stream(model=model, max_tokens=1024, messages=ask(),
                             output_config={"format": ANTHROPIC_FORMAT}) as stream:
        pieces = list(stream.text_stream)
        final = stream.get_final_message()
    assert len(pieces) > 1, "the JSON arrives in several pieces"
    Forecast.model_validate_json("".join(pieces))
    assert final.content[0].text == "".join(pieces)
    assert final.stop_reason == "end_turn"
    assert final.usage.output_tokens > 0


@pytest.mark.parametrize("model", MODELS)
def test_messages_parse_with_output_format(ant, model):
    m = ant.messages.parse(model=model, max_tokens=1024, messages=ask(), output_format=Forecast)
    assert isinstance(m.parsed_output, Forecast)


# 3. The Responses API, to an Anthropic-kind target and to the OpenAI-kind baseline.

@pytest.mark.parametrize("model", MODELS)
def test_responses_plain_text(oai, model):
    r = oai.responses.create(model=model, input="Hello there", instructions="Be brief.", max_output_tokens=16)
    assert r.status in ("completed", "incomplete")
    assert r.output_text
    assert r.usage.input_tokens > 0 and 0 < r.usage.output_tokens <= 16
    assert r.usage.total_tokens == r.usage.input_tokens + r.usage.output_tokens


@pytest.mark.parametrize("model", MODELS)
def test_responses_stream_ends_with_completed_and_usage(oai, model):
    with oai.responses.stream(model=model, input="Stream please") as stream:
        events = list(stream)
        final = stream.get_final_response()
    assert events[0].type == "response.created"
    assert events[-1].type == "response.completed"
    assert events[-1].response.usage.output_tokens > 0
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert text and text == final.output_text
    assert [e.sequence_number for e in events] == sorted(e.sequence_number for e in events)


@pytest.mark.parametrize("model", MODELS)
def test_responses_function_call_round_trip(oai, model):
    items = [{"role": "user", "content": "Weather in Paris?"}]
    r = oai.responses.create(model=model, input=items, tools=[WEATHER_TOOL], tool_choice="required")
    calls = [o for o in r.output if o.type == "function_call"]
    assert len(calls) == 1 and calls[0].name == "get_weather"
    assert "city" in json.loads(calls[0].arguments)
    items += [calls[0].model_dump(exclude_none=True),
              {"type": "function_call_output", "call_id": calls[0].call_id, "output": "sunny, 21C"}]
    r2 = oai.responses.create(model=model, input=items, tools=[WEATHER_TOOL])
    assert r2.status == "completed"
    assert r2.output_text
    assert not [o for o in r2.output if o.type == "function_call"]


@pytest.mark.parametrize("model", MODELS)
def test_responses_function_call_streamed(oai, model):
    with oai.responses.stream(model=model, input="Weather in Rome?", tools=[WEATHER_TOOL],
                              tool_choice="required") as stream:
        events = list(stream)
        final = stream.get_final_response()
    args = "".join(e.delta for e in events if e.type == "response.function_call_arguments.delta")
    assert "city" in json.loads(args)
    call = next(o for o in final.output if o.type == "function_call")
    assert call.name == "get_weather" and call.arguments == args
    assert events[-1].type == "response.completed" and events[-1].response.usage.output_tokens > 0


@pytest.mark.parametrize("model", MODELS)
def test_responses_json_schema_output_text_validates(oai, model):
    r = oai.responses.create(model=model, input=ask(), text={"format": RESPONSES_FORMAT})
    assert r.status == "completed"
    Forecast.model_validate_json(r.output_text)


@pytest.mark.parametrize("model", MODELS)
def test_responses_parse_and_stream_with_text_format(oai, model):
    r = oai.responses.parse(model=model, input=ask(), text_format=Forecast)
    assert isinstance(r.output_parsed, Forecast)
    with oai.responses.stream(model=model, input=ask(), text_format=Forecast) as stream:
        events = list(stream)
        final = stream.get_final_response()
    assert sum(e.type == "response.output_text.delta" for e in events) > 1
    assert isinstance(final.output_parsed, Forecast)
    assert events[-1].type == "response.completed" and events[-1].response.usage.output_tokens > 0


# 4. Contract fields a target cannot honour are refused in the client's protocol; model refusals
# reach each client in its own shape.

def test_openai_logprobs_to_anthropic_target_is_a_400(oai):
    with pytest.raises(openai.BadRequestError) as err:
        oai.chat.completions.create(model="claude-haiku", messages=ask("Hi"), logprobs=True)
    assert err.value.status_code == 400
    assert err.value.code == "unsupported_parameter"
    assert err.value.param == "logprobs"
    assert "'logprobs'" in err.value.message and "claude-haiku" in err.value.message


def test_responses_previous_response_id_to_anthropic_target_is_a_400(oai):
    # moat relays statelessly: a stored conversation cannot be continued on an Anthropic target.
    with pytest.raises(openai.BadRequestError) as err:
        oai.responses.create(model="claude-haiku", input="Go on", previous_response_id="resp_123")
    assert err.value.status_code == 400
    assert err.value.param == "previous_response_id"


def test_anthropic_mcp_servers_to_openai_target_is_a_400(ant):
    # gpt-4.1 has no fallback: no target of its route can run Anthropic's MCP connector.
    servers = [{"type": "url", "url": "https://mcp.example.com/sse", "name": "example"}]
    with pytest.raises(anthropic.BadRequestError) as err:
        ant.messages.create(model="gpt-4.1", max_tokens=64, messages=ask("Hi"),
                            extra_body={"mcp_servers": servers})
    assert err.value.status_code == 400
    assert err.value.body["error"]["type"] == "invalid_request_error"
    assert "'mcp_servers'" in err.value.body["error"]["message"]


def test_a_refused_field_is_served_by_a_fallback_that_can_honour_it(ant):
    # gpt-4o-mini falls back to claude-haiku, an Anthropic target, which can.
    servers = [{"type": "url", "url": "https://mcp.example.com/sse", "name": "example"}]
    raw = ant.messages.with_raw_response.create(model="gpt-4o-mini", max_tokens=64, messages=ask("Hi"),
                                                extra_body={"mcp_servers": servers})
    assert raw.headers["x-moat-provider"] == "sim-anthropic"
    assert raw.parse().content[0].type == "text"


@pytest.mark.parametrize("model", MODELS)
def test_refusal_reaches_the_openai_client(oai, model):
    r = oai.chat.completions.create(model=model, messages=ask("[sim:refuse] Forecast"),
                                    response_format=CHAT_FORMAT)
    message = r.choices[0].message
    assert message.refusal == REFUSAL
    assert message.content is None
    with oai.chat.completions.stream(model=model, messages=ask("[sim:refuse] Forecast"),
                                     response_format=Forecast) as stream:
        final = stream.get_final_completion()
    assert final.choices[0].message.refusal == REFUSAL
    assert final.choices[0].message.parsed is None


@pytest.mark.parametrize("model", MODELS)
def test_refusal_reaches_the_responses_client(oai, model):
    r = oai.responses.create(model=model, input=ask("[sim:refuse] Forecast"), text={"format": RESPONSES_FORMAT})
    parts = [p for o in r.output if o.type == "message" for p in o.content]
    assert [p.type for p in parts] == ["refusal"]
    assert parts[0].refusal == REFUSAL


@pytest.mark.parametrize("model", MODELS)
def test_refusal_reaches_the_anthropic_client(ant, model):
    m = ant.messages.create(model=model, max_tokens=256, messages=ask("[sim:refuse] Forecast"),
                            output_config={"format": ANTHROPIC_FORMAT})
    assert m.stop_reason == "refusal"
    with ant.messages.stream(model=model, max_tokens=256, messages=ask("[sim:refuse] Forecast"),
                             output_config={"format": ANTHROPIC_FORMAT}) as stream:
        final = stream.get_final_message()
    assert final.stop_reason == "refusal"
