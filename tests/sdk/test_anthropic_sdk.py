"""The official `anthropic` Python SDK against moat, changing only base_url and api_key."""

import time

import anthropic
import pytest

WEATHER_TOOL = {
    "name": "get_weather",
    "description": "Weather for a city",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}


@pytest.fixture()
def client(demo):
    return anthropic.Anthropic(base_url=demo.anthropic_base_url, api_key=demo.key, max_retries=0, timeout=20)


@pytest.mark.parametrize("model", ["claude-haiku", "gpt-4o-mini"])
def test_messages_non_stream(client, model):
    m = client.messages.create(model=model, max_tokens=8, system="Be brief.",
                               messages=[{"role": "user", "content": "Hello"}])
    assert m.type == "message" and m.role == "assistant"
    assert m.content[0].type == "text" and m.content[0].text
    assert m.stop_reason in ("end_turn", "max_tokens")
    assert m.usage.input_tokens > 0 and 0 < m.usage.output_tokens <= 8


@pytest.mark.parametrize("model", ["claude-haiku", "gpt-4o-mini"])
def test_messages_stream(client, model):
    with client.messages.stream(model=model, max_tokens=10, messages=[{"role": "user", "content": "Stream"}]) as s:
        text = "".join(s.text_stream)
        final = s.get_final_message()
    assert text and final.content[0].text == text
    assert final.stop_reason in ("end_turn", "max_tokens")
    assert final.usage.output_tokens > 0


@pytest.mark.parametrize("model", ["claude-haiku", "gpt-4o-mini"])
def test_tool_use_round_trip(client, model):
    messages = [{"role": "user", "content": "Weather in Oslo?"}]
    m = client.messages.create(model=model, max_tokens=64, messages=messages, tools=[WEATHER_TOOL],
                               tool_choice={"type": "any"})
    assert m.stop_reason == "tool_use"
    use = next(b for b in m.content if b.type == "tool_use")
    assert use.name == "get_weather" and "city" in use.input
    messages += [{"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in m.content]},
                 {"role": "user", "content": [{"type": "tool_result", "tool_use_id": use.id, "content": "cold"}]}]
    m2 = client.messages.create(model=model, max_tokens=64, messages=messages, tools=[WEATHER_TOOL])
    assert m2.content[0].type == "text"


@pytest.mark.parametrize("model", ["claude-haiku", "gpt-4o-mini"])
def test_tool_use_stream(client, model):
    with client.messages.stream(model=model, max_tokens=64, messages=[{"role": "user", "content": "Weather?"}],
                                tools=[WEATHER_TOOL], tool_choice={"type": "any"}) as s:
        final = s.get_final_message()
    use = next(b for b in final.content if b.type == "tool_use")
    assert use.name == "get_weather" and "city" in use.input
    assert final.stop_reason == "tool_use"


@pytest.mark.parametrize("model", ["claude-haiku", "gpt-4o-mini"])
def test_count_tokens(client, model):
    r = client.messages.count_tokens(model=model, messages=[{"role": "user", "content": "count these words please"}])
    assert r.input_tokens > 0


def test_models_list(client):
    ids = [m.id for m in client.models.list()]
    assert "claude-haiku" in ids and "gpt-4o-mini" in ids


def test_typed_errors(demo, client):
    with pytest.raises(anthropic.AuthenticationError):
        anthropic.Anthropic(base_url=demo.anthropic_base_url, api_key="moat_nope", max_retries=0).messages.create(
            model="claude-haiku", max_tokens=5, messages=[{"role": "user", "content": "x"}])
    with pytest.raises(anthropic.NotFoundError):
        client.messages.create(model="no-such-model", max_tokens=5, messages=[{"role": "user", "content": "x"}])
    with pytest.raises(anthropic.BadRequestError):
        client.messages.create(model="claude-haiku", max_tokens=5, messages="nope")  # type: ignore[arg-type]
    scoped = demo.create_key("--models", "gpt-4o-mini")
    with pytest.raises(anthropic.PermissionDeniedError):
        anthropic.Anthropic(base_url=demo.anthropic_base_url, api_key=scoped["key"], max_retries=0).messages.create(
            model="claude-haiku", max_tokens=5, messages=[{"role": "user", "content": "x"}])


def test_rate_limits_are_the_sdks_rate_limit_error_and_it_retries_per_the_headers(demo):
    key = demo.create_key("--workflow", "demo-agent")["key"]
    ask = dict(model="claude-haiku", max_tokens=4, messages=[{"role": "user", "content": "Hi"}])
    once = anthropic.Anthropic(base_url=demo.anthropic_base_url, api_key=key, max_retries=0, timeout=20)

    def hit_rate_limit():
        for _ in range(150):
            try:
                once.messages.create(**ask)
            except anthropic.RateLimitError as e:
                return e
        return None

    # A 429 met just before the next refill (one request a second) would let the retrying
    # request below through at once and race the test: take one at least 300 ms from a refill.
    err = hit_rate_limit()
    for _ in range(3):
        if err is None or int(err.response.headers["retry-after-ms"]) >= 300:
            break
        time.sleep(int(err.response.headers["retry-after-ms"]) / 1000 + 0.02)
        err = hit_rate_limit()
    assert err is not None, "60 requests a minute never refused"
    assert err.status_code == 429
    assert err.body["error"]["type"] == "rate_limit_error"
    h = err.response.headers
    assert h["anthropic-ratelimit-requests-limit"] == "60"
    assert h["anthropic-ratelimit-requests-remaining"] == "0"
    assert h["anthropic-ratelimit-requests-reset"].endswith("Z")
    assert h["retry-after"] == "1"

    retrying = anthropic.Anthropic(base_url=demo.anthropic_base_url, api_key=key, max_retries=3, timeout=20)
    raw = retrying.messages.with_raw_response.create(**ask)
    assert raw.retries_taken >= 1
    assert raw.parse().content[0].text


def test_an_exhausted_budget_is_a_billing_error_and_never_retried(demo):
    key = demo.create_key("--workflow", "demo-penny")["key"]
    client = anthropic.Anthropic(base_url=demo.anthropic_base_url, api_key=key, max_retries=3, timeout=20)
    started = time.monotonic()
    with pytest.raises(anthropic.APIStatusError) as e:
        client.messages.create(model="claude-haiku", max_tokens=16, messages=[{"role": "user", "content": "Hi"}])
    assert time.monotonic() - started < 1.5
    assert e.value.status_code == 402
    assert e.value.body["error"]["type"] == "billing_error"
    assert e.value.response.headers["x-should-retry"] == "false"
