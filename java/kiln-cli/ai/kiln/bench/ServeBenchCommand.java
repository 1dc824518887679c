package ai.kiln.bench;

import ai.kiln.api.EngineOptions;
import ai.kiln.hub.LocatedModel;
import ai.kiln.server.EngineFlags;
import ai.kiln.server.ModelOption;
import ai.kiln.tokenizer.Tokenizer;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.io.PrintWriter;
import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Model.OptionSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.ParseResult;
import picocli.CommandLine.Spec;

/**
 * {@code kiln bench serve}: a serving load against an OpenAI-compatible server (Kiln's, vLLM's,
 * SGLang's) at {@code --base-url}, or against Kiln's own server started in this process over
 * {@code --model} ({@link InProcessServer}), in the manner of vLLM's benchmark_serving.py and with
 * its flag and result names: N streamed completions or chat completions with ShareGPT-like (or
 * ShareGPT's, or fixed random) lengths, sent all at once or as a seeded Poisson process, once or
 * at each rate of a sweep. Prints a JSON line (parameters and figures) per run on standard output
 * and a table on standard error, and with {@code --plot} draws the latencies against the
 * throughput ({@link ServingPlot}). See {@link ServingDatasets} for the prompts and
 * {@link ServingReport} for how each figure is computed.
 */
@Command(name = "serve", mixinStandardHelpOptions = true,
        description = {"Measure an OpenAI-compatible server under a serving load (streamed /v1/completions or"
                + " /v1/chat/completions).",
            "Without --base-url, --model (a directory or a Hub id) is served in this process (kiln serve's server, the engine flags apply)."})
public final class ServeBenchCommand implements Callable<Integer> {

    /** Where a server is looked for when neither --base-url nor --model says. */
    static final URI DEFAULT_BASE_URL = URI.create("http://127.0.0.1:8000");

    // NOTE: no defaultValue, so that its absence can start the in-process server.
    @Option(names = "--base-url", paramLabel = "URL",
            description = "the server's root URL (default: the in-process server with --model, else "
                    + "http://127.0.0.1:8000)")
    URI baseUrl;

    @Option(names = "--endpoint", paramLabel = "PATH", defaultValue = "/v1/completions",
            description = "/v1/completions or /v1/chat/completions (token-id prompts are decoded to text for chat,"
                    + " with --model's tokenizer) (default ${DEFAULT-VALUE})")
    String endpoint;

    @Option(names = "--served-model-name", paramLabel = "NAME",
            description = "model name sent in requests, and the in-process server's (default: the first of GET"
                    + " /v1/models; in-process, the model directory's name or the Hub id)")
    String servedModelName;

    @Option(names = "--api-key", paramLabel = "KEY", defaultValue = "${env:OPENAI_API_KEY}",
            description = "bearer token (default: $OPENAI_API_KEY, else none)")
    String apiKey;

    @Option(names = "--model", paramLabel = "DIR|ORG/NAME|URL",
            description = "model directory, Hugging Face Hub id or http(s):// URL (as kiln serve takes it): served"
                    + " in this process unless --base-url is given; its config.json gives the vocabulary of random prompts, its"
                    + " tokenizer counts ShareGPT's tokens and decodes chat prompts")
    String model;

    @Option(names = "--revision", paramLabel = "REV", defaultValue = "main", description = ModelOption.REVISION_DESCRIPTION)
    String revision;

    /** Where --model is on disk, once located (null without --model). */
    private LocatedModel located;

    @Option(names = "--vocab-size", paramLabel = "N",
            description = "token ids of random prompts are drawn from [0, N) (default: from --model)")
    Integer vocabSize;

    @Option(names = "--dataset-name", paramLabel = "NAME",
            description = "sharegpt-like, random, prefix_repetition or sharegpt (default: sharegpt with --dataset-path,"
                    + " else sharegpt-like)")
    String datasetName;

    @Option(names = {"--dataset-path", "--dataset"}, paramLabel = "FILE", description = "ShareGPT-format JSON file")
    Path datasetPath;

    @Option(names = "--num-prompts", paramLabel = "N", defaultValue = "1000",
            description = "requests to send (default ${DEFAULT-VALUE})")
    int numPrompts;

    @Option(names = "--sharegpt-like-input-median", paramLabel = "TOKENS", defaultValue = "170",
            description = "sharegpt-like: median prompt tokens (default ${DEFAULT-VALUE})")
    double shareGptLikeInputMedian;

    @Option(names = "--sharegpt-like-output-median", paramLabel = "TOKENS", defaultValue = "180",
            description = "sharegpt-like: median output tokens (default ${DEFAULT-VALUE})")
    double shareGptLikeOutputMedian;

    @Option(names = "--sharegpt-like-sigma", paramLabel = "SIGMA", defaultValue = "0.8",
            description = "sharegpt-like: sigma of ln(length), both lengths (default ${DEFAULT-VALUE})")
    double shareGptLikeSigma;

    @Option(names = "--sharegpt-like-max-input-len", paramLabel = "TOKENS", defaultValue = "2048",
            description = "sharegpt-like: prompt lengths are clamped to [4, N] (default ${DEFAULT-VALUE})")
    int shareGptLikeMaxInputLen;

    @Option(names = "--sharegpt-like-max-output-len", paramLabel = "TOKENS", defaultValue = "1024",
            description = "sharegpt-like: output lengths are clamped to [4, N] (default ${DEFAULT-VALUE})")
    int shareGptLikeMaxOutputLen;

    @Option(names = "--random-input-len", paramLabel = "TOKENS", defaultValue = "1024",
            description = "random: prompt tokens (default ${DEFAULT-VALUE})")
    int randomInputLen;

    @Option(names = "--random-output-len", paramLabel = "TOKENS", defaultValue = "128",
            description = "random: output tokens (default ${DEFAULT-VALUE})")
    int randomOutputLen;

    @Option(names = "--random-range-ratio", paramLabel = "R", defaultValue = "0",
            description = "random: lengths uniform in [len * (1 - r), len * (1 + r)] (default ${DEFAULT-VALUE})")
    double randomRangeRatio;

    @Option(names = "--prefix-repetition-prefix-len", paramLabel = "TOKENS", defaultValue = "256",
            description = "prefix_repetition: tokens of each shared prefix (default ${DEFAULT-VALUE})")
    int prefixRepetitionPrefixLen;

    @Option(names = "--prefix-repetition-suffix-len", paramLabel = "TOKENS", defaultValue = "256",
            description = "prefix_repetition: random tokens after the prefix (default ${DEFAULT-VALUE})")
    int prefixRepetitionSuffixLen;

    @Option(names = "--prefix-repetition-num-prefixes", paramLabel = "N", defaultValue = "10",
            description = "prefix_repetition: distinct prefixes the prompts share (default ${DEFAULT-VALUE})")
    int prefixRepetitionNumPrefixes;

    @Option(names = "--prefix-repetition-output-len", paramLabel = "TOKENS", defaultValue = "128",
            description = "prefix_repetition: output tokens (default ${DEFAULT-VALUE})")
    int prefixRepetitionOutputLen;

    // NOTE: no defaultValue, so that giving it with --sweep can be refused.
    @Option(names = "--request-rate", paramLabel = "RATE",
            description = "mean requests per second of the arrivals (Poisson, or see --burstiness); inf: all at once"
                    + " (default inf)")
    String requestRate;

    @Option(names = "--sweep", paramLabel = "RATE", split = ",",
            description = "run once per request rate, in order, over the same prompts, e.g. 2,4,8,inf; the result"
                    + " file holds an array of the runs' results (not with --request-rate)")
    List<String> sweep;

    @Option(names = "--burstiness", paramLabel = "B", defaultValue = "1.0",
            description = "shape of the gamma-distributed gaps between arrivals: 1 Poisson, below 1 burstier, above"
                    + " 1 more even (default ${DEFAULT-VALUE})")
    double burstiness;

    @Option(names = "--max-concurrency", paramLabel = "N", description = "most requests in flight (default: no limit)")
    Integer maxConcurrency;

    @Option(names = "--num-warmups", paramLabel = "N", defaultValue = "0",
            description = "uncounted requests sent first (default ${DEFAULT-VALUE})")
    int numWarmups;

    @Option(names = "--request-timeout-s", paramLabel = "SECONDS", defaultValue = "3600",
            description = "a request running longer fails (default ${DEFAULT-VALUE})")
    long requestTimeoutSeconds;

    @Option(names = "--seed", paramLabel = "SEED", defaultValue = "0",
            description = "seeds the prompts, their lengths and the arrivals (default ${DEFAULT-VALUE})")
    long seed;

    @Option(names = "--goodput", arity = "1..*", paramLabel = "METRIC:MS",
            description = "service-level objectives, e.g. ttft:500 tpot:50 (e2el too): request_goodput counts the"
                    + " requests per second that met them all")
    List<String> goodput;

    @Option(names = "--result-file", paramLabel = "FILE",
            description = "also write the JSON result here (with --sweep, an array of them)")
    Path resultFile;

    @Option(names = "--plot", paramLabel = "FILE.png",
            description = "also draw TTFT and TPOT (median, p90, p99) against output throughput, one point per run")
    Path plot;

    @Mixin
    SamplingOptions sampling = SamplingOptions.greedy();

    /** The in-process server's engine; refused with --base-url, where no engine is started. */
    @Mixin
    EngineFlags engineFlags;

    @Spec
    CommandSpec spec;

    @Override
    public Integer call() throws Exception {
        sampling.validate();
        List<Double> rates = rates();
        ServingEndpoint route;
        ServiceLevels levels;
        try {
            route = ServingEndpoint.fromFlag(endpoint);
            levels = goodput == null ? null : ServiceLevels.parse(goodput);
            ServingBenchmark.Config.checkLoad(burstiness, maxConcurrency, numWarmups);
            if (plot != null) {
                ServingPlot.checkFile(plot);
            }
        } catch (IllegalArgumentException e) {
            throw usage(e.getMessage());
        }
        if (numPrompts < 1) {
            throw usage("--num-prompts must be >= 1, got " + numPrompts);
        }
        if (plot != null) {
            // Before AWT is first touched: no display is looked for.
            System.setProperty("java.awt.headless", "true");
            ServingPlot.requireFonts();
        }
        located = model == null ? null : ModelOption.locate(spec, model, revision);
        boolean inProcess = baseUrl == null && model != null;
        EngineOptions engineOptions = null;
        if (inProcess) {
            // As kiln serve's: the server drains first; what is left when the engine closes is cancelled.
            engineOptions = engineFlags.engineOptions(settings -> settings.shutdownGrace(Duration.ofSeconds(1)));
        } else {
            refuseEngineFlags();
        }
        String dataset = datasetName != null ? datasetName.toLowerCase(Locale.ROOT)
                : datasetPath != null ? "sharegpt" : "sharegpt-like";
        List<BenchPrompt> prompts = prompts(dataset);
        if (route.needsText()) {
            prompts = asText(prompts, dataset, route);
        }
        PrintWriter out = spec.commandLine().getOut();
        PrintWriter err = spec.commandLine().getErr();
        List<ServingRun> runs = new ArrayList<>();
        List<ObjectNode> results = new ArrayList<>();
        String modelName;
        try (InProcessServer server = inProcess ? startServer(engineOptions, err) : null) {
            URI url = server != null ? server.baseUrl() : baseUrl != null ? baseUrl : DEFAULT_BASE_URL;
            modelName = server != null ? server.modelName()
                    : servedModelName != null ? servedModelName : ServingBenchmark.servedModel(url, apiKey);
            ServingBenchmark.Config config = new ServingBenchmark.Config(url, route, modelName, apiKey, rates.get(0),
                    burstiness, maxConcurrency, numWarmups, Duration.ofSeconds(requestTimeoutSeconds), seed, sampling,
                    levels);
            err.println(heading(config, dataset, prompts, rates));
            for (int i = 0; i < rates.size(); i++) {
                double rate = rates.get(i);
                if (rates.size() > 1) {
                    err.printf("bench serve: request rate %s (%d of %d)%n", ServingRun.rateLabel(rate), i + 1, rates.size());
                }
                ServingReport report = new ServingBenchmark(config.withRequestRate(rate)).run(prompts, err);
                ObjectNode line = report.toJson(parameters(config, dataset, rate, server));
                out.println(line);
                out.flush();
                runs.add(new ServingRun(rate, report));
                results.add(line);
            }
        }
        err.print(runs.size() == 1 ? runs.get(0).report().summary() : ServingSweepTable.render(runs));
        err.flush();
        if (resultFile != null) {
            JsonNode written = results.size() == 1 && sweep == null ? results.get(0)
                    : new ObjectMapper().createArrayNode().addAll(results);
            Files.writeString(resultFile, written.toPrettyString() + "\n");
        }
        if (plot != null) {
            ServingPlot.write(plot, runs, modelName + ", " + dataset + ", " + numPrompts + " prompts per run, "
                    + route.path());
            err.println("bench serve: plot written to " + plot);
        }
        return 0;
    }

    /** What is about to be sent where, in a line. */
    private String heading(ServingBenchmark.Config config, String dataset, List<BenchPrompt> prompts,
            List<Double> rates) {
        String load = rates.size() == 1 ? "rate " + ServingRun.rateLabel(rates.get(0))
                : "sweep of rates " + String.join(", ", rates.stream().map(ServingRun::rateLabel).toList());
        return String.format("bench serve: %d %s prompts (%d prompt, %d output tokens asked) to %s%s, model %s, %s%s",
                prompts.size(), dataset, prompts.stream().mapToLong(BenchPrompt::promptLen).sum(),
                prompts.stream().mapToLong(BenchPrompt::outputLen).sum(), config.baseUrl(), config.endpoint().path(),
                config.model(), load, maxConcurrency == null ? "" : ", at most " + maxConcurrency + " in flight");
    }

    /** The request rates to run at: --sweep's, else --request-rate's (inf by default). */
    private List<Double> rates() {
        if (sweep == null) {
            return List.of(parseRate("--request-rate", requestRate == null ? "inf" : requestRate));
        }
        if (requestRate != null) {
            throw usage("--sweep runs at each of its rates; --request-rate " + requestRate + " cannot be given with it");
        }
        List<Double> rates = new ArrayList<>();
        for (String rate : sweep) {
            rates.add(parseRate("--sweep", rate));
        }
        return rates;
    }

    static double parseRate(String flag, String text) {
        String t = text.strip().toLowerCase(Locale.ROOT);
        if (t.equals("inf") || t.equals("infinity")) {
            return Double.POSITIVE_INFINITY;
        }
        try {
            double rate = Double.parseDouble(t);
            if (rate > 0 && !Double.isNaN(rate)) {
                return rate;
            }
        } catch (NumberFormatException e) {
            // Reported below.
        }
        throw new IllegalArgumentException(flag + " rates must be numbers > 0 or inf, got " + text);
    }

    /** A run's parameters in the result, under vLLM's names where it has them. */
    private ObjectNode parameters(ServingBenchmark.Config config, String dataset, double rate, InProcessServer server) {
        ObjectNode parameters = new ObjectMapper().createObjectNode();
        parameters.put("backend", "openai");
        parameters.put("base_url", config.baseUrl().toString());
        parameters.put("endpoint", config.endpoint().path());
        parameters.put("model_id", config.model());
        parameters.put("in_process", server != null);
        parameters.put("device", server == null ? null : server.deviceDescription());
        parameters.put("dataset_name", dataset);
        parameters.put("dataset_path", datasetPath == null ? null : datasetPath.toString());
        parameters.put("num_prompts", numPrompts);
        if (Double.isInfinite(rate)) {
            parameters.put("request_rate", "inf");
        } else {
            parameters.put("request_rate", rate);
        }
        parameters.put("burstiness", burstiness);
        parameters.put("goodput", config.serviceLevels() == null ? null : config.serviceLevels().toString());
        parameters.put("max_concurrency", maxConcurrency);
        parameters.put("seed", seed);
        parameters.put("ignore_eos", true);
        sampling.recordSent(parameters);
        return parameters;
    }

    /**
     * Kiln's server over --model in this process, on a free loopback port. Its waiting queue admits
     * every prompt of the run, so that a burst measures the engine rather than kiln serve's
     * --max-waiting, which would refuse what is beyond it.
     */
    private InProcessServer startServer(EngineOptions engineOptions, PrintWriter err) throws Exception {
        int maxWaiting = Math.max(numPrompts, numWarmups);
        err.printf("bench serve: loading %s for the in-process server%n", model);
        err.flush();
        long start = System.nanoTime();
        InProcessServer server = InProcessServer.start(located, engineOptions, servedModelName, maxWaiting,
                engineFlags.verbose());
        err.printf("bench serve: serving %s on %s at %s (loaded in %.1f s)%n", server.modelName(),
                server.deviceDescription(), server.baseUrl(), (System.nanoTime() - start) / 1e9);
        return server;
    }

    /** Usage error for an engine flag given where no engine is started (--verbose is the log's, so it passes). */
    private void refuseEngineFlags() {
        CommandSpec flags = spec.mixins().get("engineFlags");
        ParseResult parsed = spec.commandLine().getParseResult();
        for (OptionSpec option : flags.options()) {
            String name = option.longestName();
            if (!name.equals("--verbose") && parsed.hasMatchedOption(name)) {
                throw usage(name + " configures the in-process server's engine, which is started only with --model DIR"
                        + " and no --base-url");
            }
        }
    }

    /** The prompts as text, for an endpoint that takes no token ids; the model's tokenizer decodes them. */
    private List<BenchPrompt> asText(List<BenchPrompt> prompts, String dataset, ServingEndpoint route)
            throws IOException {
        if (prompts.stream().allMatch(p -> p.text() != null)) {
            return prompts;
        }
        if (model == null || !Files.isRegularFile(located.directory().resolve("tokenizer.json"))) {
            throw usage(route.path() + " takes text, and the " + dataset + " prompts are token ids: --model DIR with a"
                    + " tokenizer.json decodes them" + (model == null ? "" : " (" + model + " has none)"));
        }
        return ServingDatasets.asText(prompts, Tokenizer.load(located.directory()));
    }

    private ParameterException usage(String message) {
        return new ParameterException(spec.commandLine(), message);
    }

    private List<BenchPrompt> prompts(String dataset) throws IOException {
        switch (dataset) {
            case "sharegpt-like": {
                ServingDatasets.LogNormal input = new ServingDatasets.LogNormal(shareGptLikeInputMedian,
                        shareGptLikeSigma, ServingDatasets.SHAREGPT_LIKE_INPUT.min(), shareGptLikeMaxInputLen);
                ServingDatasets.LogNormal output = new ServingDatasets.LogNormal(shareGptLikeOutputMedian,
                        shareGptLikeSigma, ServingDatasets.SHAREGPT_LIKE_OUTPUT.min(), shareGptLikeMaxOutputLen);
                return ServingDatasets.shareGptLike(numPrompts, vocabulary(), input, output, seed);
            }
            case "random":
                return ServingDatasets.random(numPrompts, vocabulary(), randomInputLen, randomOutputLen, randomRangeRatio,
                        seed);
            case "prefix_repetition":
                try {
                    return ServingDatasets.prefixRepetition(numPrompts, vocabulary(), prefixRepetitionPrefixLen,
                            prefixRepetitionSuffixLen, prefixRepetitionNumPrefixes, prefixRepetitionOutputLen, seed);
                } catch (IllegalArgumentException e) {
                    throw usage(e.getMessage());
                }
            case "sharegpt": {
                if (datasetPath == null) {
                    throw usage("--dataset-name sharegpt needs --dataset-path FILE");
                }
                if (model == null) {
                    throw usage("a ShareGPT file needs --model DIR, whose tokenizer counts the prompt and answer tokens");
                }
                return ServingDatasets.shareGpt(datasetPath, Tokenizer.load(located.directory()), numPrompts, seed);
            }
            default:
                throw usage("--dataset-name must be sharegpt-like, random, prefix_repetition or sharegpt, got " + datasetName);
        }
    }

    /**
     * Token ids of random prompts: --vocab-size, else the model's vocabulary, no larger than its
     * tokenizer's (a padded embedding has rows no token maps to, and some servers refuse those ids).
     */
    private int vocabulary() throws IOException {
        if (vocabSize != null) {
            return vocabSize;
        }
        if (model == null) {
            throw usage("random-token prompts need --vocab-size N or --model DIR (its config.json's vocab_size)");
        }
        JsonNode config = new ObjectMapper().readTree(located.directory().resolve("config.json").toFile());
        JsonNode size = config.has("vocab_size") ? config.get("vocab_size") : config.at("/text_config/vocab_size");
        if (!size.isIntegralNumber()) {
            throw new IllegalArgumentException(located.directory().resolve("config.json") + " has no vocab_size; pass --vocab-size");
        }
        int vocab = size.intValue();
        if (Files.isRegularFile(located.directory().resolve("tokenizer.json"))) {
            vocab = Math.min(vocab, Tokenizer.load(located.directory()).vocabSize());
        }
        return vocab;
    }
}
