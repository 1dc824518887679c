package ai.kiln.server;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.PrintWriter;
import java.io.StringWriter;
import java.net.URI;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.Map;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

/**
 * The API key: where {@code kiln serve} takes it from (never silently none), and that a server
 * with a key answers 401 to an unauthenticated {@code /v1/} request before saying anything about
 * its routes.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class ApiKeyTest {

    static final String KEY = "sk-kiln-test-key";

    ServerHarness keyed;

    @TempDir
    Path dir;

    @BeforeAll
    void start() {
        keyed = ServerHarness.start(ServerHarness.serverOptions().withApiKey(KEY), ServerHarness.engineOptions().build());
    }

    @AfterAll
    void stop() throws Exception {
        keyed.close();
    }

    // ---- the server ---------------------------------------------------------------------------

    @Test
    void unknownV1RouteAndWrongMethodAre401WithoutTheKey() {
        for (String[] auth : new String[][] {{}, {"Authorization", "Bearer sk-wrong"}}) {
            assertUnauthorized(keyed.get("/v1/engines", auth));
            assertUnauthorized(keyed.get("/v1/completions", auth));
            assertUnauthorized(keyed.post("/v1/models", "{}", auth));
            assertUnauthorized(keyed.post("/v1/nothing/here", "{}", auth));
            HttpRequest.Builder delete = HttpRequest.newBuilder(URI.create(keyed.base + "/v1/chat/completions"))
                    .method("DELETE", HttpRequest.BodyPublishers.noBody());
            for (int i = 0; i < auth.length; i += 2) {
                delete.header(auth[i], auth[i + 1]);
            }
            assertUnauthorized(keyed.send(delete.build()));
        }
    }

    @Test
    void withTheKeyRoutingAnswersAsBefore() {
        String[] auth = {"Authorization", "Bearer " + KEY};
        BadInputTest.assertError(keyed.get("/v1/engines", auth), 404, null, "unknown_url", "/v1/engines");
        HttpResponse<String> r = keyed.get("/v1/completions", auth);
        BadInputTest.assertError(r, 405, null, "method_not_allowed", "POST");
        assertEquals("POST", r.headers().firstValue("Allow").orElse(null));
        // Outside /v1/ nothing needs the key: probes and unknown routes answer as they are.
        BadInputTest.assertError(keyed.get("/v2/completions"), 404, null, "unknown_url");
        BadInputTest.assertError(keyed.post("/health", "{}"), 405, null, "method_not_allowed");
        assertEquals(200, keyed.get("/health").statusCode());
    }

    static void assertUnauthorized(HttpResponse<String> r) {
        BadInputTest.assertError(r, 401, null, "invalid_api_key", "API key");
        assertEquals("Bearer", r.headers().firstValue("WWW-Authenticate").orElse(null));
        assertTrue(r.headers().firstValue("Allow").isEmpty(), "a 401 names no route: " + r.headers());
    }

    // ---- kiln serve's options -----------------------------------------------------------------

    record Run(int exitCode, String err) {
    }

    static ServeCommand parse(String... args) {
        ServeCommand command = new ServeCommand();
        new CommandLine(command).parseArgs(args);
        return command;
    }

    static String key(Map<String, String> env, String... args) {
        return parse(args).apiKey(env);
    }

    static String refusal(Map<String, String> env, String... args) {
        ServeCommand command = parse(args);
        return assertThrows(CommandLine.ParameterException.class, () -> command.apiKey(env)).getMessage();
    }

    @Test
    void emptyKeyIsRefusedAtStart() {
        StringWriter err = new StringWriter();
        CommandLine commandLine = new CommandLine(new ServeCommand());
        commandLine.setErr(new PrintWriter(err));
        // The key is checked before the model is looked at, so no model directory is needed.
        int code = commandLine.execute("--model", dir.resolve("absent").toString(), "--api-key", "");
        assertEquals(2, code, err.toString());
        assertTrue(err.toString().contains("--api-key") && err.toString().contains("empty"), err.toString());
        assertEquals(2, new CommandLine(new ServeCommand()).execute("--model", dir.toString(), "--api-key", ""));

        assertTrue(refusal(Map.of(), "--model", "m", "--api-key", "").contains("empty"));
        assertTrue(refusal(Map.of(), "--model", "m", "--api-key", "  ").contains("empty"));
        assertTrue(refusal(Map.of("KILN_API_KEY", ""), "--model", "m").contains("KILN_API_KEY"));
    }

    @Test
    void keyComesFromTheFlagTheFileOrTheEnvironment() throws Exception {
        assertNull(key(Map.of(), "--model", "m"));
        assertEquals("sk-flag", key(Map.of(), "--model", "m", "--api-key", "sk-flag"));
        assertEquals("sk-env", key(Map.of("KILN_API_KEY", "sk-env"), "--model", "m"));
        assertEquals("sk-flag", key(Map.of("KILN_API_KEY", "sk-env"), "--model", "m", "--api-key", "sk-flag"));
        Path file = Files.writeString(dir.resolve("key"), "sk-file\n");
        assertEquals("sk-file", key(Map.of(), "--model", "m", "--api-key-file", file.toString()));
        assertEquals("sk-file", key(Map.of("KILN_API_KEY", "sk-env"), "--model", "m", "--api-key-file",
                file.toString()));
        Path crlf = Files.writeString(dir.resolve("crlf"), "sk-file\r\n");
        assertEquals("sk-file", key(Map.of(), "--model", "m", "--api-key-file", crlf.toString()));
        Path bare = Files.writeString(dir.resolve("bare"), "sk-bare");
        assertEquals("sk-bare", key(Map.of(), "--model", "m", "--api-key-file", bare.toString()));
    }

    @Test
    void badKeyFileIsAClearError() throws Exception {
        Path empty = Files.writeString(dir.resolve("empty"), "");
        assertTrue(refusal(Map.of(), "--model", "m", "--api-key-file", empty.toString()).contains("empty"));
        Path newline = Files.writeString(dir.resolve("newline"), "\n");
        assertTrue(refusal(Map.of(), "--model", "m", "--api-key-file", newline.toString()).contains("empty"));
        Path twoLines = Files.writeString(dir.resolve("two"), "sk-a\nsk-b\n");
        assertTrue(refusal(Map.of(), "--model", "m", "--api-key-file", twoLines.toString()).contains("one line"));
        String missing = refusal(Map.of(), "--model", "m", "--api-key-file", dir.resolve("absent").toString());
        assertTrue(missing.contains("--api-key-file") && missing.contains("absent"), missing);
        assertTrue(refusal(Map.of(), "--model", "m", "--api-key-file", dir.toString()).contains("--api-key-file"));
        String both = refusal(Map.of(), "--model", "m", "--api-key", "k", "--api-key-file",
                dir.resolve("empty").toString());
        assertTrue(both.contains("--api-key") && both.contains("--api-key-file"), both);
    }

    @Test
    void unreadableKeyFileIsAClearError() throws Exception {
        Path locked = Files.writeString(dir.resolve("locked"), "sk-locked\n");
        Files.setPosixFilePermissions(locked, PosixFilePermissions.fromString("---------"));
        Assumptions.assumeFalse(Files.isReadable(locked), "the user can read any file (root)");
        String message = refusal(Map.of(), "--model", "m", "--api-key-file", locked.toString());
        assertTrue(message.contains("--api-key-file") && message.contains("locked"), message);
    }
}
