"""The official `openai` Python SDK against moat, changing only base_url and api_key."""

import json
import time

import openai
import pytest

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


@pytest.fixture()
def client(demo):
    return openai.OpenAI(base_url=demo.base_url, api_key=demo.key, max_retries=0, timeout=20)


@pytest.mark.parametrize("model", ["gpt-4o-mini", "claude-haiku"])
def test_chat_non_stream(client, model):
    r = client.chat.completions.create(model=model, messages=[{"role": "user", "content": "Hello there"}], max_tokens=8)
    text = r.choices[0].message.content
    assert text and len(text.split()) <= 8 + 4
    assert r.choices[0].finish_reason in ("stop", "length")
    assert r.usage.prompt_tokens > 0 and 0 < r.usage.completion_tokens <= 8
    assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens


@pytest.mark.parametrize("model", ["gpt-4o-mini", "claude-haiku"])
def test_chat_stream_with_and_without_usage(client, model):
    plain = list(client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": "Stream please"}], stream=True, max_tokens=6))
    assert all(c.usage is None for c in plain), "usage chunk must not reach a client that did not ask"
    assert plain[-1].choices[0].finish_reason in ("stop", "length")
    text = "".join(c.choices[0].delta.content or "" for c in plain if c.choices)
    assert text.strip()
    assert len({c.id for c in plain}) == 1, "every chunk carries the same id"

    with_usage = list(client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": "Stream please"}], stream=True, max_tokens=6,
        stream_options={"include_usage": True}))
    assert with_usage[-1].choices == [] and with_usage[-1].usage.completion_tokens > 0
    text2 = "".join(c.choices[0].delta.content or "" for c in with_usage if c.choices)
    assert text2 == text, "the simulated provider is deterministic"


@pytest.mark.parametrize("model", ["gpt-4o-mini", "claude-haiku"])
def test_tools_round_trip(client, model):
    messages = [{"role": "user", "content": "Weather in Paris?"}]
    r = client.chat.completions.create(model=model, messages=messages, tools=[WEATHER_TOOL], tool_choice="required")
    call = r.choices[0].message.tool_calls[0]
    assert r.choices[0].finish_reason == "tool_calls"
    assert call.function.name == "get_weather"
    assert "city" in json.loads(call.function.arguments)
    messages += [r.choices[0].message.model_dump(exclude_none=True),
                 {"role": "tool", "tool_call_id": call.id, "content": "sunny, 21C"}]
    r2 = client.chat.completions.create(model=model, messages=messages, tools=[WEATHER_TOOL])
    assert r2.choices[0].message.content and r2.choices[0].finish_reason in ("stop", "length")


@pytest.mark.parametrize("model", ["gpt-4o-mini", "claude-haiku"])
def test_tool_call_stream(client, model):
    chunks = list(client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": "Weather?"}], tools=[WEATHER_TOOL],
        tool_choice="required", stream=True))
    deltas = [tc for c in chunks if c.choices for tc in (c.choices[0].delta.tool_calls or [])]
    assert deltas[0].id and deltas[0].function.name == "get_weather"
    args = "".join(d.function.arguments or "" for d in deltas)
    assert "city" in json.loads(args)
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


def test_embeddings_float_and_base64(client):
    r = client.embeddings.create(model="text-embedding-3-small", input=["one", "two"])
    assert len(r.data) == 2 and len(r.data[0].embedding) > 0
    assert r.usage.prompt_tokens > 0
    # The SDK asks for base64 when no format is given in some versions; ask explicitly too.
    raw = client.embeddings.with_raw_response.create(model="text-embedding-3-small", input="one", encoding_format="base64")
    assert isinstance(json.loads(raw.text)["data"][0]["embedding"], str)


def test_models_list_and_retrieve(client):
    ids = [m.id for m in client.models.list()]
    assert ids == ["gpt-4o-mini", "claude-haiku", "gpt-4.1", "text-embedding-3-small"]
    assert client.models.retrieve("claude-haiku").id == "claude-haiku"
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("nope")


def test_responses_non_stream_and_stream(client):
    r = client.responses.create(model="gpt-4o-mini", input="Say something", store=False)
    assert r.output_text and r.usage.output_tokens > 0
    events = list(client.responses.create(model="gpt-4o-mini", input="Say something", stream=True, store=False))
    assert events[-1].type == "response.completed"
    deltas = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert deltas == r.output_text


def test_embeddings_need_an_openai_kind_target(client):
    # Anthropic has no embeddings endpoint to translate to (Responses, chat and messages cross).
    with pytest.raises(openai.BadRequestError) as e:
        client.embeddings.create(model="claude-haiku", input="hi")
    assert "OpenAI-kind" in str(e.value)


def test_typed_errors(demo, client):
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=demo.base_url, api_key="moat_wrong", max_retries=0).models.list()
    with pytest.raises(openai.NotFoundError) as e:
        client.chat.completions.create(model="no-such-model", messages=[{"role": "user", "content": "x"}])
    assert e.value.body["code"] == "model_not_found"
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model="gpt-4o-mini", messages="not a list")  # type: ignore[arg-type]
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model="claude-haiku", messages=[{"role": "user", "content": "x"}], n=2)


def test_key_scopes(demo):
    scoped = demo.create_key("--models", "gpt-4o-mini")
    c = openai.OpenAI(base_url=demo.base_url, api_key=scoped["key"], max_retries=0)
    assert c.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}]).choices
    with pytest.raises(openai.PermissionDeniedError):
        c.chat.completions.create(model="claude-haiku", messages=[{"role": "user", "content": "x"}])
    assert [m.id for m in c.models.list()] == ["gpt-4o-mini"]

    elsewhere = demo.create_key("--cidr", "10.0.0.0/8")
    with pytest.raises(openai.PermissionDeniedError):
        openai.OpenAI(base_url=demo.base_url, api_key=elsewhere["key"], max_retries=0).chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}])

    revoked = demo.create_key()
    demo.revoke_key(revoked["id"])
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=demo.base_url, api_key=revoked["key"], max_retries=0).models.list()


def _hit_rate_limit(client, **kwargs):
    """Calls until the gateway's limit answers 429; the SDK's exception, or None after 150 calls."""
    for _ in range(150):
        try:
            client.chat.completions.create(**kwargs)
        except openai.RateLimitError as e:
            return e
    return None


def _hit_rate_limit_far_from_refill(client, **kwargs):
    """A 429 whose next refill is at least 300 ms away, so that a request sent at once meets the
    limit too: a 429 met just before a refill (the refill is one request a second) would let the
    next request through and race the test."""
    err = _hit_rate_limit(client, **kwargs)
    for _ in range(3):
        if err is None or int(err.response.headers["retry-after-ms"]) >= 300:
            break
        time.sleep(int(err.response.headers["retry-after-ms"]) / 1000 + 0.02)
        err = _hit_rate_limit(client, **kwargs)
    return err


def test_rate_limits_are_the_sdks_rate_limit_error_and_it_retries_per_the_headers(demo):
    key = demo.create_key("--workflow", "demo-agent")["key"]
    ask = dict(model="gpt-4o-mini", messages=[{"role": "user", "content": "Hi"}], max_tokens=4)
    once = openai.OpenAI(base_url=demo.base_url, api_key=key, max_retries=0, timeout=20)
    err = _hit_rate_limit_far_from_refill(once, **ask)
    assert err is not None, "60 requests a minute never refused"
    assert err.status_code == 429 and err.code == "rate_limit_exceeded"
    h = err.response.headers
    assert h["x-ratelimit-limit-requests"] == "60"
    assert h["x-ratelimit-remaining-requests"] == "0"
    assert h["retry-after"] == "1"  # one request a second refills: whole seconds for agents
    assert 0 < int(h["retry-after-ms"]) <= 1000

    # The SDK's own retry waits as the headers say and then gets through.
    retrying = openai.OpenAI(base_url=demo.base_url, api_key=key, max_retries=3, timeout=20)
    raw = retrying.chat.completions.with_raw_response.create(**ask)
    assert raw.retries_taken >= 1
    assert raw.parse().choices[0].message.content


def test_an_exhausted_budget_is_insufficient_quota_and_never_retried(demo):
    key = demo.create_key("--workflow", "demo-penny")["key"]
    client = openai.OpenAI(base_url=demo.base_url, api_key=key, max_retries=3, timeout=20)
    started = time.monotonic()
    with pytest.raises(openai.RateLimitError) as e:
        client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "Hi"}])
    # Three SDK retries would take at least ~2.6 s of backoff; x-should-retry: false stops them.
    assert time.monotonic() - started < 1.5
    assert e.value.code == "insufficient_quota"
    assert e.value.response.headers["x-should-retry"] == "false"
    assert "daily budget" in e.value.message
