"""Calls a running `kiln serve` with the official OpenAI Python SDK, the way an agent does: the
model list, tool calls (required and a named function; streamed and not) and JSON-schema output
(streamed and not), checking each answer's shape. Run by OpenAiPythonNodeSdkTest against the llama3-gqa
fixture (random weights: the tool choices and the schema, enforced by Kiln's grammar, give the
answers their shape).

    python openai_sdk_check.py BASE_URL MODEL

Prints one line per check and exits 0 when all pass, 1 at the first that fails.
"""
import json
import sys

import openai

WEATHER = {"type": "object", "properties": {"city": {"type": "string", "maxLength": 8},
                                            "unit": {"enum": ["c", "f"]}},
           "required": ["city", "unit"], "additionalProperties": False}
TIME = {"type": "object", "properties": {"zone": {"enum": ["UTC", "CET"]}}, "required": ["zone"],
        "additionalProperties": False}
TOOLS = [{"type": "function", "function": {"name": "get_weather", "description": "Current weather",
                                           "parameters": WEATHER}},
         {"type": "function", "function": {"name": "get_time", "parameters": TIME}}]
ANSWER = {"type": "object", "properties": {"answer": {"type": "string", "maxLength": 12},
                                           "score": {"type": "integer"}},
          "required": ["answer", "score"], "additionalProperties": False}
MESSAGES = [{"role": "user", "content": "Weather in Paris?"}]


def check(condition, what):
    if not condition:
        print("FAIL " + what)
        sys.exit(1)
    print("ok   " + what)


def check_arguments(name, arguments):
    values = json.loads(arguments)
    if name == "get_weather":
        check(set(values) == {"city", "unit"} and isinstance(values["city"], str) and len(values["city"]) <= 8
              and values["unit"] in ("c", "f"), "get_weather arguments fit their schema: " + arguments)
    else:
        check(set(values) == {"zone"} and values["zone"] in ("UTC", "CET"),
              "get_time arguments fit their schema: " + arguments)


def check_answer(content):
    values = json.loads(content)
    check(set(values) == {"answer", "score"} and isinstance(values["answer"], str)
          and len(values["answer"]) <= 12 and isinstance(values["score"], int) and not isinstance(values["score"], bool),
          "the JSON output fits its schema: " + content)


def main():
    base_url, model = sys.argv[1], sys.argv[2]
    client = openai.OpenAI(base_url=base_url + "/v1", api_key="unused", max_retries=0, timeout=60)
    check(model in [m.id for m in client.models.list().data], "models.list names " + model)

    r = client.chat.completions.create(model=model, messages=MESSAGES, tools=TOOLS, tool_choice="required",
                                       max_tokens=120, seed=7)
    choice = r.choices[0]
    check(choice.finish_reason == "tool_calls" and choice.message.tool_calls, "tool_choice required: a call")
    call = choice.message.tool_calls[0]
    check(call.type == "function" and call.function.name in ("get_weather", "get_time") and call.id,
          "the call names a tool: " + call.function.name)
    check_arguments(call.function.name, call.function.arguments)

    r = client.chat.completions.create(model=model, messages=MESSAGES, tools=TOOLS,
                                       tool_choice={"type": "function", "function": {"name": "get_time"}},
                                       max_tokens=120, seed=3)
    call = r.choices[0].message.tool_calls[0]
    check(call.function.name == "get_time", "a named function is called")
    check_arguments("get_time", call.function.arguments)

    names, arguments, finish = {}, {}, None
    stream = client.chat.completions.create(model=model, messages=MESSAGES, tools=TOOLS, tool_choice="required",
                                            max_tokens=120, seed=11, stream=True)
    for chunk in stream:
        if not chunk.choices:
            continue
        delta = chunk.choices[0].delta
        for part in delta.tool_calls or []:
            if part.function and part.function.name:
                names[part.index] = part.function.name
            if part.function and part.function.arguments:
                arguments[part.index] = arguments.get(part.index, "") + part.function.arguments
        finish = chunk.choices[0].finish_reason or finish
    check(finish == "tool_calls" and 0 in names, "a streamed call, finish_reason tool_calls")
    check_arguments(names[0], arguments[0])

    schema = {"type": "json_schema", "json_schema": {"name": "answer", "strict": True, "schema": ANSWER}}
    r = client.chat.completions.create(model=model, messages=[{"role": "user", "content": "Rate Paris."}],
                                       response_format=schema, max_tokens=200, seed=5)
    check(r.choices[0].finish_reason == "stop", "json_schema output finishes")
    check_answer(r.choices[0].message.content)

    content = ""
    stream = client.chat.completions.create(model=model, messages=[{"role": "user", "content": "Rate Rome."}],
                                            response_format=schema, max_tokens=200, seed=9, stream=True)
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            content += chunk.choices[0].delta.content
    check_answer(content)

    r = client.completions.create(model=model, prompt="Hello", max_tokens=5, seed=1)
    check(len(r.choices) == 1 and r.choices[0].finish_reason in ("stop", "length")
          and isinstance(r.choices[0].text, str), "completions.create answers")
    print("all checks passed")


if __name__ == "__main__":
    main()
