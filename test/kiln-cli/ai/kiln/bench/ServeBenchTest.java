package ai.kiln.bench;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.kiln.api.Engine;
import ai.kiln.api.EngineOptions;
import ai.kiln.cli.KilnCli;
import ai.kiln.server.KilnServer;
import ai.kiln.testing.Fixtures;
import ai.kiln.tokenizer.Tokenizer;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.awt.image.BufferedImage;
import java.io.OutputStream;
import java.io.PrintStream;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.net.ConnectException;
import java.net.ServerSocket;
import java.net.Socket;
import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import javax.imageio.ImageIO;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

/**
 * {@code kiln bench serve} against Kiln's real server in this process (CPU, the llama3-gqa fixture):
 * every request completes with exactly the asked lengths, completions and chat completions alike;
 * requests the server refuses (too long for the context, an unknown model) and a server that is not
 * there are counted as failed, with their messages. A sweep runs each rate over the same prompts
 * and plots them; without --base-url the command starts the server over --model itself.
 */
class ServeBenchTest {

    static final ObjectMapper JSON = new ObjectMapper();
    static final Fixtures.Model FIXTURE = Fixtures.named("llama3-gqa");
    static final int N = 20;
    static final long SEED = 3;
    static final ServingDatasets.LogNormal INPUT = new ServingDatasets.LogNormal(24, 0.8, 4, 64);
    static final ServingDatasets.LogNormal OUTPUT = new ServingDatasets.LogNormal(12, 0.8, 4, 24);

    /** A live server on an ephemeral port; {@code maxModelLen} null: the fixture's 512. */
    record Live(Engine engine, KilnServer server) implements AutoCloseable {

        static Live start(Integer maxModelLen) throws Exception {
            Engine engine = Engine.create(FIXTURE.dir(), EngineOptions.builder().device("cpu").kvCacheBytes(16L << 20)
                    .maxRunningSeqs(64).maxModelLen(maxModelLen).shutdownGrace(Duration.ofSeconds(2)).build());
            try {
                KilnServer server = new KilnServer(KilnServer.Options.defaults().withPort(0),
                        new PrintStream(OutputStream.nullOutputStream())).start();
                server.serve(engine, Tokenizer.load(FIXTURE.dir()), FIXTURE.name());
                return new Live(engine, server);
            } catch (Exception e) {
                engine.close();
                throw e;
            }
        }

        String url() {
            return "http://127.0.0.1:" + server.port();
        }

        @Override
        public void close() throws Exception {
            try {
                server.close();
            } finally {
                engine.close();
            }
        }
    }

    /** The exit code, the JSON lines on standard output (one per run) and standard error. */
    record Run(int exitCode, List<JsonNode> lines, String err) {

        /** The result of a command that ran once. */
        JsonNode result() {
            assertEquals(1, lines.size(), "one result line: " + lines + "\n" + err);
            return lines.get(0);
        }
    }

    /**
     * {@code kiln bench serve} with the test's small ShareGPT-like lengths plus {@code extra};
     * {@code url} null: no --base-url, so the command serves --model itself.
     */
    static Run benchServe(String url, String... extra) throws Exception {
        List<String> args = new ArrayList<>(List.of("bench", "serve"));
        if (url != null) {
            args.addAll(List.of("--base-url", url));
        }
        args.addAll(List.of("--model", FIXTURE.dir().toString(), "--seed", Long.toString(SEED),
                "--sharegpt-like-input-median", "24", "--sharegpt-like-output-median", "12",
                "--sharegpt-like-sigma", "0.8", "--sharegpt-like-max-input-len", "64",
                "--sharegpt-like-max-output-len", "24", "--request-timeout-s", "60"));
        if (!List.of(extra).contains("--num-prompts")) {
            args.addAll(List.of("--num-prompts", Integer.toString(N)));
        }
        args.addAll(List.of(extra));
        return kiln(args.toArray(String[]::new));
    }

    /** The kiln command line, its standard output read as JSON lines. */
    static Run kiln(String... args) throws Exception {
        StringWriter out = new StringWriter();
        StringWriter err = new StringWriter();
        CommandLine cli = new CommandLine(new KilnCli());
        cli.setOut(new PrintWriter(out, true));
        cli.setErr(new PrintWriter(err, true));
        int code = cli.execute(args);
        if (Boolean.getBoolean("kiln.bench.verbose")) {
            System.err.print(err);
        }
        List<JsonNode> lines = new ArrayList<>();
        for (String line : out.toString().split("\n")) {
            if (!line.isBlank()) {
                lines.add(JSON.readTree(line));
            }
        }
        return new Run(code, lines, err.toString());
    }

    /** The prompts the command draws with the same flags (the vocabulary: config.json's, within the tokenizer's). */
    static List<BenchPrompt> expectedPrompts() throws Exception {
        int vocab = Math.min(512, Tokenizer.load(FIXTURE.dir()).vocabSize());
        return ServingDatasets.shareGptLike(N, vocab, INPUT, OUTPUT, SEED);
    }

    @Test
    void everyRequestCompletesWithTheAskedLengths() throws Exception {
        List<BenchPrompt> prompts = expectedPrompts();
        try (Live live = Live.start(null)) {
            Run run = benchServe(live.url(), "--temperature", "0.8", "--top-p", "0.95", "--sampling-seed", "11");
            assertEquals(0, run.exitCode(), run.err());
            JsonNode r = run.result();
            assertEquals(N, r.get("completed").asInt(), run.err());
            assertEquals(0, r.get("failed").asInt(), r.toString());
            assertEquals(0, r.get("errors").size());
            long asked = prompts.stream().mapToLong(BenchPrompt::outputLen).sum();
            assertEquals(asked, r.get("total_output_tokens").asLong());
            assertEquals(asked, r.get("requested_output_tokens").asLong());
            assertEquals(prompts.stream().mapToLong(BenchPrompt::promptLen).sum(), r.get("total_input_tokens").asLong());
            assertEquals("llama3-gqa", r.get("model_id").asText(), "the name comes from GET /v1/models");
            assertEquals("sharegpt-like", r.get("dataset_name").asText());
            assertEquals("inf", r.get("request_rate").asText());
            assertEquals(0.8, r.get("temperature").asDouble());
            assertEquals(0.95, r.get("top_p").asDouble());
            assertTrue(r.get("top_k").isNull(), "not sent: the server's default");
            assertEquals(11, r.get("sampling_seed").asLong());
            assertTrue(r.get("ignore_eos").asBoolean());
            double duration = r.get("duration").asDouble();
            assertTrue(duration > 0);
            assertEquals(N / duration, r.get("request_throughput").asDouble(), 0.01 * N / duration + 1e-3);
            for (String metric : List.of("ttft", "tpot", "itl", "e2el")) {
                for (String stat : List.of("mean", "median", "std", "p90", "p99")) {
                    String name = stat + "_" + metric + "_ms";
                    assertTrue(r.get(name).isNumber() && r.get(name).asDouble() >= 0, name + " in " + r);
                }
            }
            assertTrue(r.get("median_ttft_ms").asDouble() <= r.get("median_e2el_ms").asDouble());
            assertTrue(r.get("p99_e2el_ms").asDouble() <= duration * 1e3);
            assertTrue(run.err().contains("Serving Benchmark Result"), run.err());
            assertTrue(run.err().contains("Successful requests:                     " + N), run.err());
        }
    }

    /** Prompts sharing prefixes: the server's prefix cache serves them, and the counts add up. */
    @Test
    void prefixRepetitionDatasetAgainstTheServer() throws Exception {
        try (Live live = Live.start(null)) {
            Run run = benchServe(live.url(), "--dataset-name", "prefix_repetition", "--prefix-repetition-prefix-len",
                    "32", "--prefix-repetition-suffix-len", "8", "--prefix-repetition-num-prefixes", "2",
                    "--prefix-repetition-output-len", "6");
            assertEquals(0, run.exitCode(), run.err());
            JsonNode r = run.result();
            assertEquals("prefix_repetition", r.get("dataset_name").asText());
            assertEquals(N, r.get("completed").asInt(), r.toString());
            assertEquals(40L * N, r.get("total_input_tokens").asLong());
            assertEquals(6L * N, r.get("total_output_tokens").asLong());
        }
    }

    @Test
    void burstyArrivalsUnderAConcurrencyLimit() throws Exception {
        double rate = 40;
        long[] arrivals = ServingBenchmark.arrivals(N, rate, 0.5, SEED);
        try (Live live = Live.start(null)) {
            Run run = benchServe(live.url(), "--request-rate", Double.toString(rate), "--burstiness", "0.5",
                    "--max-concurrency", "3", "--num-warmups", "2", "--goodput", "ttft:600000", "e2el:600000");
            assertEquals(0, run.exitCode(), run.err());
            JsonNode r = run.result();
            assertEquals(N, r.get("completed").asInt(), r.toString());
            assertEquals(0, r.get("failed").asInt(), r.toString());
            assertEquals(rate, r.get("request_rate").asDouble());
            assertEquals(0.5, r.get("burstiness").asDouble());
            // Objectives of ten minutes: every completed request meets them.
            assertEquals(r.get("request_throughput").asDouble(), r.get("request_goodput").asDouble(), 1e-3);
            assertEquals(3, r.get("max_concurrency").asInt());
            assertTrue(r.get("duration").asDouble() >= arrivals[N - 1] / 1e9, "the last request is sent at its arrival");
        }
    }

    @Test
    void requestsTooLongForTheContextCountAsFailedWithTheMessage() throws Exception {
        int context = 48;
        List<BenchPrompt> prompts = expectedPrompts();
        List<BenchPrompt> fitting = prompts.stream().filter(p -> p.promptLen() + p.outputLen() <= context).toList();
        int tooLong = N - fitting.size();
        assertTrue(tooLong > 0 && tooLong < N, "the lengths straddle the context: " + tooLong);
        try (Live live = Live.start(context)) {
            Run run = benchServe(live.url());
            assertEquals(0, run.exitCode(), run.err());
            JsonNode r = run.result();
            assertEquals(fitting.size(), r.get("completed").asInt(), r.toString());
            assertEquals(tooLong, r.get("failed").asInt(), r.toString());
            assertEquals(fitting.stream().mapToLong(BenchPrompt::outputLen).sum(), r.get("total_output_tokens").asLong());
            // Two kinds: prompts alone too long, and prompts whose max_tokens overflows the context.
            int counted = 0;
            for (JsonNode error : r.get("errors")) {
                String message = error.get("message").asText();
                assertTrue(message.startsWith("HTTP 400: ") && message.contains("maximum context length"), message);
                counted += error.get("count").asInt();
            }
            assertEquals(tooLong, counted, r.get("errors").toString());
            assertTrue(run.err().contains("Failed requests:                         " + tooLong), run.err());
        }
    }

    @Test
    void anUnknownModelFailsEveryRequest() throws Exception {
        try (Live live = Live.start(null)) {
            Run run = benchServe(live.url(), "--served-model-name", "no-such-model");
            assertEquals(0, run.exitCode(), run.err());
            JsonNode r = run.result();
            assertEquals(0, r.get("completed").asInt());
            assertEquals(N, r.get("failed").asInt());
            assertTrue(r.get("mean_ttft_ms").isNull(), "no latency without a completed request");
            assertEquals(0, r.get("total_output_tokens").asLong());
            String message = r.at("/errors/0/message").asText();
            assertTrue(message.startsWith("HTTP 404: ") && message.contains("no-such-model"), message);
            assertEquals(N, r.at("/errors/0/count").asInt());
        }
    }

    @Test
    void aServerThatIsNotThereFailsEveryRequest() throws Exception {
        int port;
        try (ServerSocket socket = new ServerSocket(0)) {
            port = socket.getLocalPort();
        }
        Run run = benchServe("http://127.0.0.1:" + port, "--served-model-name", "llama3-gqa");
        assertEquals(0, run.exitCode(), run.err());
        assertEquals(N, run.result().get("failed").asInt());
        String message = run.result().at("/errors/0/message").asText();
        assertTrue(message.contains("ConnectException"), message);

        Run unnamed = benchServe("http://127.0.0.1:" + port);
        assertEquals(1, unnamed.exitCode(), "without a model name the command asks /v1/models, and says so");
        assertTrue(unnamed.err().contains("--served-model-name"), unnamed.err());
    }

    @Test
    void shareGptFilePromptsAreSentAsText(@TempDir Path dir) throws Exception {
        Path file = dir.resolve("sharegpt.json");
        Files.writeString(file, ServingDatasetsTest.SHAREGPT);
        List<BenchPrompt> prompts = ServingDatasets.shareGpt(file, Tokenizer.load(FIXTURE.dir()), 3, SEED);
        try (Live live = Live.start(null)) {
            Run run = benchServe(live.url(), "--dataset-path", file.toString(), "--num-prompts", "3");
            assertEquals(0, run.exitCode(), run.err());
            JsonNode r = run.result();
            assertEquals("sharegpt", r.get("dataset_name").asText());
            assertEquals(3, r.get("completed").asInt(), r.toString());
            assertEquals(prompts.stream().mapToLong(BenchPrompt::promptLen).sum(), r.get("total_input_tokens").asLong());
            assertEquals(prompts.stream().mapToLong(BenchPrompt::outputLen).sum(), r.get("total_output_tokens").asLong(),
                    "the answers' lengths, generated exactly");
        }
    }

    /** Chat: the token-id prompts decoded to text by the model's tokenizer, each answer the tokens asked. */
    @Test
    void chatCompletionsCompleteWithTheAskedTokens() throws Exception {
        List<BenchPrompt> prompts = ServingDatasets.asText(expectedPrompts(), Tokenizer.load(FIXTURE.dir()));
        try (Live live = Live.start(null)) {
            Run run = benchServe(live.url(), "--endpoint", "/v1/chat/completions", "--sampling-seed", "5");
            assertEquals(0, run.exitCode(), run.err());
            JsonNode r = run.result();
            assertEquals("/v1/chat/completions", r.get("endpoint").asText());
            assertEquals(N, r.get("completed").asInt(), r.toString());
            assertEquals(0, r.get("failed").asInt(), r.toString());
            long asked = prompts.stream().mapToLong(BenchPrompt::outputLen).sum();
            assertEquals(asked, r.get("total_output_tokens").asLong(), "ignore_eos: every token asked for");
            assertEquals(asked, r.get("requested_output_tokens").asLong());
            assertEquals(prompts.stream().mapToLong(BenchPrompt::promptLen).sum(), r.get("total_input_tokens").asLong(),
                    "the decoded texts' tokens");
            for (String name : List.of("median_ttft_ms", "median_tpot_ms", "median_itl_ms", "p99_e2el_ms")) {
                assertTrue(r.get(name).isNumber() && r.get(name).asDouble() > 0, name + " in " + r);
            }
            assertTrue(run.err().contains("/v1/chat/completions"), run.err());
        }
    }

    /** Chat takes text: token ids without a tokenizer to decode them are refused before anything is sent. */
    @Test
    void chatWithTokenIdPromptsNeedsATokenizer(@TempDir Path dir) throws Exception {
        int port;
        try (ServerSocket socket = new ServerSocket(0)) {
            port = socket.getLocalPort();
        }
        String nowhere = "http://127.0.0.1:" + port;
        Run noModel = kiln("bench", "serve", "--base-url", nowhere, "--vocab-size", "512", "--endpoint",
                "/v1/chat/completions", "--num-prompts", "2");
        assertEquals(2, noModel.exitCode(), "a usage error, not the server's absence: " + noModel.err());
        assertTrue(noModel.err().contains("/v1/chat/completions takes text") && noModel.err().contains("tokenizer.json"),
                noModel.err());
        Path bare = Files.createDirectory(dir.resolve("no-tokenizer"));
        Files.copy(FIXTURE.dir().resolve("config.json"), bare.resolve("config.json"));
        Run noTokenizer = kiln("bench", "serve", "--base-url", nowhere, "--model", bare.toString(), "--endpoint",
                "/v1/chat/completions", "--dataset-name", "random", "--num-prompts", "2");
        assertEquals(2, noTokenizer.exitCode(), noTokenizer.err());
        assertTrue(noTokenizer.err().contains(bare + " has none"), noTokenizer.err());
        assertTrue(noTokenizer.lines().isEmpty());
    }

    /**
     * A sweep: a run per rate, in order, over the same prompts; a JSON line each, an array of them in
     * the result file, a table, and a PNG with both charts drawn.
     */
    @Test
    void sweepRunsEachRateOverTheSamePromptsAndPlotsThem(@TempDir Path dir) throws Exception {
        Path resultFile = dir.resolve("sweep.json");
        Path plot = dir.resolve("sweep.png");
        try (Live live = Live.start(null)) {
            Run run = benchServe(live.url(), "--sweep", "40,inf", "--num-prompts", "8", "--result-file",
                    resultFile.toString(), "--plot", plot.toString());
            assertEquals(0, run.exitCode(), run.err());
            assertEquals(2, run.lines().size(), run.err());
            JsonNode slow = run.lines().get(0);
            JsonNode burst = run.lines().get(1);
            assertEquals(40.0, slow.get("request_rate").asDouble());
            assertEquals("inf", burst.get("request_rate").asText());
            for (JsonNode r : run.lines()) {
                assertEquals(8, r.get("completed").asInt(), r.toString());
                assertEquals(0, r.get("failed").asInt(), r.toString());
            }
            assertEquals(slow.get("total_input_tokens"), burst.get("total_input_tokens"), "the same prompts");
            assertEquals(slow.get("requested_output_tokens"), burst.get("requested_output_tokens"));
            JsonNode written = JSON.readTree(resultFile.toFile());
            assertTrue(written.isArray() && written.size() == 2, written.toString());
            assertEquals(slow, written.get(0));
            assertEquals(burst, written.get(1));
            assertTrue(run.err().contains("Serving Benchmark Sweep (2 request rates)"), run.err());
            assertTrue(run.err().lines().anyMatch(l -> l.strip().startsWith("40 ")), run.err());
            assertTrue(run.err().lines().anyMatch(l -> l.strip().startsWith("inf ")), run.err());
        }
        assertPlotted(plot);
    }

    /**
     * Without --base-url: Kiln serves --model in this process with the engine flags (here a context of
     * 48 tokens, which some prompts overflow), and stops when the run is done.
     */
    @Test
    void withoutABaseUrlTheModelIsServedInProcess(@TempDir Path dir) throws Exception {
        int context = 48;
        List<BenchPrompt> fitting = expectedPrompts().stream().filter(p -> p.promptLen() + p.outputLen() <= context)
                .toList();
        Path plot = dir.resolve("one-run.png");
        Run run = benchServe(null, "--device", "cpu", "--kv-cache-mib", "16", "--max-num-seqs", "8",
                "--max-model-len", Integer.toString(context), "--plot", plot.toString());
        assertEquals(0, run.exitCode(), run.err());
        JsonNode r = run.result();
        assertTrue(r.get("in_process").asBoolean(), r.toString());
        assertTrue(r.get("device").isTextual(), r.toString());
        assertEquals("llama3-gqa", r.get("model_id").asText());
        assertEquals(fitting.size(), r.get("completed").asInt(), r.toString());
        assertEquals(N - fitting.size(), r.get("failed").asInt(), "--max-model-len reached the engine: " + r);
        assertEquals(fitting.stream().mapToLong(BenchPrompt::outputLen).sum(), r.get("total_output_tokens").asLong());
        URI url = URI.create(r.get("base_url").asText());
        assertEquals("127.0.0.1", url.getHost());
        assertThrows(ConnectException.class, () -> new Socket(url.getHost(), url.getPort()).close(),
                "the server is stopped once the run is done");
        assertTrue(run.err().contains("Serving Benchmark Result"), run.err());
        assertPlotted(plot);
    }

    /** A PNG of both charts side by side, each with its median line drawn. */
    static void assertPlotted(Path plot) throws Exception {
        byte[] bytes = Files.readAllBytes(plot);
        assertTrue(bytes.length > 1000, bytes.length + " bytes");
        assertArrayEquals(new byte[] {(byte) 0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'}, Arrays.copyOf(bytes, 8));
        BufferedImage image = ImageIO.read(plot.toFile());
        assertEquals(ServingPlot.WIDTH, image.getWidth());
        assertEquals(ServingPlot.HEIGHT, image.getHeight());
        int half = image.getWidth() / 2;
        assertTrue(hasPixelNear(image, 0, half, 0x1F77B4), "the TTFT chart's median points");
        assertTrue(hasPixelNear(image, half, image.getWidth(), 0x1F77B4), "the TPOT chart's median points");
        assertTrue(hasPixelNear(image, 0, half, 0xD62728), "the TTFT chart's p99 points");
    }

    private static boolean hasPixelNear(BufferedImage image, int fromX, int toX, int rgb) {
        for (int x = fromX; x < toX; x++) {
            for (int y = 0; y < image.getHeight(); y++) {
                int p = image.getRGB(x, y);
                int distance = Math.abs(((p >> 16) & 0xFF) - ((rgb >> 16) & 0xFF))
                        + Math.abs(((p >> 8) & 0xFF) - ((rgb >> 8) & 0xFF)) + Math.abs((p & 0xFF) - (rgb & 0xFF));
                if (distance < 24) {
                    return true;
                }
            }
        }
        return false;
    }

    @Test
    void commandLine() throws Exception {
        StringWriter out = new StringWriter();
        CommandLine cli = new CommandLine(new KilnCli());
        cli.setOut(new PrintWriter(out, true));
        cli.setErr(new PrintWriter(new StringWriter(), true));
        assertEquals(0, cli.execute("bench", "serve", "--help"));
        assertTrue(out.toString().contains("--request-rate"), out.toString());
        assertEquals(2, cli.execute("bench"), "kiln bench still needs --model");
        assertEquals(2, cli.execute("bench", "serve", "--vocab-size", "512", "--dataset-name", "sonnet"));
        assertEquals(2, cli.execute("bench", "serve", "--dataset-name", "sharegpt"), "no file");
        assertEquals(1, cli.execute("bench", "serve", "--vocab-size", "512", "--request-rate", "0"));
        assertEquals(1, cli.execute("bench", "serve", "--vocab-size", "512", "--sweep", "2,0"));
        assertEquals(2, cli.execute("bench", "serve", "--vocab-size", "512", "--sweep", "2,4", "--request-rate", "3"),
                "a sweep sets the rates itself");
        assertEquals(2, cli.execute("bench", "serve", "--vocab-size", "512", "--endpoint", "/v1/embeddings"));
        assertEquals(2, cli.execute("bench", "serve", "--vocab-size", "512", "--plot", "latency.jpg"), "PNG only");
        assertEquals(2, cli.execute("bench", "serve", "--base-url", "http://127.0.0.1:1", "--model",
                FIXTURE.dir().toString(), "--max-num-seqs", "4"), "no engine to configure with --base-url");
    }
}
