"""The peer of GemmBenchmark: torch's bf16 matmul and FP8 _scaled_mm (cuBLASLt, rowwise scales,
bf16 out) on the Llama-3-8B projections, the per-token quantisation of the inputs included as
torch does it eagerly (amax, divide, cast). A JSON line per product, microseconds from CUDA
graphs of 20 calls (median of 7 replays), as GemmBenchmark measures."""
import json
import statistics

import torch

SHAPES = [("qkv", 6144, 4096), ("o", 4096, 4096), ("gate_up", 28672, 4096), ("down", 4096, 14336)]
ROWS = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 4096]


def timed(fn, calls=20):
    for _ in range(3):
        fn()
    torch.cuda.synchronize()
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        for _ in range(calls):
            fn()
    graph.replay()
    torch.cuda.synchronize()
    runs = []
    for _ in range(7):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        graph.replay()
        end.record()
        torch.cuda.synchronize()
        runs.append(start.elapsed_time(end) * 1e3 / calls)
    return statistics.median(runs)


def main():
    torch.manual_seed(0)
    for name, n, k in SHAPES:
        w = torch.randn(n, k, device="cuda", dtype=torch.bfloat16) * 0.02
        w_scale = (w.abs().amax(dim=1, keepdim=True).float() / 448.0)
        w8 = (w.float() / w_scale).to(torch.float8_e4m3fn)
        for m in ROWS:
            x = torch.randn(m, k, device="cuda", dtype=torch.bfloat16)

            def fp8():
                x_scale = x.abs().amax(dim=1, keepdim=True).float() / 448.0
                xq = (x.float() / x_scale).to(torch.float8_e4m3fn)
                return torch._scaled_mm(xq, w8.t(), scale_a=x_scale, scale_b=w_scale.t(), out_dtype=torch.bfloat16)

            try:
                fp8_us = timed(fp8)
            except RuntimeError as e:  # a shape _scaled_mm refuses
                fp8_us = float("nan")
                print(json.dumps({"product": name, "m": m, "error": str(e)[:200]}))
            bf16_us = timed(lambda: x @ w.t())
            flop = 2.0 * m * n * k
            print(json.dumps({"product": name, "m": m, "n": n, "k": k, "torch_bf16_us": round(bf16_us, 2),
                              "torch_fp8_us": round(fp8_us, 2), "torch_bf16_tflops": round(flop / bf16_us / 1e6, 1),
                              "torch_fp8_tflops": round(flop / fp8_us / 1e6, 1)}), flush=True)


if __name__ == "__main__":
    main()
