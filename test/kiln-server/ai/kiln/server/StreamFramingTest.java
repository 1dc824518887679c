package ai.kiln.server;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.util.Locale;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * A stream's end is marked in HTTP/1.1 even when the connection closes after it: the response is
 * chunked, its last chunk the empty one, so that a stream cut off (the server died, a balancer
 * closed it) is told from a complete one by the framing as well as by {@code data: [DONE]}.
 */
class StreamFramingTest {

    static final String BODY = "{\"model\": \"llama3-gqa\", \"prompt\": \"Hello\", \"max_tokens\": 8,"
            + " \"temperature\": 0, \"ignore_eos\": true, \"stream\": true}";

    static ServerHarness harness;

    @BeforeAll
    static void start() {
        harness = ServerHarness.start();
    }

    @AfterAll
    static void stop() throws Exception {
        harness.close();
    }

    @Test
    void aStreamIsChunkedWhenTheConnectionClosesAfterIt() throws Exception {
        String response = exchange("HTTP/1.1", "Connection: close\r\n");
        String head = head(response);
        assertTrue(head.startsWith("HTTP/1.1 200"), head);
        assertTrue(head.contains("\r\ntransfer-encoding: chunked\r\n"), head);
        assertTrue(head.contains("\r\nconnection: close\r\n"), head);
        assertTrue(response.endsWith("data: [DONE]\n\n\r\n0\r\n\r\n"), "the stream ends with the empty chunk: "
                + response.substring(Math.max(0, response.length() - 40)));
    }

    @Test
    void anHttp10StreamEndsWithTheConnection() throws Exception {
        // HTTP/1.0 has no chunked coding: the end of the connection is the end of the stream.
        String response = exchange("HTTP/1.0", "");
        String head = head(response);
        assertTrue(head.matches("HTTP/1\\.[01] 200 [\\s\\S]*"), head);
        assertFalse(head.contains("transfer-encoding"), head);
        assertTrue(response.endsWith("data: [DONE]\n\n"), response);
    }

    /** Sends the stream request over a socket as {@code version}; the whole answer, read until the server closes. */
    private static String exchange(String version, String extraHeaders) throws Exception {
        byte[] body = BODY.getBytes(StandardCharsets.UTF_8);
        try (Socket socket = new Socket("127.0.0.1", harness.server.port())) {
            socket.setSoTimeout(30_000);
            OutputStream out = socket.getOutputStream();
            out.write(("POST /v1/completions " + version + "\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                    + "Content-Length: " + body.length + "\r\n" + extraHeaders + "\r\n")
                    .getBytes(StandardCharsets.US_ASCII));
            out.write(body);
            out.flush();
            InputStream in = socket.getInputStream();
            ByteArrayOutputStream all = new ByteArrayOutputStream();
            in.transferTo(all);
            return all.toString(StandardCharsets.UTF_8);
        }
    }

    /** The status line and headers, names lower-cased, each line ending in CRLF. */
    private static String head(String response) {
        int end = response.indexOf("\r\n\r\n");
        assertTrue(end > 0, response);
        StringBuilder head = new StringBuilder();
        String[] lines = response.substring(0, end).split("\r\n");
        head.append(lines[0]).append("\r\n");
        for (int i = 1; i < lines.length; i++) {
            int colon = lines[i].indexOf(':');
            head.append(lines[i].substring(0, colon).toLowerCase(Locale.ROOT)).append(lines[i].substring(colon))
                    .append("\r\n");
        }
        return head.toString();
    }
}
