package ai.kiln.bench;

import ai.kiln.api.Engine;
import ai.kiln.api.EngineMetrics;
import ai.kiln.api.EngineOptions;
import ai.kiln.api.GenerateRequest;
import ai.kiln.api.GenerateResult;
import ai.kiln.api.RequestHandle;
import ai.kiln.api.SamplingParams;
import ai.kiln.server.EngineFlags;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Spec;

/**
 * {@code kiln bench}: end-to-end generation throughput and latency, the way the peers report it
 * (gpt-fast, vLLM's offline benchmark): a batch of requests with random prompt tokens of one length,
 * greedy unless told otherwise ({@link SamplingOptions}), a fixed number of new tokens each
 * (end-of-sequence ignored), submitted at once.
 *
 * <p>Reports output tokens per second over the whole batch (from submission to the last token),
 * the decode rate alone (output tokens after each request's first, over the time from the last
 * first token to the end), the time to first token, and the engine loop's time per step split into
 * Java's own work and the model's (forward and sampling, device waits included). One JSON line per
 * batch size, which also records the sampling parameters.
 */
@Command(name = "bench", mixinStandardHelpOptions = true, subcommands = ServeBenchCommand.class,
        description = {"Measure generation throughput and latency on random prompts.",
            "'kiln bench serve' measures a running OpenAI-compatible server instead."})
public final class BenchCommand implements Callable<Integer> {

    // NOTE: not required = true, which picocli would also demand of 'kiln bench serve'.
    @Option(names = "--model", description = "Hugging Face model directory (required)")
    Path model;

    @Option(names = "--batch", split = ",", defaultValue = "1", description = "batch sizes, e.g. 1,64")
    int[] batchSizes;

    @Option(names = "--prompt-len", defaultValue = "128", description = "prompt tokens per request")
    int promptLen;

    @Option(names = "--output-len", defaultValue = "256", description = "new tokens per request")
    int outputLen;

    @Option(names = "--repeat", defaultValue = "2", description = "timed runs per batch size (the best is kept)")
    int repeat;

    // NOTE: not among the EngineFlags: this seeds the random prompts, serve's --seed the engine.
    @Option(names = "--seed", defaultValue = "0", description = "seeds the random prompts")
    long seed;

    @Mixin
    EngineFlags engineFlags;

    @Mixin
    SamplingOptions sampling = SamplingOptions.greedy();

    @Spec
    CommandSpec spec;

    @Override
    public Integer call() {
        if (model == null) {
            throw new ParameterException(spec.commandLine(), "Missing required option: '--model'");
        }
        sampling.validate();
        int maxBatch = Arrays.stream(batchSizes).max().orElse(1);
        EngineOptions options = engineOptions(maxBatch);
        long loadStart = System.nanoTime();
        try (Engine engine = Engine.create(model, options)) {
            double loadSeconds = (System.nanoTime() - loadStart) / 1e9;
            spec.commandLine().getErr().printf("loaded %s on %s in %.1f s%n", model, engine.deviceDescription(), loadSeconds);
            SplittableRandom random = new SplittableRandom(seed);
            int vocab = engine.vocabSize();
            // Warm-up: one request at the largest batch shape, so one-time costs stay out of the figures.
            run(engine, random, vocab, maxBatch, Math.min(outputLen, 16));
            ObjectMapper json = new ObjectMapper();
            for (int batch : batchSizes) {
                Result best = null;
                for (int r = 0; r < repeat; r++) {
                    Result result = run(engine, random, vocab, batch, outputLen);
                    if (best == null || result.outputTokensPerSecond > best.outputTokensPerSecond) {
                        best = result;
                    }
                }
                ObjectNode line = json.createObjectNode();
                line.put("model", model.getFileName().toString());
                line.put("device", engine.deviceDescription());
                line.put("batch", batch);
                line.put("prompt_len", promptLen);
                line.put("output_len", outputLen);
                sampling.recordEffective(line);
                line.put("output_tokens_per_s", round(best.outputTokensPerSecond));
                line.put("decode_tokens_per_s", round(best.decodeTokensPerSecond));
                line.put("ttft_ms_median", round(best.ttftMedianMs));
                line.put("ttft_ms_max", round(best.ttftMaxMs));
                line.put("total_s", round(best.totalSeconds));
                line.put("java_us_per_step", round(best.hostUsPerStep));
                line.put("model_us_per_step", round(best.modelUsPerStep));
                line.put("load_s", round(loadSeconds));
                spec.commandLine().getOut().println(line);
            }
        }
        return 0;
    }

    /** The engine's flags; unless --max-num-seqs says otherwise, the largest batch runs at once, as measured. */
    EngineOptions engineOptions(int maxBatch) {
        return engineFlags.engineOptions(settings -> {
            if (!engineFlags.maxNumSeqsGiven()) {
                settings.maxRunningSeqs(Math.max(maxBatch, 1));
            }
        });
    }

    private record Result(double outputTokensPerSecond, double decodeTokensPerSecond, double ttftMedianMs,
            double ttftMaxMs, double totalSeconds, double hostUsPerStep, double modelUsPerStep) {
    }

    private Result run(Engine engine, SplittableRandom random, int vocab, int batch, int newTokens) {
        SamplingParams.Builder common = SamplingParams.builder().maxTokens(newTokens).ignoreEos(true);
        List<SamplingParams> params = new ArrayList<>();
        for (int i = 0; i < batch; i++) {
            params.add(sampling.applyTo(common, i).build());
        }
        EngineMetrics before = engine.metrics();
        List<RequestHandle> handles = new ArrayList<>();
        long start = System.nanoTime();
        for (int i = 0; i < batch; i++) {
            int[] prompt = random.ints(promptLen, 0, vocab).toArray();
            handles.add(engine.submit(GenerateRequest.ofTokens(prompt, params.get(i))));
        }
        double[] ttft = new double[batch];
        double lastFirstToken = 0;
        long generated = 0;
        for (int i = 0; i < batch; i++) {
            GenerateResult result = handles.get(i).result().join();
            generated += result.numGeneratedTokens();
            ttft[i] = result.timing().timeToFirstToken().toNanos() / 1e6;
            lastFirstToken = Math.max(lastFirstToken, ttft[i]);
        }
        double totalMs = (System.nanoTime() - start) / 1e6;
        Arrays.sort(ttft);
        double decodeMs = totalMs - lastFirstToken;
        EngineMetrics after = engine.metrics();
        long steps = Math.max(1, after.steps() - before.steps());
        return new Result(generated / (totalMs / 1e3), (generated - batch) / (decodeMs / 1e3), ttft[batch / 2],
                ttft[batch - 1], totalMs / 1e3, (after.hostNanos() - before.hostNanos()) / 1e3 / steps,
                (after.modelNanos() - before.modelNanos()) / 1e3 / steps);
    }

    private static double round(double value) {
        return Math.round(value * 100) / 100.0;
    }
}
