package ai.kiln.bench;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.kiln.cli.KilnCli;
import ai.kiln.testing.Fixtures;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import picocli.CommandLine;

/**
 * {@code kiln bench} on the CPU with a fixture model: greedy by default, sampled when told, and the
 * line says which; a table for people unless --json; progress on stderr, in place on a terminal.
 */
class BenchCommandTest {

    static final ObjectMapper JSON = new ObjectMapper();

    record Run(int exitCode, List<JsonNode> lines, String err) {
    }

    /** What one run printed: its exit code, stdout and stderr. */
    record Output(int exitCode, String out, String err) {
    }

    static final List<String> SMALL = List.of("--device", "cpu", "--batch", "1,3", "--prompt-len", "8",
            "--output-len", "6", "--repeat", "1", "--max-model-len", "64", "--max-batched-tokens", "64");

    /** {@code kiln bench} on the fixture with {@code args}; stderr counts as a terminal when {@code terminal}. */
    static Output execute(boolean terminal, List<String> args) {
        BenchCommand bench = new BenchCommand();
        bench.stderrIsTerminal = () -> terminal;
        StringWriter out = new StringWriter();
        StringWriter err = new StringWriter();
        CommandLine cli = new CommandLine(bench);
        cli.setOut(new PrintWriter(out, true));
        cli.setErr(new PrintWriter(err, true));
        List<String> all = new ArrayList<>(List.of("--model", Fixtures.named("llama3-gqa").dir().toString()));
        all.addAll(args);
        int code = cli.execute(all.toArray(String[]::new));
        return new Output(code, out.toString(), err.toString());
    }

    /** The JSON lines of a small run with {@code --json} and {@code extra}. */
    static Run bench(String... extra) throws Exception {
        List<String> args = new ArrayList<>(SMALL);
        args.add("--json");
        args.addAll(List.of(extra));
        Output output = execute(false, args);
        List<JsonNode> lines = new ArrayList<>();
        for (String line : output.out().split("\n")) {
            if (!line.isBlank()) {
                lines.add(JSON.readTree(line));
            }
        }
        return new Run(output.exitCode(), lines, output.err());
    }

    @Test
    void jsonLinesKeepTheirFieldsInTheirOrder() throws Exception {
        Run run = bench();
        assertEquals(0, run.exitCode(), run.err());
        // NOTE: scripts/gpu-bench.sh and the figures of docs/performance.md read these lines.
        List<String> fields = new ArrayList<>();
        run.lines().get(0).fieldNames().forEachRemaining(fields::add);
        assertEquals(List.of("model", "device", "batch", "prompt_len", "output_len", "temperature", "top_p", "top_k",
                "min_p", "sampling_seed", "output_tokens_per_s", "decode_tokens_per_s", "ttft_ms_median", "ttft_ms_max",
                "total_s", "java_us_per_step", "model_us_per_step", "load_s"), fields);
        assertEquals("llama3-gqa", run.lines().get(0).get("model").asText());
    }

    @Test
    void aTableByDefault() {
        Output output = execute(false, SMALL);
        assertEquals(0, output.exitCode(), output.err());
        List<String> lines = output.out().lines().toList();
        assertEquals(4, lines.size(), output.out());
        assertTrue(lines.get(0).startsWith("llama3-gqa on cpu"), lines.get(0));
        assertTrue(lines.get(0).contains("greedy"), lines.get(0));
        List<String> headings = List.of(lines.get(1).trim().split(" {2,}"));
        assertEquals(List.of("batch", "prompt", "output", "tok/s", "decode tok/s", "TTFT median ms", "TTFT max ms",
                "total s", "Java us/step", "model us/step"), headings);
        for (int row = 0; row < 2; row++) {
            String[] cells = lines.get(2 + row).trim().split(" +");
            assertEquals(headings.size(), cells.length, lines.get(2 + row));
            assertEquals(row == 0 ? "1" : "3", cells[0]);
            assertEquals("8", cells[1]);
            assertEquals("6", cells[2]);
            assertTrue(Double.parseDouble(cells[3]) > 0, lines.get(2 + row));
            // Right-aligned under its heading.
            assertEquals(lines.get(1).indexOf("tok/s") + "tok/s".length(),
                    lines.get(2 + row).indexOf(cells[3]) + cells[3].length(), lines.get(2 + row));
        }
    }

    @Test
    void progressIsAPlainLinePerStepWhereStderrIsNoTerminal() {
        Output output = execute(false, SMALL);
        assertEquals(0, output.exitCode(), output.err());
        assertFalse(output.err().contains("\r"), output.err());
        List<String> lines = output.err().lines().toList();
        assertTrue(lines.contains("warm-up at batch 3 ..."), output.err());
        assertTrue(lines.contains("batch 3: run 1/1 ..."), output.err());
        assertTrue(lines.stream().anyMatch(l -> l.matches("batch 3: run 1/1: [0-9.]+ tok/s in [0-9.]+ s")), output.err());
    }

    @Test
    void progressIsRewrittenInPlaceOnATerminalAndErasedBeforeTheTable() {
        Output output = execute(true, SMALL);
        assertEquals(0, output.exitCode(), output.err());
        String err = output.err();
        assertTrue(err.contains("\rbatch 3: run 1/1 ..."), err);
        assertTrue(err.contains("\rbatch 1: run 1/1: "), err);
        // Everything after the load line is one line, rewritten, and blank at the end.
        String progress = err.substring(err.indexOf('\n') + 1);
        assertFalse(progress.contains("\n"), err);
        assertTrue(progress.endsWith("\r") && progress.substring(progress.lastIndexOf('\r', progress.length() - 2) + 1,
                progress.length() - 1).isBlank(), err);
        assertEquals(4, output.out().lines().count(), output.out());
    }

    @Test
    void helpShowsTheDefaults() {
        StringWriter out = new StringWriter();
        CommandLine cli = new CommandLine(new KilnCli());
        cli.setOut(new PrintWriter(out, true));
        assertEquals(0, cli.execute("bench", "--help"));
        String help = out.toString().replaceAll("\\s+", " ");
        for (String expected : List.of("--batch=N[,N...] Batch sizes, each measured in turn, e.g. 1,64 (default: 1)",
                "--prompt-len=TOKENS Random prompt tokens per request (default: 128)",
                "--output-len=TOKENS New tokens per request, end-of-sequence ignored (default: 256)",
                "(default: 2)", "--seed=SEED Seeds the random prompts (default: 0)", "--model=DIR",
                "--device=DEVICE", "(default: auto)", "--max-model-len=TOKENS", "(default: the model's)", "--json")) {
            assertTrue(help.contains(expected), "no '" + expected + "' in: " + help);
        }
    }

    @Test
    void aSequenceLongerThanTheModelAllowsIsAUsageErrorInTheBenchsFlags() {
        Output output = execute(false, List.of("--device", "cpu", "--prompt-len", "60", "--output-len", "10",
                "--max-model-len", "64"));
        assertEquals(2, output.exitCode(), output.err());
        assertTrue(output.err().contains("--prompt-len 60 + --output-len 10 = 70 tokens exceeds the longest sequence, 64"),
                output.err());
    }

    @Test
    void greedyByDefaultAndRecorded() throws Exception {
        Run run = bench();
        assertEquals(0, run.exitCode(), run.err());
        assertEquals(2, run.lines().size(), "one line per batch size");
        for (JsonNode line : run.lines()) {
            assertEquals(0.0, line.get("temperature").asDouble());
            assertEquals(1.0, line.get("top_p").asDouble());
            assertEquals(0, line.get("top_k").asInt());
            assertEquals(0.0, line.get("min_p").asDouble());
            assertTrue(line.get("sampling_seed").isNull());
            assertTrue(line.get("output_tokens_per_s").asDouble() > 0, line.toString());
        }
        assertEquals(3, run.lines().get(1).get("batch").asInt());
    }

    @Test
    void samplingFlagsReachTheLine() throws Exception {
        Run run = bench("--temperature", "0.8", "--top-p", "0.95", "--top-k", "40", "--min-p", "0.05",
                "--sampling-seed", "7");
        assertEquals(0, run.exitCode(), run.err());
        JsonNode line = run.lines().get(0);
        assertEquals(0.8, line.get("temperature").asDouble());
        assertEquals(0.95, line.get("top_p").asDouble());
        assertEquals(40, line.get("top_k").asInt());
        assertEquals(0.05, line.get("min_p").asDouble());
        assertEquals(7, line.get("sampling_seed").asLong());
        assertTrue(line.get("output_tokens_per_s").asDouble() > 0, line.toString());
    }

    @Test
    void badSamplingValueIsAUsageErrorNamingTheField() throws Exception {
        Run run = bench("--top-p", "1.5");
        assertEquals(1, run.exitCode());
        assertTrue(run.err().contains("top_p"), run.err());
    }

    @Test
    void seedsFollowTheRequestIndex() {
        SamplingOptions seeded = new SamplingOptions(0.8, null, null, null, 100L);
        assertEquals(100L, seeded.seedFor(0));
        assertEquals(103L, seeded.seedFor(3));
        assertEquals(null, SamplingOptions.greedy().seedFor(3));
    }

    @Test
    void theLargestBatchRunsAtOnceUnlessMaxNumSeqsSaysOtherwise() {
        BenchCommand bench = new BenchCommand();
        new CommandLine(bench).parseArgs("--model", "m", "--batch", "1,48,3");
        assertEquals(48, bench.engineOptions(48).maxRunningSeqs());
        bench = new BenchCommand();
        new CommandLine(bench).parseArgs("--model", "m", "--batch", "1,48,3", "--max-num-seqs", "16");
        assertEquals(16, bench.engineOptions(48).maxRunningSeqs());
    }
}
