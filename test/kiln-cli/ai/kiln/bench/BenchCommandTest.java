package ai.kiln.bench;

import static org.junit.jupiter.api.Assertions.assertEquals;
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

/** {@code kiln bench} on the CPU with a fixture model: greedy by default, sampled when told, and the line says which. */
class BenchCommandTest {

    static final ObjectMapper JSON = new ObjectMapper();

    record Run(int exitCode, List<JsonNode> lines, String err) {
    }

    static Run bench(String... extra) throws Exception {
        List<String> args = new ArrayList<>(List.of("bench", "--model", Fixtures.named("llama3-gqa").dir().toString(),
                "--device", "cpu", "--batch", "1,3", "--prompt-len", "8", "--output-len", "6", "--repeat", "1",
                "--max-model-len", "64", "--max-batched-tokens", "64"));
        args.addAll(List.of(extra));
        StringWriter out = new StringWriter();
        StringWriter err = new StringWriter();
        CommandLine cli = new CommandLine(new KilnCli());
        cli.setOut(new PrintWriter(out, true));
        cli.setErr(new PrintWriter(err, true));
        int code = cli.execute(args.toArray(String[]::new));
        List<JsonNode> lines = new ArrayList<>();
        for (String line : out.toString().split("\n")) {
            if (!line.isBlank()) {
                lines.add(JSON.readTree(line));
            }
        }
        return new Run(code, lines, err.toString());
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
