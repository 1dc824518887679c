package ai.kiln.server;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * The official OpenAI Python and Node SDKs against the server (the Java one: kiln-cli's
 * OpenAiSdkTest): test/sdk/openai_sdk_check.py (Python SDK) and test/sdk/openai_sdk_check.mjs
 * (Node SDK) list the models, call tools (required and named;
 * streamed and not) and ask for JSON-schema output, checking each answer's shape, against the
 * llama3-gqa fixture served with the hermes tool-call format.
 *
 * <p>.ci/run installs the SDKs (a Python virtual environment and an npm folder) and names them in
 * KILN_TEST_OPENAI_PYTHON and KILN_TEST_OPENAI_NODE_MODULE; without them a check is skipped,
 * saying so.
 */
@Timeout(value = 300, unit = TimeUnit.SECONDS)
class OpenAiPythonNodeSdkTest {

    static ServerHarness harness;

    @BeforeAll
    static void start() {
        harness = ServerHarness.start(ServerHarness.serverOptions().withToolCallParser("hermes"),
                ServerHarness.engineOptions().build());
    }

    @AfterAll
    static void stop() throws Exception {
        harness.close();
    }

    record Result(int exitCode, String output) {
    }

    static Result run(Map<String, String> env, String... command) throws IOException, InterruptedException {
        ProcessBuilder builder = new ProcessBuilder(command).redirectErrorStream(true);
        builder.environment().putAll(env);
        Process process = builder.start();
        byte[] output = process.getInputStream().readAllBytes();
        if (!process.waitFor(240, TimeUnit.SECONDS)) {
            process.destroyForcibly();
            return new Result(-1, new String(output, StandardCharsets.UTF_8) + "\n(timed out)");
        }
        return new Result(process.exitValue(), new String(output, StandardCharsets.UTF_8));
    }

    static boolean works(Map<String, String> env, String... command) {
        try {
            return run(env, command).exitCode() == 0;
        } catch (IOException e) {
            return false;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return false;
        }
    }

    @Test
    void thePythonSdkCallsToolsAndGetsSchemaOutput() throws Exception {
        String python = System.getenv().getOrDefault("KILN_TEST_OPENAI_PYTHON", "python3");
        boolean available = works(Map.of(), python, "-c", "import openai");
        if (!available) {
            System.out.println("OpenAiPythonNodeSdkTest: no OpenAI Python SDK for " + python
                    + " (set KILN_TEST_OPENAI_PYTHON to a python with `openai` installed, as .ci/run does)");
        }
        assumeTrue(available, "the OpenAI Python SDK is installed");
        Result result = run(Map.of(), python, Path.of("test/sdk/openai_sdk_check.py").toString(), harness.base,
                ServerHarness.MODEL);
        System.out.print(result.output());
        assertEquals(0, result.exitCode(), result.output());
        assertTrue(result.output().contains("all checks passed"), result.output());
    }

    @Test
    void theNodeSdkCallsToolsAndGetsSchemaOutput() throws Exception {
        String module = System.getenv("KILN_TEST_OPENAI_NODE_MODULE");
        boolean available = module != null && Files.isDirectory(Path.of(module)) && works(Map.of(), "node", "--version");
        if (!available) {
            System.out.println("OpenAiPythonNodeSdkTest: no OpenAI Node SDK (set KILN_TEST_OPENAI_NODE_MODULE to its"
                    + " node_modules/openai folder, as .ci/run does)");
        }
        assumeTrue(available, "the OpenAI Node SDK is installed");
        List<String> command = new ArrayList<>(List.of("node", Path.of("test/sdk/openai_sdk_check.mjs").toString(),
                harness.base, ServerHarness.MODEL));
        Result result = run(Map.of("KILN_OPENAI_NODE_MODULE", Path.of(module).toAbsolutePath().toString()),
                command.toArray(String[]::new));
        System.out.print(result.output());
        assertEquals(0, result.exitCode(), result.output());
        assertTrue(result.output().contains("all checks passed"), result.output());
    }
}
