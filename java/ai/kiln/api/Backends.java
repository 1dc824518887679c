package ai.kiln.api;

import ai.kiln.backend.Backend;
import ai.kiln.backend.cpu.CpuBackend;
import ai.kiln.backend.cuda.CudaBackend;
import ai.kiln.model.ModelConfig;
import ai.kiln.tensor.DType;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.stream.Stream;

/** The one place that turns {@link EngineOptions#device()} into a backend. */
final class Backends {

    private Backends() {
    }

    /**
     * Options with "auto" replaced by the device it picks: CUDA device 0 where a GPU and the CUDA
     * libraries load, else the CPU. The choice, and why the GPU was passed over, goes to stderr.
     */
    static EngineOptions resolveDevice(EngineOptions options) {
        if (!options.device().equals("auto")) {
            return options;
        }
        String reason = CudaBackend.unavailableReason();
        if (reason == null) {
            System.err.println("kiln: a GPU was found: using the CUDA backend (--device cpu forces the CPU)");
            return options.toBuilder().device("cuda").build();
        }
        System.err.println("kiln: using the CPU backend (" + reason + ")");
        return options.toBuilder().device("cpu").build();
    }

    static boolean isCpu(EngineOptions options) {
        return options.device().equals("cpu");
    }

    /**
     * Opens the backend the options name. The CPU backend's memory budget covers the weights (kept
     * in their stored type), the step workspace and the configured KV cache, with headroom.
     */
    static Backend open(EngineOptions options, Path modelDir, long workspaceBytes) {
        if (isCpu(options)) {
            long budget = 2 * weightFileBytes(modelDir) + options.kvCacheBytes() + 2 * workspaceBytes + (256L << 20);
            return new CpuBackend(options.threads(), budget);
        }
        String device = options.device();
        int ordinal = device.equals("cuda") ? 0 : Integer.parseInt(device.substring("cuda:".length()));
        return new CudaBackend(ordinal, DType.BF16);
    }

    /** A bound on the step memory {@link ai.kiln.model.LlamaModel} allocates for these limits. */
    static long workspaceBytes(ModelConfig c, int maxTokens, int maxSeqs, int maxBlocksPerSeq, int maxPositions) {
        long h = c.hiddenSize();
        long perToken = 3 * h + c.qSize() + 2L * c.kvSize() + c.qSize() + 3L * c.intermediateSize() + 3;
        long perSeq = h + c.vocabSize() + maxBlocksPerSeq + 4;
        return 4 * (maxTokens * perToken + maxSeqs * perSeq + (long) maxPositions * c.headDim());
    }

    private static long weightFileBytes(Path modelDir) {
        try (Stream<Path> files = Files.list(modelDir)) {
            return files.filter(f -> f.getFileName().toString().endsWith(".safetensors")).mapToLong(f -> {
                try {
                    return Files.size(f);
                } catch (IOException e) {
                    return 0;
                }
            }).sum();
        } catch (IOException e) {
            return 0;
        }
    }
}
