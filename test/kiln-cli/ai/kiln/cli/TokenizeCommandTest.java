package ai.kiln.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.io.InputStream;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

/**
 * {@code kiln tokenize} on the real vocabularies: its output matches the Hugging Face fixtures
 * (test/resources/tokenizer), and bad input gives one line naming the problem with exit code 1 or 2.
 */
class TokenizeCommandTest {
    private static final ObjectMapper JSON = new ObjectMapper();

    @TempDir
    Path dir;

    record Run(int exitCode, String out, String err) {
    }

    static Path vocabulary(String name) {
        return Path.of(System.getProperty("kiln.vocab.dir", "target/tokenizer-vocab")).resolve(name);
    }

    static JsonNode fixture(String name) throws IOException {
        try (InputStream in = TokenizeCommandTest.class.getResourceAsStream("/tokenizer/" + name)) {
            return JSON.readTree(in);
        }
    }

    static Run tokenize(String... args) {
        StringWriter out = new StringWriter();
        StringWriter err = new StringWriter();
        CommandLine commandLine = new CommandLine(new TokenizeCommand());
        commandLine.setOut(new PrintWriter(out));
        commandLine.setErr(new PrintWriter(err));
        int code = commandLine.execute(args);
        return new Run(code, out.toString(), err.toString());
    }

    /** The fixture case of a vocabulary for a text and add_special setting. */
    static JsonNode fixtureCase(String vocabulary, String text, boolean addSpecial) throws IOException {
        for (JsonNode c : fixture(vocabulary + ".json").get("cases")) {
            if (c.get("text").textValue().equals(text) && c.get("add_special").booleanValue() == addSpecial) {
                return c;
            }
        }
        throw new AssertionError("no fixture case for " + text);
    }

    @Test
    void textAsJsonMatchesTheReference() throws IOException {
        JsonNode expected = fixtureCase("llama2", "Hello <s> world </s>", true);
        Run run = tokenize("--model", vocabulary("llama2").toString(), "--text", "Hello <s> world </s>", "--add-special", "--json");
        assertEquals(0, run.exitCode(), run.err());
        JsonNode output = JSON.readTree(run.out());
        assertEquals(expected.get("ids"), output.get("ids"));
        assertEquals(expected.get("decoded"), output.get("text"));

        Run plain = tokenize("--model", vocabulary("llama2").toString(), "--text", "Hello <s> world </s>", "--add-special");
        StringBuilder ids = new StringBuilder();
        expected.get("ids").forEach(id -> ids.append(ids.length() == 0 ? "" : " ").append(id.intValue()));
        assertEquals(ids + System.lineSeparator(), plain.out());
    }

    @Test
    void inputLinesMatchTheReference() throws IOException {
        String[] texts = {"Hello, world!", "\u4f60\u597d\uff0c\u4e16\u754c\uff01", "<|begin_of_text|>Hello"};
        StringBuilder lines = new StringBuilder();
        for (int i = 0; i < texts.length; i++) {
            lines.append(JSON.writeValueAsString(java.util.Map.of("text", texts[i], "add_special", i % 2 == 0))).append('\n');
        }
        Path input = Files.writeString(dir.resolve("in.jsonl"), lines.toString());
        Run run = tokenize("--model", vocabulary("qwen3").toString(), "--input", input.toString(), "--json");
        assertEquals(0, run.exitCode(), run.err());
        String[] outputs = run.out().split("\\R");
        assertEquals(texts.length, outputs.length);
        for (int i = 0; i < texts.length; i++) {
            JsonNode expected = fixtureCase("qwen3", texts[i], i % 2 == 0);
            JsonNode output = JSON.readTree(outputs[i]);
            assertEquals(expected.get("ids"), output.get("ids"));
            assertEquals(expected.get("decoded"), output.get("text"));
        }
    }

    @Test
    void chatMatchesTransformers() throws IOException {
        for (String vocabulary : new String[] {"llama3", "qwen3"}) {
            for (JsonNode render : fixture("chat-templates.json").get("templates").get(vocabulary).get("renders")) {
                // Each run loads the tokenizer; three conversations cover system, multi-turn and odd whitespace.
                if (!java.util.Set.of("system-user", "multi-turn", "whitespace-unicode").contains(render.get("name").textValue())) {
                    continue;
                }
                Path chat = Files.writeString(dir.resolve("chat.json"),
                        JSON.writeValueAsString(java.util.Map.of("messages", render.get("messages"))));
                Run run = tokenize("--model", vocabulary(vocabulary).toString(), "--chat", chat.toString(), "--json");
                assertEquals(0, run.exitCode(), run.err());
                JsonNode output = JSON.readTree(run.out());
                assertEquals(render.get("prompt"), output.get("prompt"), render.get("name").textValue());
                assertEquals(render.get("ids"), output.get("ids"), render.get("name").textValue());
            }
        }
    }

    @Test
    void badInputIsReportedWithItsLine() throws IOException {
        Path input = Files.writeString(dir.resolve("bad.jsonl"), "{\"text\": \"ok\"}\n{\"text\": 3}\n");
        Run run = tokenize("--model", vocabulary("llama3").toString(), "--input", input.toString());
        assertEquals(1, run.exitCode());
        assertTrue(run.err().contains("bad.jsonl line 2"), run.err());
        assertEquals("", run.out());

        Path surrogate = Files.writeString(dir.resolve("surrogate.jsonl"), "{\"text\": \"a\\ud800\"}\n");
        Run lone = tokenize("--model", vocabulary("llama3").toString(), "--input", surrogate.toString());
        assertEquals(1, lone.exitCode());
        assertTrue(lone.err().contains("surrogate.jsonl line 1") && lone.err().contains("lone surrogate"), lone.err());
    }

    @Test
    void usageErrorsAndMissingTemplate() throws IOException {
        assertEquals(2, tokenize("--model", vocabulary("llama3").toString()).exitCode());
        assertEquals(2, tokenize("--model", vocabulary("llama3").toString(), "--text", "a", "--input", "b.jsonl").exitCode());
        Run missingDir = tokenize("--model", dir.resolve("nowhere").toString(), "--text", "a");
        assertEquals(2, missingDir.exitCode());
        assertTrue(missingDir.err().contains("is neither a directory, a Hugging Face Hub id"), missingDir.err());

        Path chat = Files.writeString(dir.resolve("chat.json"), "[{\"role\": \"user\", \"content\": \"Hi\"}]");
        Run noTemplate = tokenize("--model", vocabulary("llama2").toString(), "--chat", chat.toString());
        assertEquals(1, noTemplate.exitCode());
        assertTrue(noTemplate.err().contains("has no chat template"), noTemplate.err());

        Run notATokenizer = tokenize("--model", dir.toString(), "--text", "a");
        assertEquals(1, notATokenizer.exitCode());
        assertTrue(notATokenizer.err().contains("tokenizer.json"), notATokenizer.err());
    }
}
