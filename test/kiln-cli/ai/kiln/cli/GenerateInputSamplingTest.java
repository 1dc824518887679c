package ai.kiln.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.kiln.api.GenerateRequest;
import ai.kiln.server.SamplingJson;
import ai.kiln.server.ServerRequestParsing;
import ai.kiln.testing.Fixtures;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import picocli.CommandLine;

/**
 * {@code kiln generate --input} reads a line's sampling fields as the server reads a
 * {@code /v1/completions} body: the same JSON gives the same SamplingParams (the command line's
 * defaults being the server's), and a bad value the same message.
 */
class GenerateInputSamplingTest {

    @TempDir
    Path dir;

    /** The line {@code {"prompt": "p", <sampling>}}, and the server's body with the same fields. */
    static ObjectNode line(String sampling) throws Exception {
        return (ObjectNode) GenerateCommandTest.JSON.readTree("{\"prompt\": \"p\""
                + (sampling.isEmpty() ? "" : ", " + sampling) + "}");
    }

    static ObjectNode serverBody(ObjectNode line) {
        return line.deepCopy().put("model", "m");
    }

    @ParameterizedTest
    @ValueSource(strings = {"", "\"max_tokens\": 5, \"temperature\": 0.5, \"top_p\": 0.9, \"top_k\": 4, \"min_p\": 0.05",
            "\"seed\": 7, \"stop\": [\"a\", \"b\"], \"ignore_eos\": true", "\"stop\": \"x\", \"seed\": 3.0",
            "\"temperature\": 0, \"max_tokens\": null, \"stop\": null", "\"top_k\": -1, \"max_tokens\": 1.0"})
    void theSameLineGivesTheServersParameters(String sampling) throws Exception {
        ObjectNode line = line(sampling);
        Path input = Files.writeString(dir.resolve("in.jsonl"), line + "\n");
        GenerateCommand command = new GenerateCommand();
        new CommandLine(command).parseArgs("--model", "m", "--input", input.toString());
        List<GenerateRequest> requests = command.readInput(input, command.commandLineParams());
        assertEquals(1, requests.size());
        assertEquals(ServerRequestParsing.completionParams(serverBody(line)), requests.get(0).params());
    }

    @ParameterizedTest
    @ValueSource(strings = {"\"temperature\": \"hot\"", "\"temperature\": 2.5", "\"top_p\": 0", "\"top_k\": -5",
            "\"max_tokens\": 0", "\"max_tokens\": 2.5", "\"seed\": \"x\"", "\"seed\": 1.5", "\"stop\": 3",
            "\"stop\": [\"\"]", "\"stop\": [1]", "\"ignore_eos\": \"yes\"", "\"min_p\": 2",
            "\"stop\": [\"1\", \"2\", \"3\", \"4\", \"5\", \"6\", \"7\", \"8\", \"9\", \"10\", \"11\", \"12\", \"13\","
                    + " \"14\", \"15\", \"16\", \"17\"]"})
    void aBadLineGetsTheServersMessage(String sampling) throws Exception {
        ObjectNode line = line(sampling);
        String server = ServerRequestParsing.completionRefusal(serverBody(line));
        assertNotNull(server, "the server takes " + line);
        assertTrue(server.endsWith("."), server);
        Files.writeString(dir.resolve("in.jsonl"), line + "\n");
        GenerateCommandTest.Run run = GenerateCommandTest.kiln(GenerateCommandTest.args(Fixtures.named("llama3-gqa").dir(),
                "--input", dir.resolve("in.jsonl").toString(), "--json"));
        // The same sentence, as one line of the command's errors (which end without a period).
        GenerateCommandTest.assertOneLineError(run, 1,
                "kiln generate: in.jsonl line 1: " + server.substring(0, server.length() - 1));
    }

    @ParameterizedTest
    @ValueSource(strings = {"max_tokens", "temperature", "seed", "top_p", "top_k", "min_p", "stop", "ignore_eos"})
    void everySamplingFieldOfALineIsACompletionsField(String field) {
        assertTrue(GenerateCommand.LINE_FIELDS.contains(field));
        assertTrue(SamplingJson.Endpoint.COMPLETIONS.fields().contains(field), field);
    }
}
