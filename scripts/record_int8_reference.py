#!/usr/bin/env python3
"""Records Hugging Face's outputs for the fixtures with Kiln's int8 weights (--quantization int8).

For each fixture directory holding a reference.json, the model is loaded in fp32 and every linear
layer's weight (the q/k/v/o projections, gate/up/down and the LM head) is replaced by its int8
row quantisation as Kiln makes it, given back as fp32 values: per row, scale = max |w| / 127 in
fp32, q = round-half-even(w * (1 / scale)) clamped to [-127, 127], w' = q * scale. The embedding
table, norms and biases stay as stored; a tied LM head becomes a quantised copy while the
embedding lookup keeps the unquantised table, as in Kiln. Then, for each of the fixture's prompts,
the logits at the last prompt position (fp32 arithmetic) and 32 greedy tokens go to
reference-int8.json beside reference.json. Run where torch and transformers are installed:

    python3 scripts/record_int8_reference.py --fixtures test/resources/fixtures
"""
import argparse
import json
import os

import torch
import transformers
from transformers import AutoModelForCausalLM

from make_fixtures import greedy

LINEAR_NAMES = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


def int8_rows(weight):
    """The fp32 values Kiln's int8 rows of this [N, K] weight stand for."""
    w = weight.detach().to(torch.float32)
    scale = w.abs().amax(dim=1, keepdim=True) / torch.tensor(127.0, dtype=torch.float32)
    inverse = torch.where(scale > 0, torch.tensor(1.0, dtype=torch.float32) / scale, torch.zeros_like(scale))
    q = torch.round(w * inverse).clamp(-127, 127)
    return q * scale


def quantize(model):
    with torch.no_grad():
        for name, module in model.named_modules():
            if isinstance(module, torch.nn.Linear) and name.split(".")[-1] in LINEAR_NAMES:
                module.weight.copy_(int8_rows(module.weight))
        head = model.get_output_embeddings()
        # A tied head shares its parameter with the embedding: give it its own, quantised.
        head.weight = torch.nn.Parameter(int8_rows(head.weight).clone(), requires_grad=False)


def record(directory):
    with open(os.path.join(directory, "reference.json")) as f:
        reference = json.load(f)
    model = AutoModelForCausalLM.from_pretrained(directory, dtype=torch.float32).eval()
    quantize(model)
    records = []
    worst_gap = float("inf")
    for r in reference["records"]:
        ids = r["prompt_token_ids"]
        with torch.no_grad():
            logits = model(torch.tensor([ids])).logits[0, -1].float()
        tokens, gap = greedy(model, ids, 32)
        worst_gap = min(worst_gap, gap)
        records.append({"prompt": r["prompt"], "prompt_token_ids": ids, "logits": logits.tolist(),
                        "greedy_token_ids": tokens, "min_top2_gap": gap})
    with open(os.path.join(directory, "reference-int8.json"), "w") as f:
        json.dump({"model": reference["model"], "architecture": reference["architecture"],
                   "dtype": reference["dtype"], "quantization": "int8 per row, symmetric",
                   "transformers_version": transformers.__version__, "torch_version": torch.__version__,
                   "eos_token_ids": reference["eos_token_ids"], "records": records}, f)
    print(f"{reference['model']}: min top-2 gap {worst_gap:.4f}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--fixtures", default="test/resources/fixtures")
    args = parser.parse_args()
    for name in sorted(os.listdir(args.fixtures)):
        directory = os.path.join(args.fixtures, name)
        if os.path.isfile(os.path.join(directory, "reference.json")):
            record(directory)


if __name__ == "__main__":
    main()
