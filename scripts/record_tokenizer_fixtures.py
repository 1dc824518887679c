#!/usr/bin/env python3
"""Records reference outputs of Hugging Face `tokenizers` and `transformers` for Kiln's tokenizer tests.

For each vocabulary (the real Llama 3, Qwen 3 and Llama 2 tokenizer.json files, plus a few variants
of them that exercise components the real files do not use) this encodes a corpus of hard strings
with add_special_tokens False and True, and decodes the ids with skip_special_tokens False and True.
It also decodes seeded random id sequences (partial UTF-8, byte-fallback runs, special tokens in odd
places) and renders chat prompts with transformers' apply_chat_template.

Usage (needs tokenizers and transformers; the vocabularies come from
scripts/fetch-test-vocabularies.sh):
    python3 scripts/record_tokenizer_fixtures.py --vocab-dir target/tokenizer-vocab --out OUT_DIR \
        --bench-dir test/resources/tokenizer/bench
The JSON files written to OUT_DIR belong in test/resources/tokenizer/.
"""
import argparse
import copy
import json
import os
import platform
import random
import sys
import tempfile
import traceback

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import tokenizers  # noqa: E402
from tokenizers import Tokenizer  # noqa: E402

LONG_ENGLISH = (
    "Tokenization is the first step of almost every language model pipeline, and it is also one of "
    "the easiest places to introduce silent bugs. A tokenizer that disagrees with the reference by a "
    "single id changes the model's input, and the model will happily continue with a slightly wrong "
    "prompt. The errors rarely show up as crashes; instead they appear as worse answers, odd spacing, "
    "or broken Unicode in streamed output. That is why this corpus mixes ordinary prose with the "
    "awkward cases: runs of spaces, tabs and newlines, numbers like 1234567 and 3.14159, contractions "
    "such as don't, we'll and they've, quotes \"like these\", parentheses (and brackets [like these]), "
    "and punctuation... lots of it!!! It continues for a while so that the byte-pair merges see long "
    "words, short words, and everything in between: internationalization, counterrevolutionaries, "
    "antidisestablishmentarianism, a, I, an, the, of.\n\nA second paragraph starts after a blank line. "
    "    It is indented with four spaces, and\tcontains\ttabs. Then it ends."
)

LONG_CJK = (
    "自然语言处理是人工智能领域中的一个重要方向。它研究能实现人与计算机之间用自然语言进行有效通信的各种理论和方法。"
    "自然语言处理是一门融语言学、计算机科学、数学于一体的科学。因此，这一领域的研究将涉及自然语言，即人们日常使用的语言，"
    "所以它与语言学的研究有着密切的联系，但又有重要的区别。日本語の文章も少し含めます。東京は日本の首都です。"
    "한국어 문장도 포함합니다. 서울은 대한민국의 수도입니다."
)

CORPUS = [
    # empty and whitespace
    "", " ", "  ", "   ", "\n", "\n\n", "\r\n", "\t", "\t\t  \n", "   \n   \n   ",
    "a  b   c    d", "a\n\nb\n\n\nc", "line1\r\nline2\rline3", "  leading", "trailing   ",
    "mixed \t\n \u3000 spaces", "word\u00a0nbsp", "x\u2028y\u2029z", "a\u0085b", " " * 40, "\n" * 9,
    "end with newline\n", "two spaces before word:  word", "space then newline \n next",
    # plain text
    "Hello world", "Hello, world!", "hello", " hello", "  hello  ", "HELLO WORLD",
    "The quick brown fox jumps over the lazy dog.", "ALLCAPS lowercase MiXeD", "snake_case camelCase kebab-case PascalCase",
    # contractions and apostrophes
    "I'm you're we've they'll he'd it's don't", "I'M YOU'RE WE'VE THEY'LL HE'D IT'S DON'T", "'s 't 're 've 'm 'll 'd",
    "rock'n'roll", "o'clock", "the dog's bone's", "'\u017f test '\u017ftuff", "Don\u2019t curly apostrophe", "''quoted'' 'single'",
    # accents and combining characters
    "caf\u00e9 na\u00efve r\u00e9sum\u00e9", "cafe\u0301 (combining)", "\u00c5 vs \u212b vs A\u030a", "\ufb01 ligature \ufb00",
    "\u03a9 \u2126 ohm", "k\u0301\u0325 stacked \u0301\u0301", "Z\u0351\u036ba\u0310l\u0357g\u0352o",
    # CJK, Korean and other scripts
    "\u4f60\u597d\uff0c\u4e16\u754c\uff01", "\u6211\u7231\u81ea\u7136\u8bed\u8a00\u5904\u7406\u3002\u4eca\u5929\u5929\u6c14\u5f88\u597d\u3002",
    "\u65e5\u672c\u8a9e\u306e\u30c6\u30ad\u30b9\u30c8\u3067\u3059\u3002\u30ab\u30bf\u30ab\u30ca\u3068\u3072\u3089\u304c\u306a\u3002",
    "\u6f22\u5b57\u3068Kanji\u306e\u6df7\u5728", "\u4e2d\u6587English\u6df7\u5408123",
    "\uc548\ub155\ud558\uc138\uc694 \uc138\uacc4", "\u1100\u1161\u11a8 jamo", "\u0645\u0631\u062d\u0628\u0627 \u0628\u0627\u0644\u0639\u0627\u0644\u0645",
    "\u0627\u0644\u0639\u0631\u0628\u064a\u0629: \u0661\u0662\u0663\u0664\u0665", "\u05e9\u05dc\u05d5\u05dd \u05e2\u05d5\u05dc\u05dd",
    "\u0928\u092e\u0938\u094d\u0924\u0947 \u0926\u0941\u0928\u093f\u092f\u093e", "\u0939\u093f\u0928\u094d\u0926\u0940 \u092e\u0947\u0902 \u0932\u093f\u0916\u093e \u0917\u092f\u093e \u092a\u093e\u0920\u0964",
    "\u0e2a\u0e27\u0e31\u0e2a\u0e14\u0e35\u0e04\u0e23\u0e31\u0e1a", "\u041f\u0440\u0438\u0432\u0435\u0442, \u043c\u0438\u0440! \u041a\u0430\u043a \u0434\u0435\u043b\u0430?",
    "\u0393\u03b5\u03b9\u03ac \u03c3\u03bf\u03c5 \u039a\u03cc\u03c3\u03bc\u03b5",
    # emoji
    "\U0001f600", "\U0001f44d\U0001f3fd", "\U0001f468\u200d\U0001f469\u200d\U0001f467\u200d\U0001f466", "\U0001f3f3\ufe0f\u200d\U0001f308",
    "\U0001f1fa\U0001f1f8\U0001f1ef\U0001f1f5", "I \u2764\ufe0f NLP \U0001f680\u2728", "emoji\U0001f642inside\U0001f643words", "1\ufe0f\u20e3 keycap",
    # digits and numbers
    "1234567890", "3.14159265358979", "1,000,000", "12345678901234567890123456789", "Phone: +1 (555) 123-4567",
    "2024-01-15T10:30:00Z", "0x1F600 0b1010 1e-10", "\u00bd \u00be \u00b2 \u00b3 \u2167", "\u0661\u0662\u0663 \u096a\u096b\u096c \uff17\uff18\uff19",
    # code
    "def foo(x):\n    return x ** 2\n", "for (int i = 0; i < n; i++) {\n\tsum += a[i];\n}", "<div class=\"a\">&amp;</div>",
    "SELECT * FROM users WHERE id = 42;", "const f = (a, b) => a?.b ?? c;", "#include <stdio.h>\nint main(){printf(\"hi\\n\");}",
    "    indented\n        more\n", "x+=1;y-=2;z*=3", "{\"key\": [1, 2, {\"n\": null}]}",
    # URLs
    "https://example.com/path?q=1&r=two#frag", "mailto:someone@example.org", "file:///usr/local/bin", "www.test.co.uk/a_b-c",
    # text that looks like special tokens
    "<|begin_of_text|>", "<|begin_of_text|>Hello", "Hi <|end_of_text|> there", "<|eot_id|><|start_header_id|>user<|end_header_id|>",
    "<|im_start|>user\nHi<|im_end|>", "<|endoftext|>", "<s>", "</s>", "<s>Hello</s>", "Hello <s> world </s>", "<unk>", "<0x41>",
    "<think>\nreasoning\n</think>", "<tool_call>", "<|im_start|><|im_start|>", "< |im_start| >", "<|im_start", "<|reserved_special_token_5|>",
    "<<|eot_id|>>", "text<|eot_id|>text", " <|im_end|> ", "Hello<s>world", "<mask> [SEP] cat concat cat_ dog hotdog",
    "the cat sat", "cats and a cat.", "dog days, hotdog", "  <mask>  x", "[SEP]   y\n", "x<mask>y[SEP]z", "caf\u00e9cat 9cat cat9",
    # zero-width and invisible characters
    "zero\u200bwidth", "join\u200dner", "non\u200cjoiner", "\ufeffBOM at start", "soft\u00adhyphen", "word\u2060joiner",
    # mixed scripts and punctuation
    "Hello \u043c\u0438\u0440 \u4e16\u754c \u0639\u0627\u0644\u0645 \U0001f30d", "\u0395\u03bb\u03bb\u03b7\u03bd\u03b9\u03ba\u03ac and English \u03ba\u03b1\u03b9 \u4e2d\u6587",
    "....", "!!!???", "---", "___", "$$$", "a.b.c", "...hello...", "(parenthetical)", "\"quoted\"", "\u00abguillemets\u00bb",
    "\u20ac100 \u00a350 \u00a51000", "\u2122\u00ae\u00a9", "Tab\tseparated\tvalues",
    # SentencePiece specifics
    " starts with space", "\u2581literal metaspace char", "\u2581\u2581double", "ends with metaspace\u2581",
    # control and private-use characters
    "\x00null\x01\x1f", "bell\x07", "\x7f del", "esc\x1b[31mred\x1b[0m", "\ue000 private", "\U0010fffd",
    # long inputs
    LONG_ENGLISH, LONG_CJK, "a" * 1000, "\U0001f600" * 50, "1" * 100, "ab" * 300, "pneumonoultramicroscopicsilicovolcanoconiosis",
    "x" * 5 + " " * 7 + "y" * 3 + "\n" * 4 + "z",
]

LONE_SURROGATES = ["a\ud800b", "\udc00", "x\ud83d", "\ud83d\ude00 ok? no: \ude00"]

# Variants: a base vocabulary with top-level fields of tokenizer.json replaced, to exercise
# components that the real files do not use. The Java tests apply the same patches.
VARIANTS = {
    "llama2-added-tokens": {
        "base": "llama2",
        "patch": {
            "added_tokens": [
                {"id": 0, "content": "<unk>", "single_word": False, "lstrip": False, "rstrip": False, "normalized": False, "special": True},
                {"id": 1, "content": "<s>", "single_word": False, "lstrip": False, "rstrip": False, "normalized": False, "special": True},
                {"id": 2, "content": "</s>", "single_word": False, "lstrip": False, "rstrip": False, "normalized": False, "special": True},
                {"id": 32000, "content": "<mask>", "single_word": False, "lstrip": True, "rstrip": False, "normalized": False, "special": True},
                {"id": 32001, "content": "[SEP]", "single_word": False, "lstrip": False, "rstrip": True, "normalized": False, "special": True},
                {"id": 32002, "content": "cat", "single_word": True, "lstrip": False, "rstrip": False, "normalized": False, "special": False},
                {"id": 32003, "content": "dog", "single_word": False, "lstrip": False, "rstrip": False, "normalized": True, "special": False},
                {"id": 32004, "content": "<|im_start|>", "single_word": False, "lstrip": True, "rstrip": True, "normalized": False, "special": True},
            ],
        },
    },
    "llama2-metaspace-first": {
        "base": "llama2",
        "patch": {
            "normalizer": None,
            "pre_tokenizer": {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "first", "split": False},
            "decoder": {"type": "Sequence", "decoders": [
                {"type": "ByteFallback"},
                {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "first", "split": False},
            ]},
        },
    },
    "llama2-metaspace-always-split": {
        "base": "llama2",
        "patch": {
            "normalizer": {"type": "NFKC"},
            "pre_tokenizer": {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "always", "split": True},
            "decoder": {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "always", "split": True},
            "post_processor": {"type": "TemplateProcessing",
                               "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                                          {"SpecialToken": {"id": "</s>", "type_id": 0}}],
                               "pair": [{"Sequence": {"id": "A", "type_id": 0}}, {"Sequence": {"id": "B", "type_id": 1}}],
                               "special_tokens": {"<s>": {"id": "<s>", "ids": [1], "tokens": ["<s>"]},
                                                  "</s>": {"id": "</s>", "ids": [2], "tokens": ["</s>"]}}},
        },
    },
    "llama3-gpt2-style": {
        "base": "llama3",
        "patch": {
            "normalizer": {"type": "Sequence", "normalizers": [{"type": "NFKC"}, {"type": "Lowercase"}]},
            "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
            "post_processor": {"type": "Sequence", "processors": [
                {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": False, "use_regex": True},
                {"type": "TemplateProcessing",
                 "single": [{"SpecialToken": {"id": "<|begin_of_text|>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                            {"SpecialToken": {"id": "<|end_of_text|>", "type_id": 0}}],
                 "pair": [{"Sequence": {"id": "A", "type_id": 0}}, {"Sequence": {"id": "B", "type_id": 1}}],
                 "special_tokens": {"<|begin_of_text|>": {"id": "<|begin_of_text|>", "ids": [128000], "tokens": ["<|begin_of_text|>"]},
                                    "<|end_of_text|>": {"id": "<|end_of_text|>", "ids": [128001], "tokens": ["<|end_of_text|>"]}}},
            ]},
        },
    },
    "llama3-split-behaviours": {
        "base": "llama3",
        "patch": {
            "normalizer": {"type": "Sequence", "normalizers": [
                {"type": "Replace", "pattern": {"Regex": "\\s+"}, "content": " "},
                {"type": "Strip", "strip_left": True, "strip_right": True},
                {"type": "NFD"},
            ]},
            "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
                {"type": "Split", "pattern": {"String": " "}, "behavior": "MergedWithPrevious", "invert": False},
                {"type": "Digits", "individual_digits": True},
                {"type": "Split", "pattern": {"Regex": "[aeiou]+"}, "behavior": "MergedWithNext", "invert": False},
                {"type": "Split", "pattern": {"Regex": "[.,!?]"}, "behavior": "Contiguous", "invert": True},
                {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False, "use_regex": False},
            ]},
        },
    },
    "llama2-fused-replacements": {
        "base": "llama2",
        "patch": {
            "decoder": {"type": "Sequence", "decoders": [
                {"type": "Replace", "pattern": {"String": "\u2581"}, "content": " "},
                {"type": "ByteFallback"},
                {"type": "Fuse"},
                {"type": "Replace", "pattern": {"String": "  "}, "content": "<2sp>"},
                {"type": "Replace", "pattern": {"Regex": "[0-9]+"}, "content": "#"},
                {"type": "Strip", "content": " ", "start": 1, "stop": 1},
            ]},
        },
    },
    "llama2-unknown-no-byte-fallback": {
        "base": "llama2",
        "patch": {"model.byte_fallback": False},
    },
    "llama2-unknown-unfused": {
        "base": "llama2",
        "patch": {"model.byte_fallback": False, "model.fuse_unk": False},
    },
    "llama3-without-ignore-merges": {
        "base": "llama3",
        "patch": {"model.ignore_merges": False},
    },
    "qwen3-whitespace-removed": {
        "base": "qwen3",
        "patch": {
            "decoder": None,
            "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
                {"type": "WhitespaceSplit"},
                {"type": "Split", "pattern": {"Regex": "(?i:[aeiou])"}, "behavior": "Removed", "invert": False},
                {"type": "Punctuation", "behavior": "Isolated"},
                {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False, "use_regex": False},
            ]},
        },
    },
    "qwen3-whitespace-pretokenizer": {
        "base": "qwen3",
        "patch": {
            "normalizer": {"type": "Sequence", "normalizers": [{"type": "NFKD"}, {"type": "StripAccents"}, {"type": "Prepend", "prepend": "^"}]},
            "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
                {"type": "Whitespace"},
                {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False, "use_regex": False},
            ]},
            "decoder": {"type": "Sequence", "decoders": [
                {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False, "use_regex": False},
                {"type": "Replace", "pattern": {"String": "^"}, "content": "<caret>"},
                {"type": "Strip", "content": "<", "start": 1, "stop": 1},
            ]},
        },
    },
}

CONVERSATIONS = [
    {"name": "system-user", "messages": [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": "What is the capital of France?"}]},
    {"name": "user-only", "messages": [{"role": "user", "content": "Hi!"}]},
    {"name": "multi-turn", "messages": [
        {"role": "system", "content": "Answer briefly."},
        {"role": "user", "content": "Name a prime number."},
        {"role": "assistant", "content": "7"},
        {"role": "user", "content": "Another one, larger than 100?"}]},
    {"name": "whitespace-unicode", "messages": [
        {"role": "user", "content": "  \n Caf\u00e9 \u2615 \u4f60\u597d \U0001f44d\U0001f3fd\n\n "},
        {"role": "assistant", "content": "\tBonjour !  "},
        {"role": "user", "content": "<|eot_id|> is not special here\u3000"}]},
    {"name": "assistant-with-think", "messages": [
        {"role": "user", "content": "2+2?"},
        {"role": "assistant", "content": "<think>\nSimple arithmetic.\n</think>\n\n4"},
        {"role": "user", "content": "And 3+3?"}]},
    {"name": "reasoning-content", "messages": [
        {"role": "user", "content": "Pick a colour."},
        {"role": "assistant", "content": "Blue.", "reasoning_content": "Any colour works; blue is common."},
        {"role": "user", "content": "Why?"}]},
    {"name": "tool-calls", "messages": [
        {"role": "system", "content": "You can use tools."},
        {"role": "user", "content": "Weather in Paris and Tokyo?"},
        {"role": "assistant", "content": "", "tool_calls": [
            {"type": "function", "function": {"name": "get_weather", "arguments": {"city": "Paris", "unit": "celsius"}}},
            {"type": "function", "function": {"name": "get_weather", "arguments": "{\"city\": \"Tokyo\"}"}}]},
        {"role": "tool", "content": "{\"temp\": 18}"},
        {"role": "tool", "content": "{\"temp\": 25.5}"},
        {"role": "user", "content": "Thanks. Which is warmer?"}],
     "extra": {"tools": [{"type": "function", "function": {
         "name": "get_weather", "description": "Current weather for a city, \u00e9t\u00e9 \"quoted\"",
         "parameters": {"type": "object", "properties": {
             "city": {"type": "string"}, "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
             "days": {"type": "integer", "minimum": 1, "maximum": 7.5}, "flag": {"type": "boolean", "default": False}},
             "required": ["city"]}}}]}},
    {"name": "no-thinking", "messages": [{"role": "user", "content": "Quick answer please."}], "extra": {"enable_thinking": False}},
    {"name": "ends-with-assistant", "messages": [
        {"role": "user", "content": "Say hi."},
        {"role": "assistant", "content": "Hi."}], "add_generation_prompt": False},
]


# Small templates exercising Jinja features that chat templates use, rendered with each
# conversation through transformers' apply_chat_template(chat_template=...).
FEATURE_TEMPLATES = [
    {"name": "mistral-alternation", "template":
        "{{ bos_token }}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
        "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
        "{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}"
        "{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token}}{% endif %}{% endfor %}"},
    {"name": "whitespace-control",
     "template": "{% for m in messages %}\n  {% if m.role == 'user' %}\n    U: {{ m.content }}\n  {% else %}\n    {{- 'A: ' -}}\n    {{ m.content }}\n  {% endif %}\n{#- note -#}\n{% endfor %}\n{%- if add_generation_prompt %}\n  G:\n{% endif %}\n"},
    {"name": "filters-and-tests",
     "template": "{{ messages|length }}|{{ (messages|last).role }}|{{ (messages|first)['content']|upper }}|"
                 "{% for m in messages if m.role != 'system' %}{{ loop.index }}/{{ loop.length }}:{{ m.content|trim|length }}{% if not loop.last %},{% endif %}{% endfor %}|"
                 "{{ messages[-1]['content'][:5] }}|{{ messages[1:]|map(attribute='role')|join(',') }}|"
                 "{% if tools is not none and tools %}T{% else %}noT{% endif %}|{{ 7 // 2 }}{{ 7 % 3 }}|{{ 'x' ~ 3 }}|"
                 "{% if 'content' in messages[0] %}has{% endif %}|{{ messages|selectattr('role', 'equalto', 'user')|list|length }}"},
    {"name": "string-methods",
     "template": "{% for m in messages %}{{ m.content.startswith(('W', 'Hi')) }};{{ m.content.endswith('?') }};"
                 "{{ m.content.split()|length }};{{ m.content.rsplit(' ', 1)[0] }};{{ m.content.replace(' ', '_') }};"
                 "{{ m.content.lstrip('WHi ').rstrip('?!.') }};{{ m.content.strip() }};{{ m.content.split('e')|join('|') }}\n{% endfor %}"},
    {"name": "namespace-and-slices",
     "template": "{%- set ns = namespace(found=false, count=messages|length - 1, names=[]) %}"
                 "{%- for m in messages[::-1] %}{%- if not ns.found and m.role == 'user' %}{%- set ns.found = true %}"
                 "{%- set ns.count = (messages|length - 1) - loop.index0 %}{%- endif %}{%- endfor %}"
                 "last user at {{ ns.count }}{% for m in messages %}{% if loop.index0 > ns.count %} after:{{ m.role }}{% endif %}{% endfor %}"},
    {"name": "tojson-variants",
     "template": "{{ messages|tojson }}\n{{ messages[0]|tojson(indent=2) }}\n{{ {'b': 1, 'a': [true, none, 1.5, 'x\"y']}|tojson(sort_keys=true) }}\n"
                 "{% if tools %}{{ tools|tojson(indent=4) }}{% endif %}"},
    {"name": "content-parts-and-defaults",
     "template": "{% if not add_generation_prompt is defined %}{% set add_generation_prompt = false %}{% endif %}"
                 "{% for m in messages %}{% if m.content is string %}{{ m.content }}{% else %}{% for part in m.content %}"
                 "{% if part.type == 'text' %}{{ part.text }}{% endif %}{% endfor %}{% endif %}"
                 "{{ m.get('name', '-') }}{% if m.tool_calls is defined %}[calls {{ m.tool_calls|length }}]{% endif %}|{% endfor %}"
                 "{{ add_generation_prompt }}"},
    {"name": "strftime", "template": "{{ strftime_now('%Y')|length }} {{ strftime_now('%d %b %Y')|length }}"},
    {"name": "loop-controls",
     "template": "{% for m in messages %}{% if m.role == 'system' %}{% continue %}{% endif %}{{ m.role }} {% if loop.index > 2 %}{% break %}{% endif %}{% endfor %}"},
]

FEATURE_CONVERSATIONS = ["system-user", "multi-turn", "whitespace-unicode", "tool-calls", "content-parts"]

CONTENT_PARTS = {"name": "content-parts", "messages": [
    {"role": "user", "content": [{"type": "text", "text": "Describe "}, {"type": "image"}, {"type": "text", "text": "this."}], "name": "ann"},
    {"role": "assistant", "content": "A cat."}]}


def apply_patch(spec, patch):
    """Top-level fields of tokenizer.json are replaced; "model.X" keys replace a field of the model."""
    for key, value in patch.items():
        if key.startswith("model."):
            spec["model"][key[len("model."):]] = copy.deepcopy(value)
        else:
            spec[key] = copy.deepcopy(value)


FUZZ_POOL = (
    list("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ") * 3 + list("0123456789") * 2
    + list(" " * 12) + list("\n\n\t\r") + list(".,;:!?'\"()[]{}<>|/\\-_=+*&^%$#@~`")
    + ["'s", "'T", "'re", "'LL", "\u00e9", "\u00fc", "\u00df", "\u0301", "\u0308", "\u4e2d", "\u6587", "\u65e5", "\u672c",
       "\u3042", "\u30ab", "\ud55c", "\uae00", "\u0645", "\u0631", "\u0928", "\u094d", "\u0e2a", "\u03a9", "\u0416",
       "\u00a0", "\u3000", "\u2028", "\u200b", "\u200d", "\ufeff", "\u2581", "\u2581\u2581", "\U0001f600", "\U0001f44d",
       "\U0001f3fd", "\u2764\ufe0f", "\U0001f1fa\U0001f1f8", "\u00bd", "\u0663", "\uff17", "\u2167", "\ue000", "\x00", "\x1b",
       "<s>", "</s>", "<unk>", "<|im_start|>", "<|im_end|>", "<|eot_id|>", "<|begin_of_text|>", "<think>", "<0x41>", "<|",
       "|>", "<mask>", "[SEP]", "cat", "dog", "  ", "   ", "\n\n\n", "1234", "hello", "World", "http://", "www.", "\u017f"]
)


def fuzz_corpus(seed, count):
    rng = random.Random(seed)
    texts = []
    for _ in range(count):
        length = rng.choice([1, 2, 3, 5, 8, 13, 21, 34, 55])
        texts.append("".join(rng.choice(FUZZ_POOL) for _ in range(length)))
    return texts


def record_tokenizer(tok, corpus):
    cases = []
    for text in corpus:
        for add_special in (False, True):
            entry = {"text": text, "add_special": add_special}
            try:
                entry["ids"] = tok.encode(text, add_special_tokens=add_special).ids
            except BaseException as error:  # PyO3 panics derive from BaseException
                entry["error"] = f"{type(error).__name__}: {error}"
                cases.append(entry)
                continue
            for key, skip in (("decoded", False), ("decoded_skip_special", True)):
                try:
                    entry[key] = tok.decode(entry["ids"], skip_special_tokens=skip)
                except BaseException as error:
                    entry[key + "_error"] = f"{type(error).__name__}: {error}"
            cases.append(entry)
    return cases


def random_decode_cases(tok, seed):
    rng = random.Random(seed)
    size = tok.get_vocab_size(with_added_tokens=True)
    vocab = tok.get_vocab(with_added_tokens=True)
    added = sorted(t.content for t in tok.get_added_tokens_decoder().values())
    added_ids = [vocab[t] for t in added]
    byte_tokens = [vocab[t] for t in vocab if len(t) == 6 and t.startswith("<0x") and t.endswith(">")]
    single_chars = [i for t, i in vocab.items() if len(t) == 1]
    sequences = []
    for _ in range(60):
        pool = rng.choice(["any", "bytes", "single", "mixed"])
        length = rng.randint(1, 14)
        seq = []
        for _ in range(length):
            kind = pool if pool != "mixed" else rng.choice(["any", "bytes", "single", "added"])
            if kind == "bytes" and byte_tokens:
                seq.append(rng.choice(byte_tokens))
            elif kind in ("single", "bytes") and single_chars:
                seq.append(rng.choice(single_chars))
            elif kind == "added" and added_ids:
                seq.append(rng.choice(added_ids))
            else:
                seq.append(rng.randrange(size))
        sequences.append(seq)
    sequences.append([size + 5, size + 100000])  # ids outside the vocabulary
    sequences.append([])
    cases = []
    for ids in sequences:
        entry = {"ids": ids}
        for key, skip in (("decoded", False), ("decoded_skip_special", True)):
            try:
                entry[key] = tok.decode(ids, skip_special_tokens=skip)
            except BaseException as error:  # recorded so the Java side can match the behaviour
                entry[key + "_error"] = f"{type(error).__name__}: {error}"
        cases.append(entry)
    return cases


def surrogate_cases(tok):
    out = []
    for text in LONE_SURROGATES:
        try:
            ids = tok.encode(text).ids
            out.append({"text": text, "ids": ids})
        except BaseException as error:
            out.append({"text": text, "error": f"{type(error).__name__}: {error}"})
    return out


def vocabulary_facts(tok):
    vocab = tok.get_vocab(with_added_tokens=True)
    probe_ids = sorted(set([0, 1, 2, 13, 100, 1000, 30000] + [i for i in vocab.values()][-3:]))
    return {
        "vocab_size_with_added": tok.get_vocab_size(with_added_tokens=True),
        "vocab_size_without_added": tok.get_vocab_size(with_added_tokens=False),
        "id_to_token": {str(i): tok.id_to_token(i) for i in probe_ids},
    }


def record_vocabulary(name, tok, corpus):
    return {
        "name": name,
        "tokenizers_version": tokenizers.__version__,
        "facts": vocabulary_facts(tok),
        "cases": record_tokenizer(tok, corpus),
        "fuzz_cases": record_tokenizer(tok, fuzz_corpus(seed=20240601, count=150)),
        "decode_cases": random_decode_cases(tok, seed=sum(map(ord, name))),
        "lone_surrogates": surrogate_cases(tok),
    }


def load_transformers_tokenizer(model_dir):
    """apply_chat_template is a transformers feature; try the normal loader first."""
    import transformers
    try:
        return transformers.AutoTokenizer.from_pretrained(model_dir), "AutoTokenizer"
    except BaseException:
        traceback.print_exc()
        with open(os.path.join(model_dir, "tokenizer_config.json"), encoding="utf-8") as f:
            config = json.load(f)
        kwargs = {k: config[k] for k in ("bos_token", "eos_token", "unk_token", "pad_token", "chat_template") if config.get(k) is not None}
        return transformers.PreTrainedTokenizerFast(tokenizer_file=os.path.join(model_dir, "tokenizer.json"), **kwargs), "PreTrainedTokenizerFast"


def record_chat(vocab_dir):
    import transformers
    out = {"transformers_version": transformers.__version__, "templates": {}}
    for name in ("llama3", "qwen3", "llama2"):
        model_dir = os.path.join(vocab_dir, name)
        hf, loader = load_transformers_tokenizer(model_dir)
        plain = Tokenizer.from_file(os.path.join(model_dir, "tokenizer.json"))
        entry = {"loader": loader, "renders": []}
        for conversation in CONVERSATIONS:
            add_generation_prompt = conversation.get("add_generation_prompt", True)
            extra = conversation.get("extra", {})
            render = {"name": conversation["name"], "messages": conversation["messages"],
                      "add_generation_prompt": add_generation_prompt, "extra": extra}
            try:
                prompt = hf.apply_chat_template(copy.deepcopy(conversation["messages"]), tokenize=False,
                                                add_generation_prompt=add_generation_prompt, **copy.deepcopy(extra))
                render["prompt"] = prompt
                render["ids"] = plain.encode(prompt, add_special_tokens=False).ids
            except BaseException as error:
                render["error"] = f"{type(error).__name__}: {error}"
            entry["renders"].append(render)
        if name == "llama3":
            conversations = {c["name"]: c for c in CONVERSATIONS + [CONTENT_PARTS]}
            features = []
            for feature in FEATURE_TEMPLATES:
                for conversation_name in FEATURE_CONVERSATIONS:
                    conversation = conversations[conversation_name]
                    for add_generation_prompt in (True, False):
                        extra = conversation.get("extra", {})
                        render = {"template_name": feature["name"], "template": feature["template"],
                                  "conversation": conversation_name, "messages": conversation["messages"],
                                  "add_generation_prompt": add_generation_prompt, "extra": extra}
                        try:
                            render["prompt"] = hf.apply_chat_template(
                                copy.deepcopy(conversation["messages"]), chat_template=feature["template"], tokenize=False,
                                add_generation_prompt=add_generation_prompt, **copy.deepcopy(extra))
                        except BaseException as error:
                            render["error"] = f"{type(error).__name__}: {error}"
                        features.append(render)
            out["feature_templates"] = features
        # Informational: how transformers' own encode differs from the raw tokenizers pipeline.
        entry["transformers_encode"] = [{"text": t, "ids": hf.encode(t)} for t in ("Hello world", " hello", "<s>Hello</s>")]
        out["templates"][name] = entry
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--vocab-dir", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--bench-dir", help="folder of benchmark texts (*.txt) whose ids are recorded too")
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)

    def write(filename, data):
        with open(os.path.join(args.out, filename), "w", encoding="ascii") as f:
            json.dump(data, f, ensure_ascii=True, separators=(",", ":"))
            f.write("\n")

    for name in ("llama3", "qwen3", "llama2"):
        tok = Tokenizer.from_file(os.path.join(args.vocab_dir, name, "tokenizer.json"))
        write(f"{name}.json", record_vocabulary(name, tok, CORPUS))
        print("recorded", name, flush=True)

    if args.bench_dir:
        bench = {}
        for name in ("llama3", "qwen3"):
            tok = Tokenizer.from_file(os.path.join(args.vocab_dir, name, "tokenizer.json"))
            for filename in sorted(os.listdir(args.bench_dir)):
                if filename.endswith(".txt"):
                    with open(os.path.join(args.bench_dir, filename), encoding="utf-8") as f:
                        text = f.read()
                    ids = tok.encode(text, add_special_tokens=False).ids
                    bench[f"{name}/{filename}"] = {"ids": ids, "decoded_equals_text": tok.decode(ids) == text}
        write("bench.json", bench)
        print("recorded benchmark texts", flush=True)

    variants = {}
    for name, variant in VARIANTS.items():
        with open(os.path.join(args.vocab_dir, variant["base"], "tokenizer.json"), encoding="utf-8") as f:
            spec = json.load(f)
        apply_patch(spec, variant["patch"])
        try:
            tok = Tokenizer.from_str(json.dumps(spec))
            variants[name] = dict(variant, **record_vocabulary(name, tok, CORPUS))
        except BaseException as error:
            variants[name] = dict(variant, error=f"{type(error).__name__}: {error}")
        print("recorded variant", name, flush=True)
    write("variants.json", variants)

    try:
        write("chat-templates.json", record_chat(args.vocab_dir))
        print("recorded chat templates", flush=True)
    except BaseException:
        traceback.print_exc()

    import transformers
    import jinja2
    write("environment.json", {"python": sys.version, "platform": platform.platform(), "tokenizers": tokenizers.__version__,
                               "transformers": transformers.__version__, "jinja2": jinja2.__version__})


if __name__ == "__main__":
    main()
