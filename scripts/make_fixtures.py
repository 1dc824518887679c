#!/usr/bin/env python3
"""Makes Kiln's model test fixtures with Hugging Face transformers as the reference.

For each supported architecture it writes a tiny random-weight model directory (config.json,
generation_config.json, safetensors weights, tokenizer.json, tokenizer_config.json) and a
reference.json holding, for a few prompts, the prompt token ids, the logits at the last prompt
position (fp32 arithmetic) and 32 greedy tokens, and Hugging Face's own bf16 computation as the
yardstick for bf16 backends: its logits at the last prompt position, and its relative error
against fp32 at the first 16 positions of the greedy path. Run where torch, transformers and
tokenizers are installed:

    python3 scripts/make_fixtures.py --out test/resources/fixtures

The tokenizers are trained here on a small built-in corpus: a byte-level BPE in the Llama 3 / Qwen
style and a SentencePiece-style BPE with byte fallback in the Llama 2 / Mistral style.
"""
import argparse
import json
import os
import shutil

import torch
import transformers
from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
from transformers import AutoModelForCausalLM, GenerationConfig, PreTrainedTokenizerFast

CORPUS = [
    "The quick brown fox jumps over the lazy dog. Pack my box with five dozen liquor jugs.",
    "Kiln is an inference runtime for large language models, written in Java, with CUDA kernels.",
    "It serves many requests at once: a paged key-value cache, continuous batching, prefix caching.",
    "Once upon a time, in a land far away, there lived a small dragon who loved to read books.",
    "def forward(self, x):\n    return self.norm(x + self.attention(x))\n",
    "1 2 3 4 5 6 7 8 9 10 11 12 100 1000 2026 3.14159 42",
    "Hello, world! How are you today? I'm fine, thanks. We'll see; they've gone, it's done.",
    "Attention is all you need. Tokens flow through layers: norm, attention, residual, MLP.",
    "Café, naïve, résumé, Zürich, São Paulo, Kraków. 東京 北京 서울. Привет мир.",
]

PROMPTS = [
    "Hello world",
    "The quick brown fox",
    "Once upon a time, in a land far away, there lived a small dragon who loved to read books. "
    "Every day the dragon went to the library and read about kernels, caches and the batching of "
    "many requests at once.",
    "1 2 3 4 5",
]

LLAMA3_SPLIT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
                r"|\s*[\r\n]+|\s+(?!\S)|\s+")

LLAMA3_STYLE_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}"
    "{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n' + message['content'] | trim + '<|eot_id|>' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}")

LLAMA2_STYLE_TEMPLATE = (
    "{% for message in messages %}{% if message['role'] == 'user' %}"
    "{{ bos_token + '[INST] ' + message['content'] | trim + ' [/INST]' }}"
    "{% elif message['role'] == 'assistant' %}{{ ' ' + message['content'] | trim + eos_token }}"
    "{% else %}{{ raise_exception('Only user and assistant roles are supported') }}{% endif %}{% endfor %}")


def byte_level_tokenizer(vocab_size):
    """A Llama 3-style tokenizer: split regex, byte-level BPE, BOS added by the post-processor."""
    specials = ["<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"]
    tok = Tokenizer(models.BPE(ignore_merges=True))
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(LLAMA3_SPLIT), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size - len(specials), special_tokens=[],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(CORPUS, trainer)
    tok.add_special_tokens(specials)
    bos = tok.token_to_id("<|begin_of_text|>")
    tok.post_processor = processors.TemplateProcessing(
        single="<|begin_of_text|> $A", pair="<|begin_of_text|> $A <|begin_of_text|> $B",
        special_tokens=[("<|begin_of_text|>", bos)])
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<|begin_of_text|>", eos_token="<|eot_id|>",
                                   chat_template=LLAMA3_STYLE_TEMPLATE)
    return fast, [tok.token_to_id("<|end_of_text|>"), tok.token_to_id("<|eot_id|>")]


def sentencepiece_style_tokenizer(vocab_size):
    """A Llama 2-style tokenizer: '▁' for spaces, BPE with byte fallback, BOS by the post-processor."""
    normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
    trained = Tokenizer(models.BPE(unk_token="<unk>"))
    trained.normalizer = normalizer
    trainer = trainers.BpeTrainer(vocab_size=vocab_size - 3 - 256, special_tokens=["<unk>"], show_progress=False,
                                  limit_alphabet=80)
    trained.train_from_iterator(CORPUS, trainer)
    model = json.loads(trained.to_str())["model"]
    # Llama 2 layout: <unk> <s> </s>, then the 256 byte tokens, then the learned pieces.
    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2}
    for b in range(256):
        vocab["<0x%02X>" % b] = len(vocab)
    for piece, _ in sorted(model["vocab"].items(), key=lambda item: item[1]):
        if piece not in vocab:
            vocab[piece] = len(vocab)
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in model["merges"]]
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges, unk_token="<unk>", byte_fallback=True, fuse_unk=True))
    tok.normalizer = normalizer
    tok.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse(),
                                     decoders.Strip(" ", 1, 0)])
    tok.add_special_tokens(["<unk>", "<s>", "</s>"])
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", pair="<s> $A <s> $B",
                                                       special_tokens=[("<s>", 1)])
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", unk_token="<unk>",
                                   chat_template=LLAMA2_STYLE_TEMPLATE)
    return fast, [2]


def randomize(model, seed):
    """Random weights with enough spread that greedy choices are clear; norms near 1, biases non-zero."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "norm" in name:
                param.copy_(torch.rand(param.shape, generator=gen) + 0.5)
            elif name.endswith("bias"):
                param.copy_(torch.randn(param.shape, generator=gen) * 0.5)
            else:
                param.copy_(torch.randn(param.shape, generator=gen) * 0.25)


def classic_config(path):
    """Rewrites a transformers 5 config.json (rope_parameters) into the form of published checkpoints."""
    with open(path) as f:
        config = json.load(f)
    params = config.pop("rope_parameters")
    config["rope_theta"] = params.pop("rope_theta")
    config["rope_scaling"] = None if params.get("rope_type", "default") == "default" else params
    if "dtype" in config:
        config["torch_dtype"] = config.pop("dtype")
    with open(path, "w") as f:
        json.dump(config, f, indent=2)


def greedy(model, ids, steps):
    """Greedy tokens by full recomputation each step; also the smallest top-1/top-2 logit gap."""
    tokens = list(ids)
    out, min_gap = [], float("inf")
    with torch.no_grad():
        for _ in range(steps):
            logits = model(torch.tensor([tokens])).logits[0, -1].float()
            top = torch.topk(logits, 2)
            min_gap = min(min_gap, (top.values[0] - top.values[1]).item())
            next_id = int(top.indices[0])
            out.append(next_id)
            tokens.append(next_id)
    return out, min_gap


def bf16_logits(model, ids):
    with torch.no_grad():
        return model(torch.tensor([ids])).logits[0, -1].float().tolist()


def add_bf16_records(directory):
    """Adds logits_bf16_compute to an existing fixture's reference.json, touching nothing else."""
    path = os.path.join(directory, "reference.json")
    with open(path) as f:
        reference = json.load(f)
    model = AutoModelForCausalLM.from_pretrained(directory, dtype=torch.bfloat16).eval()
    for record in reference["records"]:
        record["logits_bf16_compute"] = bf16_logits(model, record["prompt_token_ids"])
    with open(path, "w") as f:
        json.dump(reference, f)
    print(f"{os.path.basename(directory)}: bf16 records added")


PATH_STEPS = 16  # decode steps the CUDA fixture test checks along the fp32 greedy path


def relative_error(actual, expected):
    """max |actual - expected| / max |expected|, the rule of ai.kiln.testing.Fixtures.relativeError."""
    return ((actual - expected).abs().max() / expected.abs().max()).item()


def bf16_path_errors(fp32_model, bf16_model, record):
    """Hugging Face's own bf16 error at each of the first PATH_STEPS decode positions along the fp32
    greedy path (teacher-forced): the yardstick for a bf16 backend's decode steps."""
    prompt = record["prompt_token_ids"]
    ids = torch.tensor([prompt + record["greedy_token_ids"][:PATH_STEPS]])
    with torch.no_grad():
        fp32 = fp32_model(ids).logits[0].float()
        bf16 = bf16_model(ids).logits[0].float()
    return [relative_error(bf16[len(prompt) + i], fp32[len(prompt) + i]) for i in range(PATH_STEPS)]


def add_bf16_path_errors(directory):
    """Adds bf16_path_errors to an existing fixture's reference.json, touching nothing else."""
    path = os.path.join(directory, "reference.json")
    with open(path) as f:
        reference = json.load(f)
    fp32_model = AutoModelForCausalLM.from_pretrained(directory, dtype=torch.float32).eval()
    bf16_model = AutoModelForCausalLM.from_pretrained(directory, dtype=torch.bfloat16).eval()
    for record in reference["records"]:
        record["bf16_path_errors"] = bf16_path_errors(fp32_model, bf16_model, record)
    with open(path, "w") as f:
        json.dump(reference, f)
    worst = max(max(r["bf16_path_errors"]) for r in reference["records"])
    print(f"{os.path.basename(directory)}: bf16 path errors added (worst {worst:.4f})")


def make(out_dir, name, config_class, tokenizer_kind, config_kwargs, seed, dtype=torch.float32, classic=False,
         shard_size=None):
    directory = os.path.join(out_dir, name)
    shutil.rmtree(directory, ignore_errors=True)
    os.makedirs(directory)
    tokenizer, eos_ids = (byte_level_tokenizer(512) if tokenizer_kind == "byte_level"
                          else sentencepiece_style_tokenizer(512))
    config = config_class(vocab_size=len(tokenizer), bos_token_id=tokenizer.bos_token_id, eos_token_id=eos_ids,
                          **config_kwargs)
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    randomize(model, seed)
    model.to(dtype)
    save_kwargs = {"max_shard_size": shard_size} if shard_size else {}
    model.save_pretrained(directory, **save_kwargs)
    GenerationConfig(bos_token_id=tokenizer.bos_token_id, eos_token_id=eos_ids).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    if classic:
        classic_config(os.path.join(directory, "config.json"))

    # The reference runs from the saved directory, as Kiln will, in fp32 arithmetic.
    reference_model = AutoModelForCausalLM.from_pretrained(directory, dtype=torch.float32).eval()
    # Every fixture also records Hugging Face's own bf16 computation: its distance from the fp32
    # logits is the yardstick for backends that compute in bf16.
    bf16_model = AutoModelForCausalLM.from_pretrained(directory, dtype=torch.bfloat16).eval()
    records = []
    worst_gap = float("inf")
    for prompt in PROMPTS:
        ids = tokenizer(prompt, add_special_tokens=True)["input_ids"]
        with torch.no_grad():
            logits = reference_model(torch.tensor([ids])).logits[0, -1].float()
        tokens, gap = greedy(reference_model, ids, 32)
        worst_gap = min(worst_gap, gap)
        record = {"prompt": prompt, "prompt_token_ids": ids, "logits": logits.tolist(),
                  "greedy_token_ids": tokens, "min_top2_gap": gap}
        record["logits_bf16_compute"] = bf16_logits(bf16_model, ids)
        record["bf16_path_errors"] = bf16_path_errors(reference_model, bf16_model, record)
        records.append(record)
    with open(os.path.join(directory, "reference.json"), "w") as f:
        json.dump({"model": name, "architecture": config.architectures[0], "dtype": str(dtype).replace("torch.", ""),
                   "transformers_version": transformers.__version__, "torch_version": torch.__version__,
                   "eos_token_ids": eos_ids, "records": records}, f)
    files = sorted(os.listdir(directory))
    print(f"{name}: {config.architectures[0]} {dtype} vocab={len(tokenizer)} min top-2 gap={worst_gap:.4f} {files}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="test/resources/fixtures")
    parser.add_argument("--only", nargs="*", help="make only these fixtures (names)")
    parser.add_argument("--add-bf16-records", action="store_true",
                        help="only add Hugging Face bf16-compute logits to the existing fixtures under --out")
    parser.add_argument("--add-bf16-path-errors", action="store_true",
                        help="only add Hugging Face's bf16 error along each greedy path to the existing fixtures")
    args = parser.parse_args()
    if args.add_bf16_path_errors:
        for name in sorted(os.listdir(args.out)):
            if os.path.exists(os.path.join(args.out, name, "reference.json")):
                add_bf16_path_errors(os.path.join(args.out, name))
        return
    if args.add_bf16_records:
        for name in sorted(os.listdir(args.out)):
            if os.path.exists(os.path.join(args.out, name, "reference.json")):
                add_bf16_records(os.path.join(args.out, name))
        return
    wanted = set(args.only or [])

    def make_if_wanted(out, name, *rest, **kwargs):
        if not wanted or name in wanted:
            make(out, name, *rest, **kwargs)
    from transformers import LlamaConfig, MistralConfig, Qwen2Config, Qwen3Config

    small = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, max_position_embeddings=512,
                 rms_norm_eps=1e-5)
    # Llama 2 shape: MHA, untied, SentencePiece-style tokenizer.
    make_if_wanted(args.out, "llama2-mha", LlamaConfig, "sentencepiece",
         dict(small, num_attention_heads=4, num_key_value_heads=4, tie_word_embeddings=False), seed=1)
    # Llama 3 shape: GQA, rope_theta 500000, untied, classic config form.
    make_if_wanted(args.out, "llama3-gqa", LlamaConfig, "byte_level",
         dict(small, num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=False,
              rope_parameters={"rope_type": "default", "rope_theta": 500000.0}), seed=2, classic=True)
    # Llama 3.2 shape: MQA, tied embeddings, llama3 rope scaling (transformers 5 config form).
    make_if_wanted(args.out, "llama32-mqa-tied-rope-scaled", LlamaConfig, "byte_level",
         dict(small, num_attention_heads=4, num_key_value_heads=1, tie_word_embeddings=True,
              rope_parameters={"rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0,
                               "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                               "original_max_position_embeddings": 64}), seed=3)
    # Llama 3.1 shape in the classic form, with llama3 rope scaling and attention bias.
    make_if_wanted(args.out, "llama31-rope-scaled-bias-classic", LlamaConfig, "byte_level",
         dict(small, num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=False, attention_bias=True,
              rope_parameters={"rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0,
                               "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                               "original_max_position_embeddings": 128}), seed=4, classic=True)
    # Mistral: GQA, SentencePiece-style tokenizer.
    make_if_wanted(args.out, "mistral-gqa", MistralConfig, "sentencepiece",
         dict(small, num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=False, sliding_window=None,
              head_dim=16), seed=5)
    # Qwen2: q/k/v bias, tied embeddings.
    make_if_wanted(args.out, "qwen2-bias-tied", Qwen2Config, "byte_level",
         dict(small, num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=True,
              use_sliding_window=False), seed=6)
    # Qwen3: q/k norm, explicit head_dim (32, not hidden/heads = 16), sharded weights.
    make_if_wanted(args.out, "qwen3-qknorm-sharded", Qwen3Config, "byte_level",
         dict(small, num_attention_heads=4, num_key_value_heads=2, head_dim=32, tie_word_embeddings=False,
              use_sliding_window=False), seed=7, shard_size="300KB")
    # bf16 weights (Llama 3 shape, GQA).
    make_if_wanted(args.out, "llama3-gqa-bf16", LlamaConfig, "byte_level",
         dict(small, num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=False,
              rope_parameters={"rope_type": "default", "rope_theta": 500000.0}), seed=8, dtype=torch.bfloat16)
    # The head sizes of real models, which the CUDA kernels are built for: 64 (Llama 3.2 1B) in
    # bf16, and 128 (Llama 3 8B, Qwen) with Qwen3's q/k norm.
    wide = dict(small, hidden_size=128, intermediate_size=256)
    make_if_wanted(args.out, "llama32-d64-bf16", LlamaConfig, "byte_level",
         dict(wide, num_attention_heads=2, num_key_value_heads=1, head_dim=64, tie_word_embeddings=True,
              rope_parameters={"rope_type": "llama3", "rope_theta": 500000.0, "factor": 32.0,
                               "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                               "original_max_position_embeddings": 64}), seed=9, dtype=torch.bfloat16)
    make_if_wanted(args.out, "qwen3-d128", Qwen3Config, "byte_level",
         dict(wide, num_attention_heads=2, num_key_value_heads=1, head_dim=128, tie_word_embeddings=False,
              use_sliding_window=False), seed=10)


if __name__ == "__main__":
    main()
