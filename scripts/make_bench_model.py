#!/usr/bin/env python3
"""Writes a random-weight bf16 model directory of a real model's shape, for benchmarks.

    python3 scripts/make_bench_model.py --shape llama-3.2-1b --tokenizer DIR --out /tmp/llama-1b
    python3 scripts/make_bench_model.py --shape llama-154m --tokenizer target/tokenizer-vocab/llama2 --out /tmp/llama-154m

The weights are random (seeded) but scaled like a trained model's (each linear layer's output
keeps unit variance: std = 1 / sqrt(fan_in)), so activations stay finite and logits are spread
enough that greedy decoding is not a string of near-ties. --tokenizer (optional) names a directory holding a
Hugging Face tokenizer.json (and tokenizer_config.json) of a vocabulary no larger than the shape's,
e.g. the Llama 3 or Qwen 3 vocabulary, or for llama-154m the 32,000-token Llama 2 one
(scripts/fetch-test-vocabularies.sh puts all three under target/tokenizer-vocab); the embedding rows
past the tokenizer's are never produced by it but are read like the rest. Needs torch, safetensors and transformers (for the config).
"""
import argparse
import json
import os
import shutil

import torch
from safetensors.torch import save_file

SHAPES = {
    "llama-3.2-1b": dict(architectures=["LlamaForCausalLM"], model_type="llama", hidden_size=2048,
                         intermediate_size=8192, num_hidden_layers=16, num_attention_heads=32,
                         num_key_value_heads=8, head_dim=64, vocab_size=128256, tie_word_embeddings=True,
                         rope_theta=500000.0, max_position_embeddings=131072, rms_norm_eps=1e-5,
                         rope_scaling={"rope_type": "llama3", "factor": 32.0, "low_freq_factor": 1.0,
                                       "high_freq_factor": 4.0, "original_max_position_embeddings": 8192},
                         bos_token_id=128000, eos_token_id=[128001, 128008, 128009]),
    # A small Llama-2-style shape (~154 M parameters with the embedding tied to the output layer;
    # untied it would be ~187 M), for the Llama 2 / SentencePiece-style 32,000-token vocabulary.
    "llama-154m": dict(architectures=["LlamaForCausalLM"], model_type="llama", hidden_size=1024,
                       intermediate_size=4096, num_hidden_layers=8, num_attention_heads=16,
                       num_key_value_heads=4, head_dim=64, vocab_size=32000, tie_word_embeddings=True,
                       rope_theta=10000.0, max_position_embeddings=4096, rms_norm_eps=1e-5, rope_scaling=None,
                       bos_token_id=1, eos_token_id=2),
    "llama-3-8b": dict(architectures=["LlamaForCausalLM"], model_type="llama", hidden_size=4096,
                       intermediate_size=14336, num_hidden_layers=32, num_attention_heads=32,
                       num_key_value_heads=8, head_dim=128, vocab_size=128256, tie_word_embeddings=False,
                       rope_theta=500000.0, max_position_embeddings=8192, rms_norm_eps=1e-5, rope_scaling=None,
                       bos_token_id=128000, eos_token_id=[128001, 128009]),
    "qwen2.5-7b": dict(architectures=["Qwen2ForCausalLM"], model_type="qwen2", hidden_size=3584,
                       intermediate_size=18944, num_hidden_layers=28, num_attention_heads=28,
                       num_key_value_heads=4, head_dim=128, vocab_size=152064, tie_word_embeddings=False,
                       rope_theta=1000000.0, max_position_embeddings=32768, rms_norm_eps=1e-6, rope_scaling=None,
                       use_sliding_window=False, bos_token_id=151643, eos_token_id=[151645, 151643]),
}


def tensors_of(config, seed, device):
    """Yields (name, tensor) for every weight of the shape, bf16, made on the device."""
    gen = torch.Generator(device=device).manual_seed(seed)
    h, inter = config["hidden_size"], config["intermediate_size"]
    d = config["head_dim"]
    q, kv = config["num_attention_heads"] * d, config["num_key_value_heads"] * d
    bias = config["model_type"] == "qwen2"

    def linear(rows, cols):
        return (torch.randn(rows, cols, generator=gen, device=device) / cols ** 0.5).to(torch.bfloat16)

    def norm(n):
        return (1.0 + 0.1 * torch.randn(n, generator=gen, device=device)).to(torch.bfloat16)

    yield "model.embed_tokens.weight", torch.randn(config["vocab_size"], h, generator=gen,
                                                   device=device).to(torch.bfloat16)
    for i in range(config["num_hidden_layers"]):
        p = f"model.layers.{i}."
        yield p + "input_layernorm.weight", norm(h)
        yield p + "self_attn.q_proj.weight", linear(q, h)
        yield p + "self_attn.k_proj.weight", linear(kv, h)
        yield p + "self_attn.v_proj.weight", linear(kv, h)
        if bias:
            for name, n in (("q", q), ("k", kv), ("v", kv)):
                yield p + f"self_attn.{name}_proj.bias", (0.1 * torch.randn(n, generator=gen, device=device)).to(
                    torch.bfloat16)
        yield p + "self_attn.o_proj.weight", linear(h, q)
        yield p + "post_attention_layernorm.weight", norm(h)
        yield p + "mlp.gate_proj.weight", linear(inter, h)
        yield p + "mlp.up_proj.weight", linear(inter, h)
        yield p + "mlp.down_proj.weight", linear(h, inter)
    yield "model.norm.weight", norm(h)
    if not config["tie_word_embeddings"]:
        yield "lm_head.weight", linear(config["vocab_size"], h)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shape", required=True, choices=sorted(SHAPES))
    parser.add_argument("--tokenizer", help="directory with tokenizer.json (none: the model takes token ids only)")
    parser.add_argument("--out", required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--shard-gb", type=float, default=5.0, help="largest safetensors shard")
    args = parser.parse_args()

    config = dict(SHAPES[args.shape])
    config.update(hidden_act="silu", torch_dtype="bfloat16", attention_bias=config["model_type"] == "qwen2")
    os.makedirs(args.out, exist_ok=True)
    device = "cuda" if torch.cuda.is_available() else "cpu"

    shard, shard_bytes, shards, weight_map = {}, 0, [], {}

    def flush():
        nonlocal shard, shard_bytes
        if shard:
            name = f"model-{len(shards) + 1:05d}.safetensors"
            save_file(shard, os.path.join(args.out, name), metadata={"format": "pt"})
            shards.append(name)
            for tensor_name in shard:
                weight_map[tensor_name] = name
            shard, shard_bytes = {}, 0

    total, params = 0, 0
    for name, tensor in tensors_of(config, args.seed, device):
        size = tensor.numel() * tensor.element_size()
        params += tensor.numel()
        if shard_bytes + size > args.shard_gb * 1e9:
            flush()
        shard[name] = tensor.cpu()
        shard_bytes += size
        total += size
    flush()
    with open(os.path.join(args.out, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f, indent=1)
    with open(os.path.join(args.out, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
    with open(os.path.join(args.out, "generation_config.json"), "w") as f:
        json.dump({"bos_token_id": config["bos_token_id"], "eos_token_id": config["eos_token_id"]}, f, indent=2)
    for name in ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja"):
        source = os.path.join(args.tokenizer, name) if args.tokenizer else None
        if source and os.path.exists(source):
            shutil.copy(source, os.path.join(args.out, name))
    print(f"{args.shape}: {params / 1e6:.1f} M parameters, {total / 1e9:.2f} GB of bf16 weights in {len(shards)} shards"
          f" -> {args.out}")


if __name__ == "__main__":
    main()
