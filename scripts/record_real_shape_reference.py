#!/usr/bin/env python3
"""Records Hugging Face transformers' outputs on a benchmark model (scripts/make_bench_model.py) for
the GPU test ai.kiln.backend.cuda.RealShapeReferenceTest.

    python3 scripts/record_real_shape_reference.py --model DIR --out reference.json

For 4 random-token prompts (seeded): the prompt ids, the last-position logits computed in fp32 and
in bf16 (the distance between the two is the yardstick for a bf16 backend), 32 greedy tokens of
bf16 generate() (the dtype the checkpoint is stored in, as served), and, along that greedy path,
the fp32 logits' top 8 (ids and values) at each of the 32 positions, so a bf16 backend's choice
at a near-tie can be told apart from a wrong one.
"""
import argparse
import json

import torch
from transformers import AutoModelForCausalLM

PROMPT_LENGTHS = [7, 64, 128, 300]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--new-tokens", type=int, default=32)
    args = parser.parse_args()
    gen = torch.Generator().manual_seed(1234)
    records = []
    model = AutoModelForCausalLM.from_pretrained(args.model, dtype=torch.bfloat16).cuda().eval()
    vocab = model.config.vocab_size
    prompts = [torch.randint(0, vocab, (n,), generator=gen).tolist() for n in PROMPT_LENGTHS]
    with torch.no_grad():
        for ids in prompts:
            x = torch.tensor([ids]).cuda()
            logits = model(x).logits[0, -1].float()
            out = model.generate(x, do_sample=False, max_new_tokens=args.new_tokens,
                                 min_new_tokens=args.new_tokens, pad_token_id=0)
            records.append({"prompt_token_ids": ids, "logits_bf16_compute": logits.tolist(),
                            "greedy_token_ids": out[0, len(ids):].tolist()})
    del model
    torch.cuda.empty_cache()
    model = AutoModelForCausalLM.from_pretrained(args.model, dtype=torch.float32).cuda().eval()
    with torch.no_grad():
        for record in records:
            prompt, greedy = record["prompt_token_ids"], record["greedy_token_ids"]
            x = torch.tensor([prompt + greedy[:-1]]).cuda()
            logits = model(x).logits[0].float()
            record["logits"] = logits[len(prompt) - 1].tolist()
            top = torch.topk(logits[len(prompt) - 1:], 8, dim=-1)
            record["teacher_forced_top_ids"] = top.indices.tolist()
            record["teacher_forced_top_logits"] = top.values.tolist()
    with open(args.out, "w") as f:
        json.dump({"model": args.model, "records": records}, f)
    for r in records:
        a, b = torch.tensor(r["logits"]), torch.tensor(r["logits_bf16_compute"])
        top = torch.topk(a, 2).values
        print(f"prompt {len(r['prompt_token_ids'])}: bf16-vs-fp32 error "
              f"{((a - b).abs().max() / a.abs().max()).item():.3e}, top-2 gap {(top[0] - top[1]).item():.3f}")


if __name__ == "__main__":
    main()
