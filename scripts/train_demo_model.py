#!/usr/bin/env python3
"""Trains kiln-demo, Kiln's own small model: a Llama-architecture model that writes English.

The text is the King James Bible (public domain; the translation of 1611), as Debian's
bible-kjv-text package ships it (scripts/fetch-demo-corpus.sh writes it out as plain text). The
script trains a byte-level BPE tokenizer on it (Hugging Face tokenizers, the Llama 3 style Kiln's
tokenizer is tested with), then a LlamaForCausalLM from scratch for a given number of minutes on
the text and on chat turns made from it (a verse as the user's message, the verses after it as
the reply), so that both `kiln generate` and `kiln chat` get English back. It writes a Hugging
Face model directory (bf16 safetensors, config.json, generation_config.json, tokenizer.json,
tokenizer_config.json with the chat template), the reference outputs Kiln's fixture tests check
(transformers' fp32 logits and greedy tokens, as scripts/make_fixtures.py records them), the loss
curve (CSV, and a PNG where matplotlib is installed) and sample outputs.

    python3 scripts/train_demo_model.py --corpus kjv.txt --out test/resources/fixtures/kiln-demo \\
        --log-dir docs/demo-model --minutes 5            (on a GPU; --device cpu --tiny to try it)

--reference-only rebuilds the tokenizer from the corpus (the same input gives the same tokenizer)
and records the reference outputs and samples for a model directory already trained.
"""
import argparse
import csv
import json
import math
import os
import random
import re
import sys
import time

import torch
import transformers
from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_fixtures import LLAMA3_SPLIT, bf16_logits, bf16_path_errors, greedy  # noqa: E402

SPECIALS = ["<|begin_of_text|>", "<|end_of_text|>", "<|system|>", "<|user|>", "<|assistant|>", "<|end|>"]

# Each message between its role's marker and <|end|>; the reply follows <|assistant|>.
CHAT_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}"
    "{{ '<|' + message['role'] + '|>\n' + message['content'] | trim + '<|end|>\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% endif %}")

PROMPTS = [
    "In the beginning",
    "And the LORD spake unto Moses, saying,",
    "Blessed are the",
    "The LORD is my shepherd;",
]
CHAT_PROMPTS = [
    [{"role": "user", "content": "And God said, Let there be light: and there was light."}],
    [{"role": "user", "content": "Who made the heaven and the earth?"}],
]


def read_chapters(path):
    """The corpus as chapters of verses: the `bible` program's output, headings dropped, each
    verse's wrapped lines joined."""
    chapters, verses = [], []
    heading = re.compile(r"^\S.*\s\d+$")
    verse = re.compile(r"^\s+\d+\s+(.*)$")
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            line = line.rstrip("\n")
            if not line.strip():
                continue
            if heading.match(line):
                if verses:
                    chapters.append(verses)
                verses = []
            elif (m := verse.match(line)):
                verses.append(m.group(1).strip())
            elif verses:
                verses[-1] += " " + line.strip()
    if verses:
        chapters.append(verses)
    return chapters


def train_tokenizer(texts, vocab_size):
    tok = Tokenizer(models.BPE(ignore_merges=True))
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(LLAMA3_SPLIT), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size - len(SPECIALS), special_tokens=[],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(texts, trainer)
    tok.add_special_tokens(SPECIALS)
    bos = tok.token_to_id("<|begin_of_text|>")
    tok.post_processor = processors.TemplateProcessing(
        single="<|begin_of_text|> $A", pair="<|begin_of_text|> $A <|begin_of_text|> $B",
        special_tokens=[("<|begin_of_text|>", bos)])
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<|begin_of_text|>", eos_token="<|end|>",
                                   pad_token="<|end_of_text|>")
    fast.chat_template = CHAT_TEMPLATE
    return fast


def token_streams(tokenizer, chapters):
    """Two token arrays: the chapters as running text, and chat turns made from them."""
    end_of_text = tokenizer.convert_tokens_to_ids("<|end_of_text|>")
    text_ids, chat_ids = [], []
    for verses in chapters:
        text_ids += tokenizer(" ".join(verses), add_special_tokens=True)["input_ids"] + [end_of_text]
        for i in range(0, len(verses) - 1, 3):
            turn = [{"role": "user", "content": verses[i]},
                    {"role": "assistant", "content": " ".join(verses[i + 1:i + 3])}]
            chat_ids += tokenizer.apply_chat_template(turn, tokenize=True, return_dict=False) + [end_of_text]
    return torch.tensor(text_ids, dtype=torch.long), torch.tensor(chat_ids, dtype=torch.long)


def batches(streams, weights, batch, seq_len, generator):
    """Random windows of seq_len + 1 tokens, each from one stream chosen by weight."""
    while True:
        rows = []
        for _ in range(batch):
            stream = streams[0] if torch.rand(1, generator=generator).item() < weights[0] else streams[1]
            start = torch.randint(0, len(stream) - seq_len - 1, (1,), generator=generator).item()
            rows.append(stream[start:start + seq_len + 1])
        yield torch.stack(rows)


def evaluate(model, stream, batch, seq_len, device, steps=8):
    """Mean next-token loss over fixed windows of the held-out text."""
    model.eval()
    losses = []
    stride = max(1, (len(stream) - seq_len - 1) // (steps * batch))
    starts = [i * stride for i in range(steps * batch)]
    with torch.no_grad():
        for i in range(0, len(starts), batch):
            x = torch.stack([stream[s:s + seq_len + 1] for s in starts[i:i + batch]]).to(device)
            with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
                logits = model(input_ids=x[:, :-1]).logits
            losses.append(torch.nn.functional.cross_entropy(logits.float().reshape(-1, logits.size(-1)),
                                                            x[:, 1:].reshape(-1)).item())
    model.train()
    return sum(losses) / len(losses)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--corpus", required=True, help="the King James Bible as the bible program prints it")
    parser.add_argument("--out", required=True, help="the model directory to write")
    parser.add_argument("--log-dir", required=True, help="where the loss curve and the samples go")
    parser.add_argument("--minutes", type=float, default=5.0, help="training time budget")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--tiny", action="store_true", help="a tiny model and batch, to try the script on a CPU")
    parser.add_argument("--reference-only", action="store_true",
                        help="only rebuild the tokenizer and record the reference and samples for --out")
    parser.add_argument("--seed", type=int, default=1611)
    args = parser.parse_args()

    random.seed(args.seed)
    torch.manual_seed(args.seed)
    device = torch.device(args.device)
    chapters = read_chapters(args.corpus)
    held_out = max(1, len(chapters) // 50)  # the last 2% of chapters (Jude and Revelation) are never trained on
    train_chapters, val_chapters = chapters[:-held_out], chapters[-held_out:]
    print(f"{len(chapters)} chapters, {sum(len(c) for c in chapters)} verses; {held_out} chapters held out")

    vocab_size = 1024 if args.tiny else 4096
    tokenizer = train_tokenizer([" ".join(c) for c in chapters], vocab_size)
    eos_ids = [tokenizer.convert_tokens_to_ids("<|end|>"), tokenizer.convert_tokens_to_ids("<|end_of_text|>")]
    if args.reference_only:
        tokenizer.save_pretrained(args.out)
        record(tokenizer, eos_ids, args)
        return
    text_ids, chat_ids = token_streams(tokenizer, train_chapters)
    val_ids, _ = token_streams(tokenizer, val_chapters)
    print(f"tokens: {len(text_ids)} text, {len(chat_ids)} chat, {len(val_ids)} held out")

    shape = (dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=2, head_dim=32)
             if args.tiny else
             dict(hidden_size=320, intermediate_size=896, num_hidden_layers=6, num_attention_heads=5, head_dim=64))
    config = LlamaConfig(vocab_size=len(tokenizer), num_key_value_heads=1, max_position_embeddings=512,
                         rms_norm_eps=1e-5, tie_word_embeddings=True, bos_token_id=tokenizer.bos_token_id,
                         eos_token_id=eos_ids, rope_parameters={"rope_type": "default", "rope_theta": 10000.0},
                         **shape)
    model = LlamaForCausalLM(config).to(device)
    params = sum(p.numel() for p in model.parameters())
    print(f"model: {params / 1e6:.2f}M parameters {shape}")

    seq_len, batch = (64, 8) if args.tiny else (256, 128)
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3, betas=(0.9, 0.95), weight_decay=0.1,
                                  fused=device.type == "cuda")
    budget = args.minutes * 60
    warmup = 100 if args.tiny else 300
    generator = torch.Generator().manual_seed(args.seed)
    data = batches([text_ids, chat_ids], [0.8, 0.2], batch, seq_len, generator)
    os.makedirs(args.log_dir, exist_ok=True)
    curve_path = os.path.join(args.log_dir, "loss.csv")
    curve = open(curve_path, "w", newline="")
    log = csv.writer(curve)
    log.writerow(["step", "tokens", "seconds", "lr", "train_loss", "held_out_loss"])
    start, step, smoothed = time.time(), 0, None
    model.train()
    while True:
        elapsed = time.time() - start
        if elapsed >= budget:
            break
        # Warm-up, then a cosine over the time budget down to a tenth.
        progress = min(1.0, elapsed / budget)
        lr = 2e-3 * min(1.0, (step + 1) / warmup) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))
        for group in optimizer.param_groups:
            group["lr"] = lr
        x = next(data).to(device, non_blocking=True)
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            logits = model(input_ids=x[:, :-1]).logits
        loss = torch.nn.functional.cross_entropy(logits.float().reshape(-1, logits.size(-1)), x[:, 1:].reshape(-1))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        step += 1
        if step % 50 == 0 or step == 1:
            value = loss.item()
            smoothed = value if smoothed is None else 0.9 * smoothed + 0.1 * value
            held = evaluate(model, val_ids, batch, seq_len, device, steps=2) if step % 500 == 0 or step == 1 else ""
            log.writerow([step, step * batch * seq_len, round(time.time() - start, 1), f"{lr:.2e}", f"{value:.4f}",
                          f"{held:.4f}" if held != "" else ""])
            curve.flush()
            if step % 500 == 0 or step == 1:
                print(f"step {step} ({time.time() - start:.0f} s): loss {value:.3f}, held out {held:.3f}", flush=True)
    final_held = evaluate(model, val_ids, batch, seq_len, device)
    log.writerow([step, step * batch * seq_len, round(time.time() - start, 1), "", f"{smoothed:.4f}",
                  f"{final_held:.4f}"])
    curve.close()
    print(f"trained {step} steps, {step * batch * seq_len / 1e6:.0f}M tokens in {time.time() - start:.0f} s;"
          f" held-out loss {final_held:.3f}")

    os.makedirs(args.out, exist_ok=True)
    model.cpu().to(torch.bfloat16).save_pretrained(args.out)
    GenerationConfig(bos_token_id=tokenizer.bos_token_id, eos_token_id=eos_ids, do_sample=True, temperature=0.8,
                     top_p=0.95).save_pretrained(args.out)
    tokenizer.save_pretrained(args.out)
    record(tokenizer, eos_ids, args)
    plot(curve_path, args.log_dir)


def record(tokenizer, eos_ids, args):
    """The reference (transformers in fp32 over the saved bf16 weights, as Kiln's CPU backend
    computes) and sample outputs, greedy and sampled."""
    reference = LlamaForCausalLM.from_pretrained(args.out, dtype=torch.float32).eval()
    bf16 = LlamaForCausalLM.from_pretrained(args.out, dtype=torch.bfloat16).eval()
    records, samples = [], []
    prompts = [(p, tokenizer(p, add_special_tokens=True)["input_ids"]) for p in PROMPTS]
    # A chat record's prompt is the rendered template without its leading BOS, which tokenizing
    # the text (with special tokens) adds back: the same ids either way.
    bos = tokenizer.bos_token
    prompts += [(tokenizer.apply_chat_template(m, tokenize=False, add_generation_prompt=True).removeprefix(bos),
                 tokenizer.apply_chat_template(m, tokenize=True, add_generation_prompt=True, return_dict=False))
                for m in CHAT_PROMPTS]
    for prompt, ids in prompts:
        with torch.no_grad():
            logits = reference(torch.tensor([ids])).logits[0, -1].float()
        tokens, gap = greedy(reference, ids, 32)
        entry = {"prompt": prompt, "prompt_token_ids": ids, "logits": logits.tolist(), "greedy_token_ids": tokens,
                 "min_top2_gap": gap}
        entry["logits_bf16_compute"] = bf16_logits(bf16, ids)
        entry["bf16_path_errors"] = bf16_path_errors(reference, bf16, entry)
        records.append(entry)
        with torch.no_grad():
            long_greedy = reference.generate(torch.tensor([ids]), max_new_tokens=64, do_sample=False)[0, len(ids):]
            torch.manual_seed(0)
            sampled = reference.generate(torch.tensor([ids]), max_new_tokens=64, do_sample=True, temperature=0.8,
                                         top_p=0.95)[0, len(ids):]
        samples.append({"prompt": prompt, "greedy": tokenizer.decode(long_greedy, skip_special_tokens=True),
                        "sampled_t0.8_top_p0.95": tokenizer.decode(sampled, skip_special_tokens=True),
                        "min_top2_gap_of_32_greedy": gap})
    with open(os.path.join(args.out, "reference.json"), "w") as f:
        json.dump({"model": os.path.basename(os.path.normpath(args.out)), "architecture": "LlamaForCausalLM",
                   "dtype": "bfloat16", "transformers_version": transformers.__version__,
                   "torch_version": torch.__version__, "eos_token_ids": eos_ids, "records": records}, f)
    os.makedirs(args.log_dir, exist_ok=True)
    with open(os.path.join(args.log_dir, "samples.json"), "w") as f:
        json.dump({"samples": samples}, f, indent=2)
    for s in samples:
        print(f"--- {s['prompt']!r}\n  greedy: {s['greedy']}\n  sampled: {s['sampled_t0.8_top_p0.95']}")
    print("files:", {name: os.path.getsize(os.path.join(args.out, name)) for name in sorted(os.listdir(args.out))})


def plot(curve_path, log_dir):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib not installed: no loss-curve PNG (the CSV has it)")
        return
    rows = list(csv.DictReader(open(curve_path)))
    tokens = [int(r["tokens"]) / 1e6 for r in rows if r["train_loss"]]
    train = [float(r["train_loss"]) for r in rows if r["train_loss"]]
    held = [(int(r["tokens"]) / 1e6, float(r["held_out_loss"])) for r in rows if r["held_out_loss"]]
    plt.figure(figsize=(6, 3.5), dpi=100)
    plt.plot(tokens, train, label="training batches")
    plt.plot([h[0] for h in held], [h[1] for h in held], "o-", label="held-out chapters")
    plt.xlabel("tokens seen (millions)")
    plt.ylabel("cross-entropy (nats/token)")
    plt.legend()
    plt.tight_layout()
    plt.savefig(os.path.join(log_dir, "loss.png"))


if __name__ == "__main__":
    main()
