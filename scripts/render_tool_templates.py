"""Records what Jinja2 renders for the tool-calling chat templates in test/resources/chat-templates.

The templates follow the published structure of Qwen 2.5's and Llama 3.1's chat templates (written
here, not downloaded); the environment is the one transformers' apply_chat_template builds
(trim_blocks, lstrip_blocks, tojson as json.dumps with ensure_ascii=False, raise_exception). The
request is turned into template input as an OpenAI-compatible server hands it to
apply_chat_template: tools as given, an assistant's tool-call arguments parsed from JSON text into
an object. Run: python3 scripts/render_tool_templates.py (needs jinja2).
"""
import json
import pathlib

import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment

DIR = pathlib.Path(__file__).resolve().parent.parent / "test" / "resources" / "chat-templates"
BOS = "<|begin_of_text|>"


def raise_exception(message):
    raise jinja2.exceptions.TemplateError(message)


def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


def template_input(request):
    messages = []
    for m in request["messages"]:
        m = dict(m)
        for call in m.get("tool_calls", []):
            call["function"]["arguments"] = json.loads(call["function"]["arguments"])
        messages.append(m)
    return messages, request["tools"]


def main():
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=["jinja2.ext.loopcontrols"])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    request = json.loads((DIR / "tool-conversation.json").read_text(encoding="utf-8"))
    messages, tools = template_input(request)
    for name in ["qwen2.5-tools", "llama3.1-tools"]:
        template = env.from_string((DIR / (name + ".jinja")).read_text(encoding="utf-8"))
        text = template.render(messages=messages, tools=tools, add_generation_prompt=True, bos_token=BOS)
        (DIR / (name + ".expected.txt")).write_text(text, encoding="utf-8")
        print(name, len(text), "characters")


if __name__ == "__main__":
    main()
