#!/usr/bin/env python3
"""Hugging Face transformers eager generate on a model directory: the reference point for `kiln bench`.

    python3 scripts/bench_hf_peer.py --model DIR --batch 1 64 --prompt-len 128 --output-len 256

Same workload as `kiln bench`: random prompt tokens, greedy, exactly output-len new tokens (EOS
ignored), bf16 on the GPU. Prints one JSON line per batch size.
"""
import argparse
import json
import time

import torch
from transformers import AutoModelForCausalLM


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--batch", type=int, nargs="+", default=[1])
    parser.add_argument("--prompt-len", type=int, default=128)
    parser.add_argument("--output-len", type=int, default=256)
    args = parser.parse_args()
    model = AutoModelForCausalLM.from_pretrained(args.model, dtype=torch.bfloat16).cuda().eval()
    vocab = model.config.vocab_size
    gen = torch.Generator().manual_seed(0)
    for batch in args.batch:
        prompts = torch.randint(0, vocab, (batch, args.prompt_len), generator=gen).cuda()
        kwargs = dict(do_sample=False, min_new_tokens=args.output_len, max_new_tokens=args.output_len,
                      pad_token_id=0)
        with torch.no_grad():
            model.generate(prompts, **dict(kwargs, min_new_tokens=8, max_new_tokens=8))  # warm-up
            torch.cuda.synchronize()
            start = time.perf_counter()
            out = model.generate(prompts, **kwargs)
            torch.cuda.synchronize()
            seconds = time.perf_counter() - start
        generated = (out.shape[1] - args.prompt_len) * batch
        print(json.dumps({"peer": "transformers-eager", "model": args.model, "batch": batch,
                          "prompt_len": args.prompt_len, "output_len": args.output_len,
                          "output_tokens_per_s": round(generated / seconds, 2), "total_s": round(seconds, 2)}),
              flush=True)


if __name__ == "__main__":
    main()
