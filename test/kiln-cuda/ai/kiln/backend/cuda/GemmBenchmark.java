package ai.kiln.backend.cuda;

import ai.kiln.backend.HostTensors;
import ai.kiln.backend.InputQuantization;
import ai.kiln.tensor.DType;
import ai.kiln.tensor.Tensor;
import java.util.Random;

/**
 * The CUDA backend's matrix products, bf16 against FP8 (e4m3 weights, inputs quantised per token,
 * the quantisation included), on the Llama-3-8B projections at decode and prompt row counts: a
 * JSON line per product with microseconds per call, TFLOP/s and the weights' GB/s (gate/up also in
 * its gated form, with SiLU-and-mul). A benchmark,
 * not a test (scripts/gpu-fp8-bench.sh runs it):
 *
 * <pre>java -cp ... ai.kiln.backend.cuda.GemmBenchmark [ROWS,...]</pre>
 */
public final class GemmBenchmark {

    /** name, N, K of the 8B's projections (gate/up fused). */
    private static final Object[][] SHAPES = {{"qkv", 6144, 4096}, {"o", 4096, 4096}, {"gate_up", 28672, 4096},
        {"down", 4096, 14336}};

    private GemmBenchmark() {
    }

    public static void main(String[] args) {
        String rows = args.length > 0 ? args[0] : "1,2,4,8,16,32,64,128,256,512,4096";
        Random random = new Random(1);
        try (CudaBackend gpu = new CudaBackend(0, DType.BF16)) {
            for (Object[] shape : SHAPES) {
                String name = (String) shape[0];
                int n = (Integer) shape[1];
                int k = (Integer) shape[2];
                float[] values = new float[n * k];
                for (int i = 0; i < values.length; i++) {
                    values[i] = (float) (random.nextGaussian() * 0.02);
                }
                Tensor host = HostTensors.floats(values, n, k);
                Tensor bf16 = gpu.allocate(DType.BF16, n, k);
                Tensor fp8 = gpu.allocate(DType.F8_E4M3, n, k);
                Tensor scales = gpu.allocate(DType.F32, n);
                gpu.upload(bf16, host);
                gpu.quantizeRows(fp8, scales, host);
                HostTensors.release(host);
                for (String m : rows.split(",")) {
                    int tokens = Integer.parseInt(m.trim());
                    Tensor x = gpu.allocate(DType.BF16, tokens, k);
                    Tensor out = gpu.allocate(DType.BF16, tokens, n);
                    Tensor hostX = HostTensors.floats(java.util.Arrays.copyOf(values, tokens * k), tokens, k);
                    gpu.upload(x, hostX);
                    HostTensors.release(hostX);
                    double bf16Us = time(gpu, () -> gpu.gemm(out, x, bf16, null));
                    double fp8Us = time(gpu, () -> gpu.gemm(out, x, fp8, scales, InputQuantization.DYNAMIC, null));
                    double flop = 2.0 * tokens * n * k;
                    System.out.printf("{\"product\": \"%s\", \"m\": %d, \"n\": %d, \"k\": %d, \"bf16_us\": %.2f, "
                            + "\"fp8_us\": %.2f, \"bf16_tflops\": %.1f, \"fp8_tflops\": %.1f, \"bf16_weight_gbs\": %.0f, "
                            + "\"fp8_weight_gbs\": %.0f, \"speedup\": %.2f}%n", name, tokens, n, k, bf16Us, fp8Us,
                            flop / bf16Us / 1e6, flop / fp8Us / 1e6, 2.0 * n * k / bf16Us / 1e3, 1.0 * n * k / fp8Us / 1e3,
                            bf16Us / fp8Us);
                    if (name.equals("gate_up")) {
                        // The MLP's gated form: the product and SiLU-and-mul (one pass where a kernel
                        // fuses them, else the product then the SiLU-and-mul kernel).
                        Tensor half = gpu.allocate(DType.BF16, tokens, n / 2);
                        double bf16Gated = time(gpu, () -> gpu.gemmSiluAndMul(half, x, bf16, out));
                        double fp8Gated = time(gpu,
                                () -> gpu.gemmSiluAndMul(half, x, fp8, scales, InputQuantization.DYNAMIC, out));
                        System.out.printf("{\"product\": \"gate_up+silu\", \"m\": %d, \"n\": %d, \"k\": %d, "
                                + "\"bf16_us\": %.2f, \"fp8_us\": %.2f, \"speedup\": %.2f}%n", tokens, n, k, bf16Gated,
                                fp8Gated, bf16Gated / fp8Gated);
                        gpu.free(half);
                    }
                    gpu.free(x);
                    gpu.free(out);
                }
                gpu.free(bf16);
                gpu.free(fp8);
                gpu.free(scales);
            }
        }
    }

    /**
     * Microseconds per call on the device: 20 calls recorded in a graph (so the host's launch
     * overhead is out of it), the median of 7 replays, after eager warm-up calls.
     */
    private static double time(CudaBackend gpu, Runnable call) {
        for (int i = 0; i < 3; i++) {
            call.run();
        }
        gpu.synchronize();
        int calls = 20;
        gpu.beginCapture();
        for (int i = 0; i < calls; i++) {
            call.run();
        }
        long graph = gpu.endCapture();
        gpu.replay(graph);
        gpu.synchronize();
        double[] runs = new double[7];
        for (int r = 0; r < runs.length; r++) {
            long t0 = System.nanoTime();
            gpu.replay(graph);
            gpu.synchronize();
            runs[r] = (System.nanoTime() - t0) / 1e3 / calls;
        }
        gpu.releaseGraph(graph);
        java.util.Arrays.sort(runs);
        return runs[runs.length / 2];
    }
}
