package ai.kiln.bench;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.kiln.api.Engine;
import ai.kiln.api.EngineOptions;
import ai.kiln.cli.KilnCli;
import ai.kiln.server.KilnServer;
import ai.kiln.testing.Fixtures;
import ai.kiln.tokenizer.Tokenizer;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.OutputStream;
import java.io.PrintStream;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.net.ServerSocket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

/**
 * {@code kiln bench serve} against Kiln's real server in this process (CPU, the llama3-gqa fixture):
 * every request completes with exactly the asked lengths; requests the server refuses (too long for
 * the context, an unknown model) and a server that is not there are counted as failed, with their
 * messages.
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

    record Run(int exitCode, JsonNode result, String err) {
    }

    /** {@code kiln bench serve} with the test's small ShareGPT-like lengths plus {@code extra}. */
    static Run benchServe(String url, String... extra) throws Exception {
        List<String> args = new ArrayList<>(List.of("bench", "serve", "--base-url", url, "--model",
                FIXTURE.dir().toString(), "--seed", Long.toString(SEED),
                "--sharegpt-like-input-median", "24", "--sharegpt-like-output-median", "12",
                "--sharegpt-like-sigma", "0.8", "--sharegpt-like-max-input-len", "64",
                "--sharegpt-like-max-output-len", "24", "--request-timeout-s", "60"));
        if (!List.of(extra).contains("--num-prompts")) {
            args.addAll(List.of("--num-prompts", Integer.toString(N)));
        }
        args.addAll(List.of(extra));
        StringWriter out = new StringWriter();
        StringWriter err = new StringWriter();
        CommandLine cli = new CommandLine(new KilnCli());
        cli.setOut(new PrintWriter(out, true));
        cli.setErr(new PrintWriter(err, true));
        int code = cli.execute(args.toArray(String[]::new));
        if (Boolean.getBoolean("kiln.bench.verbose")) {
            System.err.print(err);
        }
        String line = out.toString().strip();
        return new Run(code, line.isEmpty() ? null : JSON.readTree(line), err.toString());
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
    }
}
