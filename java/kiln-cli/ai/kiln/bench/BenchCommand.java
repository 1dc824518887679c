package ai.kiln.bench;

import ai.kiln.api.Engine;
import ai.kiln.api.EngineMetrics;
import ai.kiln.api.EngineOptions;
import ai.kiln.api.GenerateRequest;
import ai.kiln.api.GenerateResult;
import ai.kiln.api.RequestHandle;
import ai.kiln.api.SamplingParams;
import ai.kiln.cli.Terminals;
import ai.kiln.hub.LocatedModel;
import ai.kiln.server.EngineFlags;
import ai.kiln.server.ModelOption;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.PrintWriter;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.SplittableRandom;
import java.util.concurrent.Callable;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.function.BooleanSupplier;
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
 * Java's own work and the model's (forward and sampling, device waits included): a table on stdout
 * once every batch size is measured, or with {@code --json} a JSON line per batch size, which also
 * records the sampling parameters. Progress goes to stderr ({@link BenchProgress}).
 */
@Command(name = "bench", mixinStandardHelpOptions = true, subcommands = ServeBenchCommand.class,
        description = {"Measure generation throughput and latency on random prompts.",
            "'kiln bench serve' measures a running OpenAI-compatible server instead."})
public final class BenchCommand implements Callable<Integer> {

    // NOTE: not required = true, which picocli would also demand of 'kiln bench serve'.
    @Option(names = "--model", paramLabel = "DIR|ORG/NAME|URL", description = ModelOption.DESCRIPTION + " (Required.)")
    String model;

    @Option(names = "--revision", paramLabel = "REV", defaultValue = "main", description = ModelOption.REVISION_DESCRIPTION)
    String revision;

    @Option(names = "--batch", paramLabel = "N", split = ",", defaultValue = "1",
            description = "Batch sizes, each measured in turn, e.g. 1,64 (default: ${DEFAULT-VALUE}).")
    int[] batchSizes;

    @Option(names = "--prompt-len", paramLabel = "TOKENS", defaultValue = "128",
            description = "Random prompt tokens per request (default: ${DEFAULT-VALUE}).")
    int promptLen;

    @Option(names = "--output-len", paramLabel = "TOKENS", defaultValue = "256",
            description = "New tokens per request, end-of-sequence ignored (default: ${DEFAULT-VALUE}).")
    int outputLen;

    @Option(names = "--repeat", paramLabel = "RUNS", defaultValue = "2",
            description = "Timed runs per batch size; the best is kept (default: ${DEFAULT-VALUE}).")
    int repeat;

    // NOTE: not among the EngineFlags: this seeds the random prompts, serve's --seed the engine.
    @Option(names = "--seed", paramLabel = "SEED", defaultValue = "0",
            description = "Seeds the random prompts (default: ${DEFAULT-VALUE}).")
    long seed;

    @Option(names = "--json", description = "Print a JSON line per batch size (the figures and the settings,"
            + " for scripts) instead of the table.")
    boolean json;

    @Mixin
    EngineFlags engineFlags;

    @Mixin
    SamplingOptions sampling = SamplingOptions.greedy();

    @Spec
    CommandSpec spec;

    /** The model's name in the results: its directory's, or the Hub id. */
    private String modelName;

    /** Whether progress is rewritten in place: where stderr is a terminal (tests set it). */
    BooleanSupplier stderrIsTerminal = () -> Terminals.isTerminal(Terminals.STDERR);

    @Override
    public Integer call() {
        if (model == null) {
            throw new ParameterException(spec.commandLine(), "Missing required option: '--model'");
        }
        sampling.validate();
        int maxBatch = Arrays.stream(batchSizes).max().orElse(1);
        EngineOptions options = engineOptions(maxBatch);
        PrintWriter out = spec.commandLine().getOut();
        BenchProgress progress = new BenchProgress(spec.commandLine().getErr(), stderrIsTerminal.getAsBoolean());
        // NOTE: a download is no part of the load time.
        LocatedModel located = ModelOption.locate(spec, model, revision);
        modelName = located.name();
        long loadStart = System.nanoTime();
        try (Engine engine = Engine.create(located.directory(), options)) {
            double loadSeconds = (System.nanoTime() - loadStart) / 1e9;
            spec.commandLine().getErr().printf("loaded %s on %s in %.1f s%n", model, engine.deviceDescription(), loadSeconds);
            // Said in the bench's own flags: the engine would name its request fields (max_tokens).
            if ((long) promptLen + outputLen > engine.maxModelLen()) {
                throw new ParameterException(spec.commandLine(), "--prompt-len " + promptLen + " + --output-len "
                        + outputLen + " = " + ((long) promptLen + outputLen) + " tokens exceeds the longest sequence, "
                        + engine.maxModelLen() + " tokens (--max-model-len, by default the model's context)");
            }
            try {
                measure(engine, loadSeconds, maxBatch, out, progress);
            } finally {
                // An error message after a half-drawn progress line would share its line.
                progress.clear();
            }
        }
        return 0;
    }

    /** The warm-up, then every batch size's runs: a JSON line as each is done, or the table at the end. */
    private void measure(Engine engine, double loadSeconds, int maxBatch, PrintWriter out, BenchProgress progress) {
        SplittableRandom random = new SplittableRandom(seed);
        int vocab = engine.vocabSize();
        // Warm-up: one request at the largest batch shape, so one-time costs stay out of the figures.
        run(engine, random, vocab, maxBatch, Math.min(outputLen, 16), "warm-up at batch " + maxBatch, progress);
        progress.update("warm-up at batch " + maxBatch + ": done");
        ObjectMapper mapper = new ObjectMapper();
        List<ObjectNode> lines = new ArrayList<>();
        for (int batch : batchSizes) {
            Result best = null;
            for (int r = 0; r < repeat; r++) {
                String label = "batch " + batch + ": run " + (r + 1) + "/" + repeat;
                Result result = run(engine, random, vocab, batch, outputLen, label, progress);
                progress.step(String.format(Locale.ROOT, "%s: %.1f tok/s in %.2f s", label,
                        result.outputTokensPerSecond, result.totalSeconds));
                if (best == null || result.outputTokensPerSecond > best.outputTokensPerSecond) {
                    best = result;
                }
            }
            ObjectNode line = mapper.createObjectNode();
            line.put("model", modelName);
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
            lines.add(line);
            if (json) {
                // NOTE: a line as each batch size is done, the format scripts/gpu-bench.sh and
                // the figures in docs/performance.md were recorded in.
                progress.clear();
                out.println(line);
                out.flush();
            }
        }
        progress.clear();
        if (!json) {
            out.print(BenchTable.render(modelName, engine.deviceDescription(),
                    sampling.describe(), repeat, lines));
            out.flush();
        }
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

    private Result run(Engine engine, SplittableRandom random, int vocab, int batch, int newTokens, String label,
            BenchProgress progress) {
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
        progress.step(label + " ...");
        if (progress.inPlace()) {
            showProgress(engine, handles, before, (long) batch * newTokens, label, progress);
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

    /**
     * Until every request of the run is done, the tokens generated so far, five times a second.
     * NOTE: on a terminal only, where someone watches; reading the engine's metrics costs the run
     * nothing measurable (a snapshot the loop publishes after every step).
     */
    private static void showProgress(Engine engine, List<RequestHandle> handles, EngineMetrics before, long total,
            String label, BenchProgress progress) {
        CompletableFuture<?> all = CompletableFuture.allOf(handles.stream().map(RequestHandle::result)
                .toArray(CompletableFuture[]::new));
        long start = System.nanoTime();
        while (!all.isDone()) {
            try {
                all.get(200, TimeUnit.MILLISECONDS);
            } catch (TimeoutException e) {
                long generated = engine.metrics().generationTokens() - before.generationTokens();
                double seconds = (System.nanoTime() - start) / 1e9;
                progress.update(String.format(Locale.ROOT, "%s: %d/%d tokens, %.1f tok/s", label, generated, total,
                        generated / seconds));
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return;
            } catch (ExecutionException e) {
                return; // the request's own join below reports it
            }
        }
    }

    private static double round(double value) {
        return Math.round(value * 100) / 100.0;
    }
}
