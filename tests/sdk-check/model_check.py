"""The openai SDK against the fake model: Chat Completions as threadsmith calls it (tools, a
named tool_choice, a seed) and OpenAI's typed errors."""

import openai
from openai import OpenAI

from checks import check, done, env, raises, step

base = env("OPENAI_BASE_URL")
key = env("OPENAI_API_KEY")
client = OpenAI(base_url=base, api_key=key, max_retries=0)
print("openai", openai.__version__, "->", base)
tools = [
    {"type": "function", "function": {"name": "run_command", "description": "Run a command",
     "parameters": {"type": "object", "properties": {"command": {"type": "string"}}, "required": ["command"]}}},
    {"type": "function", "function": {"name": "finish", "description": "Finish",
     "parameters": {"type": "object", "properties": {"summary": {"type": "string"}}}}},
]
messages = [{"role": "system", "content": "You fix bugs."}, {"role": "user", "content": "Fix it."}]


def chat(seed, **extra):
    return client.chat.completions.create(
        model="fake-model", messages=messages, tools=tools, temperature=0.2, seed=seed, **extra
    )


models = step("models.list", lambda: list(client.models.list()))
if models:
    check("the fake model is listed", any(m.id == "fake-model" for m in models))
first = step("a tool call parses as a ChatCompletion", lambda: chat(1, tool_choice="auto"))
if first:
    call = first.choices[0].message.tool_calls[0]
    check("the tool call is the script's", call.function.name == "run_command" and '"command"' in call.function.arguments)
    check("finish_reason is tool_calls", first.choices[0].finish_reason == "tool_calls")
    check("usage is counted", first.usage.total_tokens == first.usage.prompt_tokens + first.usage.completion_tokens)
text = step(
    "a named tool_choice and a text answer",
    lambda: chat(1, tool_choice={"type": "function", "function": {"name": "finish"}}),
)
if text:
    check("the text answer has content and stop", text.choices[0].message.content and text.choices[0].finish_reason == "stop")
raises(
    "a named tool_choice of an unknown tool: BadRequestError 400 param tool_choice",
    openai.BadRequestError,
    lambda: chat(1, tool_choice={"type": "function", "function": {"name": "nope"}}),
    lambda e: e.status_code == 400 and e.param == "tool_choice",
)
raises(
    "a scripted 429: RateLimitError, code rate_limit_exceeded",
    openai.RateLimitError,
    lambda: chat(1),
    lambda e: e.code == "rate_limit_exceeded",
)
raises("a scripted 500: InternalServerError", openai.InternalServerError, lambda: chat(1))
raises(
    "a wrong key: AuthenticationError 401 invalid_api_key",
    openai.AuthenticationError,
    lambda: OpenAI(base_url=base, api_key="sk-wrong", max_retries=0).chat.completions.create(model="fake-model", messages=messages),
    lambda e: e.code == "invalid_api_key",
)
raises(
    "an unknown model: NotFoundError 404 model_not_found",
    openai.NotFoundError,
    lambda: client.chat.completions.create(model="no-such-model", messages=messages),
    lambda e: e.code == "model_not_found",
)
raises(
    "an unknown request argument: BadRequestError 400",
    openai.BadRequestError,
    lambda: chat(2, extra_body={"no_such_argument": 1}),
    lambda e: e.status_code == 400,
)
done("model")
