package ai.kiln.server;

import ai.kiln.api.EngineOptions;
import ai.kiln.api.KvCacheDType;
import ai.kiln.api.Quantization;
import java.util.function.Consumer;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Spec;

/**
 * The engine's flags, declared once for every command that runs an engine ({@code kiln generate},
 * {@code kiln serve}, {@code kiln bench}) as a picocli mixin ({@code @Mixin EngineFlags engineFlags}),
 * and checked once, where they become {@link EngineOptions}: a bad value is a usage error (exit
 * code 2) with the engine's own message.
 *
 * <p>Here in kiln-server rather than kiln-cli because {@code kiln serve}'s command lives here and
 * kiln-cli depends on this module, not the other way round. {@code --model} and {@code --seed} stay
 * with each command: the model directory is no engine option (and {@code kiln bench} cannot require
 * it, for {@code kiln bench serve}'s sake), and {@code --seed} means something else to each command
 * (the engine's seed to {@code serve}, the request's to {@code generate}, the random prompts' to
 * {@code bench}).
 */
public final class EngineFlags {

    /** The largest {@code --kv-cache-mib} whose bytes a long holds. */
    static final long MAX_KV_CACHE_MIB = Long.MAX_VALUE >> 20;

    @Option(names = "--device", paramLabel = "DEVICE", defaultValue = "auto",
            description = "auto (CUDA where a GPU is usable, else CPU), cpu, cuda or cuda:N (default: ${DEFAULT-VALUE}).")
    String device;

    @Option(names = "--threads", paramLabel = "N", defaultValue = "0",
            description = "CPU backend threads (default: 0, one per core).")
    int threads;

    @Option(names = "--kv-cache-mib", paramLabel = "MIB", defaultValue = "512",
            description = "CPU backend: KV-cache size in MiB (default: ${DEFAULT-VALUE}).")
    long kvCacheMib;

    @Option(names = "--gpu-memory-utilization", paramLabel = "FRACTION", defaultValue = "0.9",
            description = "CUDA backend: fraction of free device memory to use (default: ${DEFAULT-VALUE}).")
    double gpuMemoryUtilization;

    @Option(names = "--max-model-len", paramLabel = "TOKENS",
            description = "Longest sequence, prompt plus output (default: the model's).")
    Integer maxModelLen;

    // NOTE: no defaultValue, so that a command can tell whether it was given (kiln bench runs its
    // largest batch at once unless told otherwise), and the engine chooses from the device.
    @Option(names = "--max-num-seqs", paramLabel = "N",
            description = "Most sequences running at once (default: chosen from the device, 1024 on a GPU of"
                    + " 70 GiB or more, else 256; kiln bench: its largest --batch).")
    Integer maxNumSeqs;

    @Option(names = "--max-batched-tokens", paramLabel = "TOKENS",
            description = "Token budget of one step (default: chosen from the device, 8192 on a GPU of 70 GiB or"
                    + " more, else 2048).")
    Integer maxBatchedTokens;

    @Option(names = "--block-size", paramLabel = "TOKENS", defaultValue = "16",
            description = "Tokens per KV-cache block (default: ${DEFAULT-VALUE}).")
    int blockSize;

    @Option(names = "--quantization", paramLabel = "KIND", defaultValue = "none",
            description = "Store the linear layers' weights as loaded (none), as int8 with a scale per row (int8:"
                    + " decode reads half the bytes of bf16), or as FP8 e4m3 with a scale per row and inputs"
                    + " quantised per token (fp8: the CPU backend, or a CUDA GPU of compute capability 9.0 or"
                    + " later; int8: the CPU backend only) (default: ${DEFAULT-VALUE}).")
    String quantization;

    @Option(names = "--kv-cache-dtype", paramLabel = "DTYPE", defaultValue = "auto",
            description = "What the KV cache stores: the activations' type (auto), or FP8 e4m3 with a scale per token"
                    + " and head (fp8, or fp8_e4m3: nearly four times the tokens of the CPU backend's fp32 cache in"
                    + " --kv-cache-mib, nearly twice those of a bf16 cache on CUDA, where head_dim must be 64, 128 or"
                    + " 256) (default: ${DEFAULT-VALUE}).")
    String kvCacheDtype;

    @Option(names = "--no-prefix-caching",
            description = "Do not share the KV-cache blocks of equal prompt prefixes between requests.")
    boolean noPrefixCaching;

    // NOTE: no engine option: the application reads it before the command runs to set its log
    // level (kiln-cli: Kiln's loggers at DEBUG), since the engine logs through System.Logger and
    // leaves what is shown to the application.
    @Option(names = "--verbose",
            description = "Say more on stderr: why the GPU was passed over, and Kiln's debug messages.")
    boolean verbose;

    /** The command this mixin is part of, whose usage errors these are. */
    @Spec(Spec.Target.MIXEE)
    CommandSpec command;

    /** Whether {@code --verbose} was given. */
    public boolean verbose() {
        return verbose;
    }

    /** Whether {@code --max-num-seqs} was given. */
    public boolean maxNumSeqsGiven() {
        return maxNumSeqs != null;
    }

    /** The engine's options from the flags; throws a usage error naming a bad value. */
    public EngineOptions engineOptions() {
        return engineOptions(settings -> { });
    }

    /**
     * The engine's options from the flags, then {@code commandSettings} (what the command decides
     * itself, such as serve's seed), checked together; throws a usage error naming a bad value.
     */
    public EngineOptions engineOptions(Consumer<EngineOptions.Builder> commandSettings) {
        if (kvCacheMib < 1 || kvCacheMib > MAX_KV_CACHE_MIB) {
            throw usage("--kv-cache-mib must be in [1, " + MAX_KV_CACHE_MIB + "], got " + kvCacheMib);
        }
        Quantization weights;
        try {
            weights = Quantization.fromFlag(quantization);
        } catch (IllegalArgumentException e) {
            throw usage("--" + e.getMessage());
        }
        KvCacheDType kvDType;
        try {
            kvDType = KvCacheDType.fromFlag(kvCacheDtype);
        } catch (IllegalArgumentException e) {
            throw usage("--kv-cache-dtype: " + e.getMessage());
        }
        EngineOptions.Builder builder = EngineOptions.builder().device(device).threads(threads).quantization(weights)
                .kvCacheDtype(kvDType)
                .kvCacheBytes(kvCacheMib << 20).gpuMemoryUtilization(gpuMemoryUtilization).maxModelLen(maxModelLen)
                .maxRunningSeqs(maxNumSeqs).maxBatchedTokens(maxBatchedTokens).blockSize(blockSize).prefixCaching(!noPrefixCaching);
        commandSettings.accept(builder);
        try {
            return builder.build();
        } catch (IllegalArgumentException e) {
            throw usage(e.getMessage());
        }
    }

    private ParameterException usage(String message) {
        return new ParameterException(command.commandLine(), message);
    }
}
