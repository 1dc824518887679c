package ai.kiln.engine;

import ai.kiln.api.EngineException;
import ai.kiln.api.EngineOptions;
import ai.kiln.backend.Backend;
import ai.kiln.backend.cpu.CpuBackend;
import ai.kiln.backend.DeviceBackendProvider;
import ai.kiln.model.ModelConfig;
import ai.kiln.tensor.DType;
import java.io.IOException;
import java.lang.System.Logger.Level;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.stream.Stream;

/** The one place that turns {@link EngineOptions#device()} into a backend. */
final class Backends {

    /**
     * The device choice of "auto" is logged, not printed: the short line at INFO, why the GPU was
     * passed over at DEBUG (a JNI error hundreds of characters long where no GPU is). What is shown,
     * and how, is the application's: System.Logger goes to java.util.logging unless the application
     * routes it elsewhere (kiln-cli hands it to SLF4J, and shows DEBUG under --verbose).
     */
    private static final System.Logger LOG = System.getLogger(Backends.class.getName());

    private static final String CUDA_MISSING = "the CUDA backend is not on the class path (add ai.kiln:kiln-cuda)";

    private Backends() {
    }

    /**
     * Options with "auto" replaced by the device it picks: CUDA device 0 where a GPU and the CUDA
     * libraries load, else the CPU. The choice is logged, and why the GPU was passed over.
     */
    static EngineOptions resolveDevice(EngineOptions options) {
        if (!options.device().equals("auto")) {
            return options;
        }
        DeviceBackendProvider cuda = DeviceBackendProvider.find("cuda");
        if (cuda == null) {
            LOG.log(Level.INFO, CUDA_MISSING + ": using the CPU backend");
            return options.toBuilder().device("cpu").build();
        }
        String reason = cuda.unavailableReason();
        if (reason == null) {
            LOG.log(Level.INFO, "a GPU was found: using the CUDA backend (--device cpu forces the CPU)");
            return options.toBuilder().device("cuda").build();
        }
        LOG.log(Level.INFO, "no GPU found: using the CPU backend");
        LOG.log(Level.DEBUG, () -> "the CUDA backend cannot run here: " + reason);
        return options.toBuilder().device("cpu").build();
    }

    /**
     * Why the CUDA backend cannot run here, or null when it can: its module (kiln-cuda) may be
     * missing from the class path, or the GPU, the driver or the CUDA libraries.
     */
    static String cudaUnavailableReason() {
        DeviceBackendProvider cuda = DeviceBackendProvider.find("cuda");
        return cuda == null ? CUDA_MISSING : cuda.unavailableReason();
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
            return new CpuBackend(options.threads(),
                    cpuBudget(weightFileBytes(modelDir), options.kvCacheBytes(), workspaceBytes));
        }
        String device = options.device();
        int ordinal = device.equals("cuda") ? 0 : Integer.parseInt(device.substring("cuda:".length()));
        DeviceBackendProvider cuda = DeviceBackendProvider.find("cuda");
        if (cuda == null) {
            throw new EngineException("device " + device + ": the CUDA backend is not on the class path"
                    + " (add the dependency ai.kiln:kiln-cuda)");
        }
        return cuda.open(ordinal, DType.BF16);
    }

    /**
     * A bound on the step memory {@link ai.kiln.model.LlamaModel} allocates for these limits,
     * computed without wrapping: a model and limits whose sum does not fit in a long are refused,
     * naming the sizes.
     */
    static long workspaceBytes(ModelConfig c, int maxTokens, int maxSeqs, int maxBlocksPerSeq, int maxPositions) {
        try {
            long h = c.hiddenSize();
            long perToken = Math.addExact(Math.addExact(3 * h + c.qSize(), 2L * c.kvSize()),
                    Math.addExact(c.qSize(), 3L * c.intermediateSize() + 3));
            long perSeq = Math.addExact(Math.addExact(h, c.vocabSize()), (long) maxBlocksPerSeq + 4);
            long elements = Math.addExact(Math.addExact(Math.multiplyExact(maxTokens, perToken),
                    Math.multiplyExact(maxSeqs, perSeq)), Math.multiplyExact(maxPositions, (long) c.headDim()));
            return Math.multiplyExact(4, elements);
        } catch (ArithmeticException e) {
            throw new EngineException(String.format("the step workspace overflows 64 bits: %d batched tokens x"
                    + " (hidden_size %d, q %d, kv %d, intermediate_size %d), %d sequences x (vocab_size %d,"
                    + " %d blocks), %d positions x head_dim %d", maxTokens, c.hiddenSize(), c.qSize(), c.kvSize(),
                    c.intermediateSize(), maxSeqs, c.vocabSize(), maxBlocksPerSeq, maxPositions, c.headDim()), e);
        }
    }

    /** The CPU backend's budget; sizes whose sum does not fit in a long are refused. */
    private static long cpuBudget(long weightFileBytes, long kvCacheBytes, long workspaceBytes) {
        try {
            return Math.addExact(Math.addExact(Math.multiplyExact(2, weightFileBytes), kvCacheBytes),
                    Math.addExact(Math.multiplyExact(2, workspaceBytes), 256L << 20));
        } catch (ArithmeticException e) {
            throw new EngineException(String.format("the CPU memory budget overflows 64 bits: weight files %d bytes,"
                    + " KV cache %d bytes, step workspace %d bytes", weightFileBytes, kvCacheBytes, workspaceBytes), e);
        }
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
