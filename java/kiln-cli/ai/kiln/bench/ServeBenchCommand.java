package ai.kiln.bench;

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
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Spec;

/**
 * {@code kiln bench serve}: a serving load against a running OpenAI-compatible server (Kiln's, vLLM's,
 * SGLang's), in the manner of vLLM's benchmark_serving.py and with its flag and result names: N
 * streamed completions with ShareGPT-like (or ShareGPT's, or fixed random) lengths, sent all at once
 * or as a seeded Poisson process. Prints one JSON line (parameters and figures) on standard output
 * and a table on standard error. See {@link ServingDatasets} for the prompts and {@link ServingReport}
 * for how each figure is computed.
 */
@Command(name = "serve", mixinStandardHelpOptions = true,
        description = "Measure a running OpenAI-compatible server under a serving load (streamed /v1/completions).")
public final class ServeBenchCommand implements Callable<Integer> {

    @Option(names = "--base-url", paramLabel = "URL", defaultValue = "http://127.0.0.1:8000",
            description = "the server's root URL (default ${DEFAULT-VALUE})")
    URI baseUrl;

    @Option(names = "--served-model-name", paramLabel = "NAME",
            description = "model name sent in requests (default: the first of GET /v1/models)")
    String servedModelName;

    @Option(names = "--api-key", paramLabel = "KEY", defaultValue = "${env:OPENAI_API_KEY}",
            description = "bearer token (default: $OPENAI_API_KEY, else none)")
    String apiKey;

    @Option(names = "--model", paramLabel = "DIR",
            description = "model directory: its config.json gives the vocabulary of random prompts, its tokenizer counts ShareGPT's tokens")
    Path model;

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

    @Option(names = "--request-rate", defaultValue = "inf", paramLabel = "RATE",
            description = "mean requests per second of the arrivals (Poisson, or see --burstiness); inf: all at once"
                    + " (default ${DEFAULT-VALUE})")
    String requestRate;

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

    @Option(names = "--result-file", paramLabel = "FILE", description = "also write the JSON result here")
    Path resultFile;

    @Mixin
    SamplingOptions sampling = SamplingOptions.greedy();

    @Spec
    CommandSpec spec;

    @Override
    public Integer call() throws IOException {
        sampling.validate();
        double rate = parseRate(requestRate);
        if (numPrompts < 1) {
            throw new ParameterException(spec.commandLine(), "--num-prompts must be >= 1, got " + numPrompts);
        }
        String dataset = datasetName != null ? datasetName.toLowerCase(Locale.ROOT)
                : datasetPath != null ? "sharegpt" : "sharegpt-like";
        List<BenchPrompt> prompts = prompts(dataset);
        String modelName = servedModelName != null ? servedModelName : ServingBenchmark.servedModel(baseUrl, apiKey);
        PrintWriter err = spec.commandLine().getErr();
        long asked = prompts.stream().mapToLong(BenchPrompt::outputLen).sum();
        err.printf("bench serve: %d %s prompts (%d prompt, %d output tokens asked) to %s, model %s, rate %s%s%n",
                prompts.size(), dataset, prompts.stream().mapToLong(BenchPrompt::promptLen).sum(), asked, baseUrl,
                modelName, requestRate, maxConcurrency == null ? "" : ", at most " + maxConcurrency + " in flight");
        ServingBenchmark.Config config;
        try {
            ServiceLevels levels = goodput == null ? null : ServiceLevels.parse(goodput);
            config = new ServingBenchmark.Config(baseUrl, modelName, apiKey, rate, burstiness, maxConcurrency,
                    numWarmups, Duration.ofSeconds(requestTimeoutSeconds), seed, sampling, levels);
        } catch (IllegalArgumentException e) {
            throw new ParameterException(spec.commandLine(), e.getMessage());
        }
        ServingReport report = new ServingBenchmark(config).run(prompts, err);

        ObjectNode parameters = new ObjectMapper().createObjectNode();
        parameters.put("backend", "openai");
        parameters.put("base_url", baseUrl.toString());
        parameters.put("endpoint", "/v1/completions");
        parameters.put("model_id", modelName);
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
        ObjectNode line = report.toJson(parameters);
        spec.commandLine().getOut().println(line);
        err.print(report.summary());
        err.flush();
        if (resultFile != null) {
            Files.writeString(resultFile, line.toPrettyString() + "\n");
        }
        return 0;
    }

    static double parseRate(String text) {
        String t = text.strip().toLowerCase(Locale.ROOT);
        if (t.equals("inf") || t.equals("infinity")) {
            return Double.POSITIVE_INFINITY;
        }
        try {
            double rate = Double.parseDouble(t);
            if (rate > 0) {
                return rate;
            }
        } catch (NumberFormatException e) {
            // Reported below.
        }
        throw new IllegalArgumentException("--request-rate must be a number > 0 or inf, got " + text);
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
                    throw new ParameterException(spec.commandLine(), e.getMessage());
                }
            case "sharegpt": {
                if (datasetPath == null) {
                    throw new ParameterException(spec.commandLine(), "--dataset-name sharegpt needs --dataset-path FILE");
                }
                if (model == null) {
                    throw new ParameterException(spec.commandLine(),
                            "a ShareGPT file needs --model DIR, whose tokenizer counts the prompt and answer tokens");
                }
                return ServingDatasets.shareGpt(datasetPath, Tokenizer.load(model), numPrompts, seed);
            }
            default:
                throw new ParameterException(spec.commandLine(),
                        "--dataset-name must be sharegpt-like, random, prefix_repetition or sharegpt, got " + datasetName);
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
            throw new ParameterException(spec.commandLine(),
                    "random-token prompts need --vocab-size N or --model DIR (its config.json's vocab_size)");
        }
        JsonNode config = new ObjectMapper().readTree(model.resolve("config.json").toFile());
        JsonNode size = config.has("vocab_size") ? config.get("vocab_size") : config.at("/text_config/vocab_size");
        if (!size.isIntegralNumber()) {
            throw new IllegalArgumentException(model.resolve("config.json") + " has no vocab_size; pass --vocab-size");
        }
        int vocab = size.intValue();
        if (Files.isRegularFile(model.resolve("tokenizer.json"))) {
            vocab = Math.min(vocab, Tokenizer.load(model).vocabSize());
        }
        return vocab;
    }
}
