#!/usr/bin/env python3
"""Peer timings for kiln_kernel_bench: torch SDPA (flash and cuDNN backends) on the shapes Kiln's
CUDA kernels are measured on, plus a device-to-device copy, all in one process on the GPU
machine. torch is only a yardstick here; Kiln never uses it.

    python3 scripts/bench_kernel_peers.py

Timing: CUDA events around each call, 5 warm-up calls, median of 50; decode inputs are
contiguous K/V [B, kv_heads, L, D] (SDPA has no paged form), bytes = K + V read once.
"""
import statistics
import sys

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

REPS = 50


def median_ms(fn, sets=1):
    for i in range(5):
        fn(i % sets)
    torch.cuda.synchronize()
    events = [(torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)) for _ in range(REPS)]
    for i, (start, stop) in enumerate(events):
        start.record()
        fn(i % sets)
        stop.record()
    torch.cuda.synchronize()
    return statistics.median(start.elapsed_time(stop) for start, stop in events)


def copy_tbps():
    a = torch.empty(1 << 30, dtype=torch.uint8, device="cuda")
    b = torch.empty_like(a)
    ms = median_ms(lambda _: b.copy_(a))
    tbps = 2 * a.numel() / (ms * 1e-3) / 1e12
    print(f"{'copy (torch copy_) 1 GiB':58s} {ms:9.3f} ms {tbps:8.3f} TB/s")
    return tbps


def prefill(seq_len, heads, head_dim, backend, name):
    q, k, v = (torch.randn(1, heads, seq_len, head_dim, device="cuda", dtype=torch.bfloat16) for _ in range(3))
    try:
        with sdpa_kernel(backend):
            ms = median_ms(lambda _: F.scaled_dot_product_attention(q, k, v, is_causal=True))
    except RuntimeError as e:  # backend refused the shape
        print(f"prefill S={seq_len} D={head_dim} {name}: unavailable ({str(e).splitlines()[0]})")
        return
    flops = 4.0 * seq_len * seq_len * head_dim * heads / 2
    label = f"prefill causal B=1 H={heads} S={seq_len} D={head_dim} bf16 [{name}]"
    print(f"{label:58s} {ms:9.3f} ms {flops / (ms * 1e-3) / 1e12:8.1f} TFLOP/s")


def decode(batch, seq_len, q_heads, kv_heads, head_dim, backend, name, copy):
    q = torch.randn(batch, q_heads, 1, head_dim, device="cuda", dtype=torch.bfloat16)
    kv_bytes = 2 * batch * kv_heads * seq_len * head_dim * 2
    sets = max(1, min(8, -(-2 * 50 * 2**20 // kv_bytes)))
    ks = [torch.randn(batch, kv_heads, seq_len, head_dim, device="cuda", dtype=torch.bfloat16) for _ in range(sets)]
    vs = [torch.randn_like(ks[0]) for _ in range(sets)]
    try:
        with sdpa_kernel(backend):
            ms = median_ms(lambda i: F.scaled_dot_product_attention(q, ks[i], vs[i], enable_gqa=True), sets)
    except RuntimeError as e:
        print(f"decode B={batch} L={seq_len} {name}: unavailable ({str(e).splitlines()[0]})")
        return
    tbps = kv_bytes / (ms * 1e-3) / 1e12
    label = f"decode B={batch} L={seq_len} h{q_heads}/{kv_heads} D={head_dim} bf16 contiguous [{name}]"
    print(f"{label:58s} {ms:9.3f} ms {tbps:8.3f} TB/s  ({100 * tbps / copy:.0f}% of copy)")


def main():
    print(f"bench_kernel_peers: torch {torch.__version__}, {torch.cuda.get_device_name()}, median of {REPS}")
    copy = copy_tbps()
    backends = [(SDPBackend.FLASH_ATTENTION, "sdpa flash"), (SDPBackend.CUDNN_ATTENTION, "sdpa cudnn")]
    for b, n in backends:
        decode(64, 2048, 32, 8, 128, b, n, copy)
        decode(1, 32768, 32, 8, 128, b, n, copy)
        decode(256, 512, 32, 8, 128, b, n, copy)
    for b, n in backends:
        for s, d in [(4096, 128), (1024, 128), (16384, 128), (4096, 64)]:
            prefill(s, 32, d, b, n)
    return 0


if __name__ == "__main__":
    sys.exit(main())
