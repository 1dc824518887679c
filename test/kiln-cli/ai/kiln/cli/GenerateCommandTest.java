package ai.kiln.cli;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.kiln.testing.Fixtures;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * {@code kiln generate} in process: the batch mode and the single-prompt mode reproduce the
 * Hugging Face greedy tokens of every fixture model; bad input gives one line naming the problem
 * and exit code 1 or 2.
 */
class GenerateCommandTest {

    static final ObjectMapper JSON = new ObjectMapper();

    @TempDir
    Path dir;

    /** Exit code, stdout and stderr of one run. */
    record Run(int exitCode, String out, String err) {
    }

    static synchronized Run kiln(String... args) {
        PrintStream out = System.out;
        PrintStream err = System.err;
        ByteArrayOutputStream outBytes = new ByteArrayOutputStream();
        ByteArrayOutputStream errBytes = new ByteArrayOutputStream();
        try {
            System.setOut(new PrintStream(outBytes, true, StandardCharsets.UTF_8));
            System.setErr(new PrintStream(errBytes, true, StandardCharsets.UTF_8));
            int code = KilnCli.execute(args);
            return new Run(code, outBytes.toString(StandardCharsets.UTF_8), errBytes.toString(StandardCharsets.UTF_8));
        } finally {
            System.setOut(out);
            System.setErr(err);
        }
    }

    static String[] args(Path model, String... rest) {
        List<String> all = new ArrayList<>(List.of("generate", "--model", model.toString(), "--device", "cpu", "--threads", "2",
                "--kv-cache-mib", "16"));
        all.addAll(Arrays.asList(rest));
        return all.toArray(String[]::new);
    }

    static int[] ints(JsonNode array) {
        return Fixtures.ints(array);
    }

    static List<Fixtures.Model> fixtures() {
        return Fixtures.all();
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("fixtures")
    void batchModeReproducesTheReferenceGreedyTokens(Fixtures.Model fixture) throws Exception {
        Path input = dir.resolve("prompts.jsonl");
        StringBuilder lines = new StringBuilder();
        for (Fixtures.Record record : fixture.records()) {
            lines.append(JSON.writeValueAsString(java.util.Map.of("prompt", record.prompt(), "max_tokens", 32,
                    "temperature", 0))).append('\n');
        }
        Files.writeString(input, lines);
        Run run = kiln(args(fixture.dir(), "--input", input.toString(), "--json", "--ignore-eos"));
        assertEquals(0, run.exitCode(), run.err());
        String[] outLines = run.out().strip().split("\n");
        assertEquals(fixture.records().size(), outLines.length, run.out());
        for (int i = 0; i < outLines.length; i++) {
            Fixtures.Record record = fixture.records().get(i);
            JsonNode line = JSON.readTree(outLines[i]);
            assertArrayEquals(record.promptTokenIds(), ints(line.get("prompt_token_ids")), "line " + (i + 1));
            assertArrayEquals(record.greedyTokenIds(), ints(line.get("token_ids")), "line " + (i + 1));
            assertEquals("length", line.get("finish_reason").asText());
            assertTrue(line.get("text").isTextual());
        }
    }

    @Test
    void singlePromptJsonAndStreamedText() throws Exception {
        Fixtures.Model fixture = Fixtures.named("qwen2-bias-tied");
        Fixtures.Record record = fixture.records().get(1);
        Run json = kiln(args(fixture.dir(), "--prompt", record.prompt(), "--temperature", "0", "--max-tokens", "32",
                "--ignore-eos", "--json"));
        assertEquals(0, json.exitCode(), json.err());
        JsonNode result = JSON.readTree(json.out());
        assertArrayEquals(record.promptTokenIds(), ints(result.get("prompt_token_ids")));
        assertArrayEquals(record.greedyTokenIds(), ints(result.get("token_ids")));
        assertEquals("length", result.get("finish_reason").asText());
        List<String> fields = new ArrayList<>();
        result.fieldNames().forEachRemaining(fields::add);
        assertEquals(List.of("prompt_token_ids", "token_ids", "text", "finish_reason"), fields);

        Run streamed = kiln(args(fixture.dir(), "--prompt", record.prompt(), "--temperature", "0", "--max-tokens", "32",
                "--ignore-eos"));
        assertEquals(0, streamed.exitCode(), streamed.err());
        assertEquals(result.get("text").asText() + System.lineSeparator(), streamed.out());
    }

    @Test
    void chatMessagesUseTheTemplate() throws Exception {
        Fixtures.Model fixture = Fixtures.named("llama3-gqa");
        Path chat = dir.resolve("chat.json");
        Files.writeString(chat, "[{\"role\": \"user\", \"content\": \"Hello world\"}]");
        Run run = kiln(args(fixture.dir(), "--chat", chat.toString(), "--temperature", "0", "--max-tokens", "4", "--json"));
        assertEquals(0, run.exitCode(), run.err());
        JsonNode result = JSON.readTree(run.out());
        assertTrue(result.get("prompt_token_ids").size() > 2);
    }

    /** A run that must fail with one line on stderr and no stack trace. */
    static void assertOneLineError(Run run, int exitCode, String expected) {
        assertEquals(exitCode, run.exitCode(), run.err());
        String err = run.err().strip();
        assertFalse(err.contains("\n"), "more than one line: " + err);
        assertFalse(err.contains("Exception") || err.contains("\tat "), err);
        assertEquals(expected, err);
        assertEquals("", run.out());
    }

    @Test
    void badOptionsAndInputAreNamedOnOneLine() throws Exception {
        Path model = Fixtures.named("llama3-gqa").dir();
        assertOneLineError(kiln(args(dir.resolve("none"), "--prompt", "x")), 2,
                "kiln generate: --model: " + dir.resolve("none") + " is neither a directory, a Hugging Face Hub id (ORG/NAME) nor an http(s):// URL");
        assertOneLineError(kiln(args(dir, "--prompt", "x")), 2, "kiln generate: --model: " + dir + " has no config.json");
        assertOneLineError(kiln(args(model, "--prompt", "x", "--temperature", "-1")), 2,
                "kiln generate: --temperature must be a finite number >= 0, got -1.0");
        assertOneLineError(kiln(args(model, "--prompt", "x", "--top-p", "0")), 2,
                "kiln generate: --top-p must be in (0, 1], got 0.0");
        assertOneLineError(kiln(args(model)), 2, "kiln generate: give exactly one of --prompt, --chat and --input");
        assertOneLineError(kiln(args(model, "--prompt", "x", "--block-size", "0")), 2,
                "kiln generate: blockSize must be in [1, 1024], got 0");

        Path input = dir.resolve("in.jsonl");
        Files.writeString(input, "{\"prompt\": \"a\"}\n{\"prompt\": \"b\", \n");
        assertOneLineError(kiln(args(model, "--input", input.toString(), "--json")), 1,
                "kiln generate: in.jsonl line 2: not valid JSON (Unexpected end-of-input within/between Object entries)");
        Files.writeString(input, "{\"prompt\": \"a\"}\n\n{\"prompt\": \"b\", \"temperature\": \"hot\"}\n");
        // The line's fields are read as the server reads them, so the message is the server's.
        assertOneLineError(kiln(args(model, "--input", input.toString(), "--json")), 1,
                "kiln generate: in.jsonl line 3: 'temperature' must be a number, got a string");
        Files.writeString(input, "{\"prompt\": \"a\", \"top_k\": -5}\n");
        assertOneLineError(kiln(args(model, "--input", input.toString(), "--json")), 1,
                "kiln generate: in.jsonl line 1: top_k must be -1 or 0 (off) or >= 1, got -5");
        Files.writeString(input, "{\"max_tokens\": 3}\n");
        assertOneLineError(kiln(args(model, "--input", input.toString(), "--json")), 1,
                "kiln generate: in.jsonl line 1: 'prompt' must be a string and is missing");
        Files.writeString(input, "{\"prompt\": \"a\", \"temprature\": 0}\n");
        assertOneLineError(kiln(args(model, "--input", input.toString(), "--json")), 1,
                "kiln generate: in.jsonl line 1: unknown field 'temprature' (known: ignore_eos, max_tokens, min_p,"
                        + " prompt, seed, stop, temperature, top_k, top_p)");
        Files.writeString(input, "[1, 2]\n");
        assertOneLineError(kiln(args(model, "--input", input.toString(), "--json")), 1,
                "kiln generate: in.jsonl line 1: expected a JSON object, got ARRAY");
        Files.writeString(input, "{\"prompt\": \"a\", \"max_tokens\": 2}\n{\"prompt\": \"b\", \"max_tokens\": 600}\n");
        assertOneLineError(kiln(args(model, "--input", input.toString(), "--json")), 1,
                "kiln generate: in.jsonl line 2: the prompt (2 tokens) + max_tokens (600) = 602 tokens exceeds the"
                        + " model's context of 512 tokens");
    }
}
