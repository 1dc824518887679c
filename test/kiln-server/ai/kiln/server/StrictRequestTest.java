package ai.kiln.server;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.util.HashMap;
import java.util.Locale;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Bodies and requests that a lenient reader would accept are refused: data after the JSON value,
 * malformed UTF-8, transfer codings the server does not implement; and every answer, Jetty's own
 * included, is in the error JSON shape. Raw sockets, so that the bytes sent are exactly these.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class StrictRequestTest {

    static final String PREFIX = "{\"model\": \"llama3-gqa\", \"max_tokens\": 4, \"temperature\": 0, \"prompt\": \"";
    static final String SUFFIX = "\"}";

    ServerHarness harness;

    @BeforeAll
    void start() {
        harness = ServerHarness.start();
    }

    @AfterAll
    void stop() throws Exception {
        harness.close();
    }

    @AfterEach
    void serverStillAnswers() throws IOException {
        Raw r = post("/v1/completions", bytes(PREFIX + "Hello" + SUFFIX));
        assertEquals(200, r.status, r.text());
    }

    static Stream<Arguments> notStrictJson() {
        String good = PREFIX + "Hello" + SUFFIX;
        return Stream.of(
                // name, body, words the message must hold
                Arguments.of("trailing word", bytes(good + " trailing"), new String[] {"after the JSON value"}),
                Arguments.of("two objects", bytes(good + good), new String[] {"after the JSON value"}),
                Arguments.of("trailing bracket", bytes(good + "}"), new String[] {"after the JSON value"}),
                Arguments.of("overlong slash", utf8Case(0x61, 0xC0, 0xAF, 0x62), new String[] {"UTF-8"}),
                Arguments.of("overlong three-byte", utf8Case(0xE0, 0x80, 0xAF), new String[] {"UTF-8"}),
                Arguments.of("encoded surrogate", utf8Case(0xED, 0xA0, 0x80), new String[] {"UTF-8"}),
                Arguments.of("invalid byte", utf8Case(0x61, 0xFF), new String[] {"UTF-8"}),
                Arguments.of("cut sequence", utf8Case(0xE2, 0x82), new String[] {"UTF-8"}),
                Arguments.of("escaped lone surrogate", bytes(PREFIX + "a\\ud800b" + SUFFIX),
                        new String[] {"surrogate"}),
                Arguments.of("escaped low surrogate first", bytes(PREFIX + "\\udc00\\ud800" + SUFFIX),
                        new String[] {"surrogate"}));
    }

    static byte[] utf8Case(int... raw) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        out.writeBytes(bytes(PREFIX));
        for (int b : raw) {
            out.write(b);
        }
        out.writeBytes(bytes(SUFFIX));
        return out.toByteArray();
    }

    @ParameterizedTest(name = "[{index}] {0}")
    @MethodSource("notStrictJson")
    void bodyThatIsNotStrictJsonIs400(String name, byte[] body, String[] words) throws IOException {
        assertError(post("/v1/completions", body), 400, "invalid_json", words);
        assertError(post("/v1/chat/completions", body), 400, "invalid_json", words);
    }

    @Test
    void wellFormedUtf8AndSurrogatePairsAreAccepted() throws IOException {
        // Two-, three- and four-byte forms, an escaped surrogate pair, and a leading byte-order mark.
        String text = "caf\u00e9 \u20ac \ud83d\ude00 \\ud83d\\ude00";
        Raw r = post("/v1/completions", bytes(PREFIX + text + SUFFIX));
        assertEquals(200, r.status, r.text());
        byte[] withBom = bytes("\ufeff" + PREFIX + "Hello" + SUFFIX);
        assertEquals(200, post("/v1/completions", withBom).status);
    }

    @Test
    void unimplementedTransferCodingIs501() throws IOException {
        String body = PREFIX + "Hello" + SUFFIX;
        String chunked = Integer.toHexString(body.length()) + "\r\n" + body + "\r\n0\r\n\r\n";
        for (String coding : new String[] {"gzip, chunked", "deflate, chunked", "identity, chunked"}) {
            Raw r = send("POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                    + "Transfer-Encoding: " + coding + "\r\nConnection: close\r\n\r\n" + chunked);
            assertError(r, 501, "unsupported_transfer_encoding", "Transfer-Encoding", "chunked");
        }
        // Plain chunked is the one coding implemented.
        Raw ok = send("POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                + "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n" + chunked);
        assertEquals(200, ok.status, ok.text());
    }

    @Test
    void jettysOwnErrorsCarryTheErrorBody() throws IOException {
        // A CONNECT Jetty lets through is the server's to refuse; one without a Host Jetty refuses itself.
        assertError(send("CONNECT 127.0.0.1:443 HTTP/1.1\r\nHost: 127.0.0.1:443\r\n\r\n"), 501,
                "unsupported_method", "CONNECT");
        assertError(send("CONNECT 127.0.0.1:443 HTTP/1.1\r\n\r\n"), 400, null);
        assertError(send("CONNECT /v1/completions HTTP/1.1\r\nHost: x\r\n\r\n"), 400, null);
        assertError(send("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"), 426, null);
        assertError(send("DELETE /%zz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"), 400, null);
        assertError(send("GET /health HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\nConnection: close\r\n\r\n"),
                400, null);
        assertError(send("GET /health HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"),
                400, null);
        assertError(send("GET /health HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n"), 400, null);
        assertError(send("GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + "a".repeat(64 << 10) + "\r\n\r\n"),
                431, null);
        // NOTE: Jetty answers a request line past its header buffer with 414 when it has read the
        // line before the buffer is full, else with 431 (which of the two depends on how the bytes
        // arrive, so on a loaded machine either): each is the error body, which is what counts.
        Raw longUri = send("GET /" + "a".repeat(64 << 10) + " HTTP/1.1\r\nHost: x\r\n\r\n");
        assertError(longUri, longUri.status == 431 ? 431 : 414, null);
        assertError(send("GET /health HTTP/1.1\r\n\r\n"), 400, null);
        assertError(send("GET /health HTTP/9.9\r\nHost: x\r\n\r\n"), 505, null);
        assertError(send("BR@KEN / HTTP/1.1\r\nHost: x\r\n\r\n"), 400, null);
        assertError(send("GET /%zz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"), 400, null);
        assertError(send("GET /../etc/passwd HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"), 400, null);
    }

    // ---- raw HTTP -----------------------------------------------------------------------------

    record Raw(int status, Map<String, String> headers, byte[] body) {
        String text() {
            return status + " " + headers + " " + new String(body, StandardCharsets.UTF_8);
        }
    }

    static byte[] bytes(String s) {
        return s.getBytes(StandardCharsets.UTF_8);
    }

    Raw post(String path, byte[] body) throws IOException {
        ByteArrayOutputStream request = new ByteArrayOutputStream();
        request.writeBytes(bytes("POST " + path + " HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                + "Content-Length: " + body.length + "\r\nConnection: close\r\n\r\n"));
        request.writeBytes(body);
        return send(request.toByteArray());
    }

    Raw send(String request) throws IOException {
        return send(bytes(request));
    }

    /** Sends the bytes as they are and reads one response (to its length, or to the close). */
    Raw send(byte[] request) throws IOException {
        try (Socket socket = new Socket()) {
            socket.connect(new InetSocketAddress("127.0.0.1", harness.server.port()), 10_000);
            socket.setSoTimeout(30_000);
            OutputStream out = socket.getOutputStream();
            out.write(request);
            out.flush();
            InputStream in = socket.getInputStream();
            String statusLine = line(in);
            assertTrue(statusLine.startsWith("HTTP/1.1 "), "status line: " + statusLine);
            int status = Integer.parseInt(statusLine.substring(9, 12));
            Map<String, String> headers = new HashMap<>();
            for (String h = line(in); !h.isEmpty(); h = line(in)) {
                int colon = h.indexOf(':');
                headers.put(h.substring(0, colon).trim().toLowerCase(Locale.ROOT), h.substring(colon + 1).trim());
            }
            byte[] body;
            if (headers.containsKey("content-length")) {
                body = in.readNBytes(Integer.parseInt(headers.get("content-length")));
            } else if ("chunked".equalsIgnoreCase(headers.get("transfer-encoding"))) {
                ByteArrayOutputStream b = new ByteArrayOutputStream();
                for (int size = Integer.parseInt(line(in), 16); size > 0; size = Integer.parseInt(line(in), 16)) {
                    b.writeBytes(in.readNBytes(size));
                    line(in);
                }
                body = b.toByteArray();
            } else {
                body = in.readAllBytes();
            }
            return new Raw(status, headers, body);
        }
    }

    private static String line(InputStream in) throws IOException {
        ByteArrayOutputStream b = new ByteArrayOutputStream();
        int c;
        while ((c = in.read()) >= 0 && c != '\n') {
            if (c != '\r') {
                b.write(c);
            }
        }
        return b.toString(StandardCharsets.ISO_8859_1);
    }

    static JsonNode assertError(Raw r, int status, String code, String... words) {
        assertEquals(status, r.status, r.text());
        assertTrue(r.headers.getOrDefault("content-type", "").startsWith("application/json"), r.text());
        JsonNode root = ServerHarness.json(new String(r.body, StandardCharsets.UTF_8));
        assertEquals(1, root.size(), r.text());
        JsonNode error = root.get("error");
        assertNotNull(error, r.text());
        assertEquals(4, error.size(), r.text());
        assertTrue(error.get("message").isTextual() && !error.get("message").asText().isBlank(), r.text());
        assertTrue(error.get("type").isTextual(), r.text());
        if (code != null) {
            assertEquals(code, error.get("code").asText(), r.text());
        }
        for (String word : words) {
            assertTrue(error.get("message").asText().contains(word), "'" + word + "' missing in " + r.text());
        }
        return error;
    }
}
