#!/usr/bin/env python3
"""Makes Kiln's FP8 (e4m3) checkpoint fixtures and their references, with PyTorch as the reference.

From the llama3-gqa fixture (fp32 weights, a tokenizer and reference.json's prompts) it writes one
tiny FP8 checkpoint per published form, each in its own directory beside the others:

  llama3-gqa-fp8-ct-channel-dynamic  compressed-tensors float-quantized, a bf16 scale per channel,
                                     inputs dynamic per token, lm_head ignored
  llama3-gqa-fp8-ct-tensor-w8a16     compressed-tensors float-quantized, a scale per tensor,
                                     no input quantisation (weight-only)
  llama3-gqa-fp8-static              AutoFP8 (quant_method fp8), a scale per tensor, static
                                     input_scale calibrated on the prompts, lm_head ignored
  llama3-gqa-fp8-fbgemm              fbgemm_fp8, a scale per channel, dynamic per-token inputs
                                     bounded by activation_scale_ub; lm_head quantised too

Tensors kept in float (embedding, norms, an ignored lm_head) are stored in bf16 to keep the files
small. Each directory gets reference-fp8.json: for each prompt, the logits at the last prompt
position and up to 32 greedy tokens (those that
stay put under ulp-sized noise, see stable_prefix) of a forward whose linear layers run Kiln's FP8 numerics emulated
in fp32: the weights dequantised (e4m3 value * scale), the inputs quantised as the scheme says
(per token: scale = amax(row) / 448, bounded by activation_scale_ub; static: input_scale; then
e4m3(x * (1 / scale)) rounded to nearest even and saturated at 448, times the scale), an fp32
matmul. Fused projections use the largest of their shards' static input scales, as Kiln does.

With --from-float DIR it instead records DIR/reference-fp8.json for --quantization fp8 on that
float checkpoint: the seven projections quantised to e4m3 with a scale per output row
(amax / 448), inputs dynamic per token, embedding and LM head as stored.

With --tensor-core-error (on a GPU with FP8 tensor cores) it writes, beside each of those
references, reference-fp8-tensor-cores.json: how far the same model moves from the reference when
its quantised products run on the FP8 tensor cores (torch._scaled_mm, cuBLASLt, products summed
by the tensor cores, the scales applied in fp32 after) and the rest in fp32 on the GPU: per prompt,
the logits' relative error and how many of the recorded greedy tokens it reproduces, the worst
over a few runs with tensor-core-sized noise (see record_tensor_core_error). That is the naive
FP8 GPU implementation's own error, which bounds Kiln's CUDA backend in its FP8 fixture test.

    /path/to/python scripts/make_fp8_fixtures.py --fixtures test/resources/fixtures
    /path/to/python scripts/make_fp8_fixtures.py --from-float test/resources/fixtures/llama3-gqa-bf16
"""
import argparse
import json
import os
import shutil

import torch
import transformers
from safetensors.torch import load_file, save_file
from transformers import AutoModelForCausalLM

from make_fixtures import greedy

E4M3_MAX = 448.0
PROJECTIONS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
FUSED = {"q_proj": "qkv", "k_proj": "qkv", "v_proj": "qkv", "gate_proj": "gate_up", "up_proj": "gate_up"}
F32 = torch.float32


def to_e4m3(values):
    """e4m3 codes of fp32 values: nearest even, saturating at 448 (torch's cast alone would give NaN)."""
    return values.clamp(-E4M3_MAX, E4M3_MAX).to(torch.float8_e4m3fn)


def smallest_scale(scale):
    """A non-zero scale below FLT_MIN raised to it, as Kiln does: its reciprocal stays finite."""
    tiny = torch.finfo(F32).tiny
    return torch.where((scale > 0) & (scale < tiny), torch.full_like(scale, tiny), scale)


def quantize_rows(weight):
    """(codes [N, K], scales [N]) with scale = amax(row) / 448 and codes = e4m3(w * (1 / scale))."""
    scale = smallest_scale(weight.abs().amax(dim=1) / torch.tensor(E4M3_MAX, dtype=F32))
    inverse = torch.where(scale > 0, torch.tensor(1.0, dtype=F32) / scale, torch.zeros_like(scale))
    return to_e4m3(weight * inverse[:, None]), scale


def quantize_tensor(weight, scale):
    inverse = torch.tensor(1.0, dtype=F32) / scale
    return to_e4m3(weight * inverse)


class Fp8Linear(torch.nn.Module):
    """A linear layer with Kiln's FP8 numerics emulated in fp32 (module docstring)."""

    # Relative noise put on the inputs while the greedy path's stability is probed (see record).
    input_noise = 0.0
    # Whether quantised products run on the GPU's FP8 tensor cores (see record_tensor_core_error).
    tensor_cores = False

    def __init__(self, codes, row_scales, mode, input_scale=None, scale_ub=None):
        super().__init__()
        # Buffers, so that the module moves to the GPU with the model.
        self.register_buffer("weight_values", codes.to(F32) * row_scales.to(F32)[:, None])  # [N, K]
        self.register_buffer("codes", codes)  # [N, K] e4m3
        self.register_buffer("row_scales", row_scales.to(F32))  # [N]
        self.register_buffer("input_scale", input_scale)  # [1] or None
        self.mode, self.scale_ub = mode, scale_ub

    def forward(self, x):
        x = x.to(F32)
        if Fp8Linear.input_noise:
            x = x * (1 + Fp8Linear.input_noise * torch.randn_like(x))
        if self.mode == "dynamic":
            amax = x.abs().amax(dim=-1, keepdim=True)
            if self.scale_ub is not None:
                amax = amax.clamp(max=self.scale_ub)
            scale = amax / torch.tensor(E4M3_MAX, dtype=F32)
        elif self.mode == "static":
            scale = self.input_scale.reshape(1).to(F32)
        else:
            return torch.nn.functional.linear(x, self.weight_values)
        scale = smallest_scale(scale)
        inverse = torch.where(scale > 0, torch.tensor(1.0, dtype=F32) / scale, torch.zeros_like(scale))
        if Fp8Linear.tensor_cores:
            return self.tensor_core_product(to_e4m3(x * inverse), scale)
        xq = to_e4m3(x * inverse).to(F32) * scale
        return torch.nn.functional.linear(xq, self.weight_values)

    def tensor_core_product(self, x_codes, x_scale):
        """(x_codes @ codes^T) on the FP8 tensor cores, then * x_scale * row_scales in fp32."""
        rows = x_codes.reshape(-1, x_codes.shape[-1])  # [M, K] e4m3
        padded = (rows.shape[0] + 15) // 16 * 16  # _scaled_mm takes multiples of 16 rows
        a = torch.zeros(padded, rows.shape[1], dtype=torch.float8_e4m3fn, device=rows.device)
        a[: rows.shape[0]] = rows
        one = torch.tensor(1.0, device=rows.device)
        acc = torch._scaled_mm(a, self.codes.t(), scale_a=one, scale_b=one, out_dtype=F32)
        out = acc[: rows.shape[0]] * (x_scale.reshape(-1, 1).expand(rows.shape[0], 1) * self.row_scales)
        return out.reshape(*x_codes.shape[:-1], -1)


def module_name(layer, projection):
    return f"model.layers.{layer}.{'self_attn' if projection[0] in 'qkvo' else 'mlp'}.{projection}"


def calibrate_input_scales(model, prompts):
    """amax / 448 of every projection's input over the prompts, fused shards given their largest."""
    amax, hooks = {}, []
    for name, module in model.named_modules():
        if name.split(".")[-1] in PROJECTIONS:
            def hook(mod, args, name=name):
                amax[name] = max(amax.get(name, 0.0), args[0].abs().max().item())
            hooks.append(module.register_forward_pre_hook(hook))
    with torch.no_grad():
        for ids in prompts:
            model(torch.tensor([ids]))
    for h in hooks:
        h.remove()
    return {name: torch.tensor([value / E4M3_MAX], dtype=F32) for name, value in amax.items()}


def install(model, modules):
    """Replaces the named linear layers by their FP8 emulations."""
    for name, layer in modules.items():
        parent = model.get_submodule(name.rsplit(".", 1)[0]) if "." in name else model
        setattr(parent, name.rsplit(".", 1)[-1], layer)


def stable_prefix(model, ids, tokens, trials=6, noise=2e-7):
    """The greedy tokens that survive fp32-rounding-sized noise on every FP8 layer's inputs.

    NOTE: an activation within a few ulps of an e4m3 rounding boundary rounds either way on two
    correct implementations that sum in different orders, and one e4m3 step (2^-4 relative) can
    tip a later near-tie of the greedy path; with static per-tensor input scales, where small rows
    have few significant bits, that happens within 32 tokens. Only the prefix every noisy run
    agrees on is recorded, so an exact comparison of it tests the numerics and not the luck.
    """
    keep = len(tokens)
    torch.manual_seed(0)
    Fp8Linear.input_noise = noise
    try:
        for _ in range(trials):
            noisy, _ = greedy(model, ids, keep)
            keep = next((i for i, (a, b) in enumerate(zip(noisy, tokens)) if a != b), keep)
    finally:
        Fp8Linear.input_noise = 0.0
    return tokens[:keep]


def noise_logits_error(model, ids, logits, trials=6, noise=2e-7):
    """The largest relative error (max |diff| / max |logit|) ulp-sized input noise gives the logits.

    NOTE: what a correct implementation that rounds differently can be off by: on some models an
    e4m3 rounding that tips one way in one run and the other way in another moves the logits far
    more than fp32 rounding does (1e-2 on llama3-gqa-bf16's longer prompts). The tests allow twice
    this, or their fixed bound where that is larger.
    """
    torch.manual_seed(1)
    Fp8Linear.input_noise = noise
    worst = 0.0
    try:
        for _ in range(trials):
            with torch.no_grad():
                noisy = model(torch.tensor([ids])).logits[0, -1].float()
            worst = max(worst, ((noisy - logits).abs().max() / logits.abs().max()).item())
    finally:
        Fp8Linear.input_noise = 0.0
    return worst


def record(model, prompts, path, meta):
    records, worst_gap = [], float("inf")
    for r in prompts:
        ids = r["prompt_token_ids"]
        with torch.no_grad():
            logits = model(torch.tensor([ids])).logits[0, -1].float()
        tokens, gap = greedy(model, ids, 32)
        tokens = stable_prefix(model, ids, tokens)
        spread = noise_logits_error(model, ids, logits)
        print(f"  {len(ids)}-token prompt: {len(tokens)} stable greedy tokens, noise moves the logits {spread:.1e}")
        worst_gap = min(worst_gap, gap)
        records.append({"prompt": r["prompt"], "prompt_token_ids": ids, "logits": logits.tolist(),
                        "greedy_token_ids": tokens, "min_top2_gap": gap, "noise_logits_error": spread})
    meta = dict(meta, transformers_version=transformers.__version__, torch_version=torch.__version__,
                records=records)
    with open(path, "w") as f:
        json.dump(meta, f)
    print(f"{path}: min top-2 gap {worst_gap:.4f}")


def float_model(directory, tensors=None):
    model = AutoModelForCausalLM.from_pretrained(directory, dtype=F32).eval()
    if tensors is not None:
        model.load_state_dict({k: v.to(F32) for k, v in tensors.items()}, strict=False)
    return model


FORMATS = {
    "llama3-gqa-fp8-ct-channel-dynamic": dict(per_channel=True, mode="dynamic", scale_dtype=torch.bfloat16,
                                              lm_head=False, config={
        "quant_method": "compressed-tensors", "format": "float-quantized", "quantization_status": "compressed",
        "config_groups": {"group_0": {"targets": ["Linear"],
            "weights": {"num_bits": 8, "type": "float", "strategy": "channel", "symmetric": True, "dynamic": False},
            "input_activations": {"num_bits": 8, "type": "float", "strategy": "token", "symmetric": True,
                                  "dynamic": True}}},
        "ignore": ["lm_head"], "kv_cache_scheme": None}),
    "llama3-gqa-fp8-ct-tensor-w8a16": dict(per_channel=False, mode="none", scale_dtype=F32, lm_head=False, config={
        "quant_method": "compressed-tensors", "format": "float-quantized", "quantization_status": "compressed",
        "config_groups": {"group_0": {"targets": ["Linear"],
            "weights": {"num_bits": 8, "type": "float", "strategy": "tensor", "symmetric": True, "dynamic": False},
            "input_activations": None}},
        "ignore": ["lm_head"], "kv_cache_scheme": None}),
    "llama3-gqa-fp8-static": dict(per_channel=False, mode="static", scale_dtype=F32, lm_head=False, config={
        "quant_method": "fp8", "activation_scheme": "static", "ignored_layers": ["lm_head"]}),
    "llama3-gqa-fp8-fbgemm": dict(per_channel=True, mode="dynamic", scale_dtype=F32, lm_head=True, config={
        "quant_method": "fbgemm_fp8", "modules_to_not_convert": []}),
}


def make_checkpoint(source, out_dir, name, spec, prompts, reference, write=True):
    """Writes the checkpoint and its reference; with write=False, returns the emulating model only."""
    tensors = load_file(os.path.join(source, "model.safetensors"))
    # Float tensors rounded to bf16 first: what the fixture stores, and what both sides compute from.
    tensors = {k: v.to(torch.bfloat16) for k, v in tensors.items()}
    base = float_model(source, tensors)
    with open(os.path.join(source, "config.json")) as f:
        config = json.load(f)
    config["torch_dtype"] = "bfloat16"
    quant_config = dict(spec["config"])
    layers = config["num_hidden_layers"]
    modules = [module_name(i, p) for i in range(layers) for p in PROJECTIONS] + (["lm_head"] if spec["lm_head"] else [])
    input_scales = calibrate_input_scales(base, [r["prompt_token_ids"] for r in prompts]) if spec["mode"] == "static" else {}
    scale_ub = None
    if quant_config["quant_method"] == "fbgemm_fp8":
        # A bound below the largest row maxima, so that it clamps some rows and the test sees it.
        observed = calibrate_input_scales(base, [r["prompt_token_ids"] for r in prompts])
        scale_ub = float(torch.stack(list(observed.values())).median() * E4M3_MAX)
        quant_config["activation_scale_ub"] = scale_ub
    stored, emulated = {}, {}
    for module in modules:
        weight = tensors[module + ".weight"].to(F32)
        if spec["per_channel"]:
            codes, scale = quantize_rows(weight)
            scale = scale.to(spec["scale_dtype"])
            inverse = torch.tensor(1.0, dtype=F32) / scale.to(F32)
            codes = to_e4m3(weight * inverse[:, None])  # again, with the scale as stored
            stored[module + ".weight_scale"] = scale[:, None].contiguous()
            row_scales = scale.to(F32)
        else:
            scale = (weight.abs().amax() / torch.tensor(E4M3_MAX, dtype=F32)).reshape(())
            codes = quantize_tensor(weight, scale)
            stored[module + ".weight_scale"] = scale.reshape(()) if quant_config["quant_method"] == "fp8" \
                else scale.reshape(1)
            row_scales = scale.expand(weight.shape[0])
        stored[module + ".weight"] = codes
        input_scale = None
        if spec["mode"] == "static":
            input_scale = input_scales[module]
            stored[module + ".input_scale"] = input_scale.reshape(())
        emulated[module] = (codes, row_scales, input_scale)
    # Fused shards share one input: Kiln quantises it with their largest static scale.
    for module, (codes, row_scales, input_scale) in list(emulated.items()):
        if input_scale is not None and module.split(".")[-1] in FUSED:
            prefix = module.rsplit(".", 1)[0]
            group = [m for m in emulated if m.rsplit(".", 1)[0] == prefix
                     and FUSED.get(m.split(".")[-1]) == FUSED[module.split(".")[-1]]]
            input_scale = torch.stack([emulated[m][2] for m in group]).max().reshape(1)
        emulated[module] = (codes, row_scales, input_scale)
    if not write:
        install(base, {m: Fp8Linear(c, s, spec["mode"], i, scale_ub) for m, (c, s, i) in emulated.items()})
        return base
    for key, value in tensors.items():
        if key.rsplit(".", 1)[0] not in modules:
            stored[key] = value
    os.makedirs(out_dir, exist_ok=True)
    save_file({k: v.contiguous() for k, v in stored.items()}, os.path.join(out_dir, "model.safetensors"),
              metadata={"format": "pt"})
    config["quantization_config"] = quant_config
    with open(os.path.join(out_dir, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
    for extra in ("generation_config.json", "tokenizer.json", "tokenizer_config.json"):
        if os.path.isfile(os.path.join(source, extra)):
            shutil.copy(os.path.join(source, extra), os.path.join(out_dir, extra))
    install(base, {m: Fp8Linear(c, s, spec["mode"], i, scale_ub) for m, (c, s, i) in emulated.items()})
    record(base, prompts, os.path.join(out_dir, "reference-fp8.json"),
           {"model": name, "architecture": reference["architecture"], "dtype": "bfloat16",
            "quantization": json.dumps(quant_config, sort_keys=True), "eos_token_ids": reference["eos_token_ids"]})


def quantized_from_float(directory):
    """The float checkpoint with its projections as --quantization fp8 makes them, emulated."""
    model = float_model(directory)
    modules = {}
    for name, module in model.named_modules():
        if name.split(".")[-1] in PROJECTIONS:
            codes, scale = quantize_rows(module.weight.detach().to(F32))
            modules[name] = Fp8Linear(codes, scale, "dynamic")
    install(model, modules)
    return model


def record_from_float(directory):
    with open(os.path.join(directory, "reference.json")) as f:
        reference = json.load(f)
    model = quantized_from_float(directory)
    record(model, reference["records"], os.path.join(directory, "reference-fp8.json"),
           {"model": reference["model"], "architecture": reference["architecture"], "dtype": reference["dtype"],
            "quantization": "--quantization fp8: e4m3 per row, dynamic per-token inputs",
            "eos_token_ids": reference["eos_token_ids"]})


def record_tensor_core_error(model, directory, trials=4, noise=2.0 ** -13):
    """reference-fp8-tensor-cores.json beside directory's reference-fp8.json (module docstring).

    NOTE: two correct tensor-core implementations differ in how the tensor cores add products
    (about 2^-13 of the terms' magnitudes), and such a difference tips e4m3 roundings of later
    inputs. So the run is repeated with that much relative noise on every FP8 layer's inputs: the
    largest logits error and the shortest reproduced greedy prefix over the runs are recorded.
    """
    with open(os.path.join(directory, "reference-fp8.json")) as f:
        reference = json.load(f)
    model = model.to("cuda")
    Fp8Linear.tensor_cores = True
    torch.manual_seed(2)
    records = []
    try:
        for r in reference["records"]:
            ids, recorded = r["prompt_token_ids"], r["greedy_token_ids"]
            expected = torch.tensor(r["logits"], dtype=F32, device="cuda")
            error, agree = 0.0, len(recorded)
            for trial in range(trials):
                Fp8Linear.input_noise = 0.0 if trial == 0 else noise
                with torch.no_grad():
                    logits = model(torch.tensor([ids], device="cuda")).logits[0, -1].float()
                    error = max(error, ((logits - expected).abs().max() / expected.abs().max()).item())
                    tokens, context = [], list(ids)
                    for _ in recorded:
                        step = model(torch.tensor([context], device="cuda")).logits[0, -1]
                        tokens.append(int(step.argmax()))
                        context.append(tokens[-1])
                agree = min(agree, next((i for i, (a, b) in enumerate(zip(tokens, recorded)) if a != b), len(recorded)))
            print(f"  {os.path.basename(directory)} {len(ids)}-token prompt: logits error {error:.2e}, "
                  f"{agree} of {len(recorded)} greedy tokens")
            records.append({"prompt": r["prompt"], "logits_error": error, "greedy_tokens_reproduced": agree})
    finally:
        Fp8Linear.tensor_cores = False
        Fp8Linear.input_noise = 0.0
    with open(os.path.join(directory, "reference-fp8-tensor-cores.json"), "w") as f:
        json.dump({"device": torch.cuda.get_device_name(), "torch_version": torch.__version__, "trials": trials,
                   "input_noise": noise, "records": records}, f, indent=1)
        f.write("\n")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--fixtures", default="test/resources/fixtures")
    parser.add_argument("--source", default="llama3-gqa")
    parser.add_argument("--from-float", default=None)
    parser.add_argument("--tensor-core-error", action="store_true")
    args = parser.parse_args()
    if args.from_float and not args.tensor_core_error:
        record_from_float(args.from_float)
        return
    source = os.path.join(args.fixtures, args.source)
    with open(os.path.join(source, "reference.json")) as f:
        reference = json.load(f)
    if args.tensor_core_error:
        for name, spec in FORMATS.items():
            model = make_checkpoint(source, os.path.join(args.fixtures, name), name, spec, reference["records"],
                                    reference, write=False)
            record_tensor_core_error(model, os.path.join(args.fixtures, name))
        float_dir = args.from_float or os.path.join(args.fixtures, "llama3-gqa-bf16")
        record_tensor_core_error(quantized_from_float(float_dir), float_dir)
        return
    for name, spec in FORMATS.items():
        make_checkpoint(source, os.path.join(args.fixtures, name), name, spec, reference["records"], reference)


if __name__ == "__main__":
    main()
