package ai.kiln.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.File;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;

/**
 * {@code kiln chat} at a real terminal: a JVM of its own under util-linux {@code script}, which
 * gives it a pseudo-terminal and passes on what the test types. It prompts with {@code >>> },
 * streams a reply, and Ctrl-C during a reply stops it and comes back to the prompt instead of
 * ending the program; at the prompt Ctrl-C prints a hint; /exit leaves with 0.
 *
 * <p>The fixture model writes a 200-token reply faster than a test could type Ctrl-C into it, so
 * the reply is held back with the terminal's own flow control: Ctrl-S (XOFF) stops the terminal's
 * output and the chat blocks writing the first piece of its reply; SIGINT comes while it is
 * blocked; Ctrl-Q (XON) lets it go on, and it must show nothing more of that reply. The SIGINT is
 * sent with kill rather than typed: Linux restarts stopped output when the terminal reads Ctrl-C,
 * which would let the reply run on before the signal's handler ran. At the prompt, Ctrl-C is typed.
 */
class ChatTerminalTest {

    static final String CTRL_C = "\u0003";
    static final String XOFF = "\u0013";
    static final String XON = "\u0011";
    static final long WAIT_SECONDS = 60;

    /** What the terminal showed, read as it comes (as Latin-1: one char per byte, so markers are found in any text). */
    static final class Screen {
        private final StringBuffer text = new StringBuffer();

        Screen(InputStream terminal) {
            Thread reader = new Thread(() -> {
                byte[] buffer = new byte[4096];
                try {
                    for (int n; (n = terminal.read(buffer)) >= 0;) {
                        text.append(new String(buffer, 0, n, StandardCharsets.ISO_8859_1));
                    }
                } catch (IOException e) {
                    text.append("\n[reading the terminal failed: ").append(e).append(']');
                }
            }, "chat-terminal-screen");
            reader.setDaemon(true);
            reader.start();
        }

        String text() {
            return text.toString();
        }

        int count(String part) {
            return ChatSessionTest.countOf(text(), part);
        }

        /** Waits until {@code part} has been shown {@code times} times in all. */
        void await(String part, int times) throws InterruptedException {
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(WAIT_SECONDS);
            while (count(part) < times) {
                if (System.nanoTime() > deadline) {
                    throw new AssertionError("the terminal did not show '" + part + "' " + times + " times; it showed:\n"
                            + text());
                }
                Thread.sleep(20);
            }
        }
    }

    static boolean onPath(String program) {
        String path = System.getenv("PATH");
        return path != null && Stream.of(path.split(File.pathSeparator))
                .anyMatch(dir -> !dir.isEmpty() && Files.isExecutable(Path.of(dir, program)));
    }

    static String shellQuoted(String word) {
        return "'" + word.replace("'", "'\\''") + "'";
    }

    @Test
    void ctrlCStopsAReplyAndComesBackToThePrompt() throws Exception {
        assumeTrue(onPath("script"), "util-linux script is not installed");
        // This JVM's own class path has kiln-cli and everything it needs; no packaged jars are needed.
        String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
        List<String> chat = List.of(java, "-cp", System.getProperty("java.class.path"), KilnCli.class.getName(), "chat",
                "--model", ChatCommandTest.MODEL.toString(), "--device", "cpu", "--threads", "2", "--kv-cache-mib", "16",
                "--temperature", "0", "--max-tokens", "200");
        String command = "exec " + String.join(" ", chat.stream().map(ChatTerminalTest::shellQuoted).toList());
        // -e: script's exit status is the chat's; the typescript goes to /dev/null, the screen to stdout.
        Process process = new ProcessBuilder("script", "-q", "-e", "-c", command, "/dev/null")
                .redirectErrorStream(true).start();
        Screen screen = new Screen(process.getInputStream());
        OutputStream keyboard = process.getOutputStream();
        try {
            screen.await(ChatSession.PROMPT, 1);
            assertTrue(screen.text().contains("/help for help"), screen.text());

            // Ask with the terminal's output stopped, interrupt while the reply waits to be shown, resume.
            int mark = screen.text().length();
            type(keyboard, "Tell me a story\n" + XOFF);
            Thread.sleep(1000);
            interrupt(chatProcess(process));
            Thread.sleep(300);
            type(keyboard, XON);
            screen.await("(stopped; what was shown stays in the conversation)", 1);
            screen.await(ChatSession.PROMPT, 2);
            String stoppedReply = after(screen.text(), mark, "(stopped;");
            assertTrue(process.isAlive(), "Ctrl-C during a reply does not end the program");

            mark = screen.text().length();
            type(keyboard, "Hello\n");
            screen.await(ChatSession.PROMPT, 3);
            String wholeReply = after(screen.text(), mark, ChatSession.PROMPT);
            assertTrue(wholeReply.strip().length() > 100, "a 200-token reply streams: " + wholeReply);
            assertFalse(wholeReply.contains("\u001b"), "control characters are escaped on a terminal");
            assertTrue(stoppedReply.strip().length() < wholeReply.strip().length() / 2,
                    "the stopped reply shows no more than its first piece: " + stoppedReply);

            // At the prompt Ctrl-C, typed, hints; the chat goes on.
            type(keyboard, CTRL_C);
            screen.await("(Ctrl-C again, Ctrl-D or /bye to leave)", 1);
            screen.await(ChatSession.PROMPT, 4);
            assertTrue(process.isAlive(), "one Ctrl-C at the prompt does not end the program");

            type(keyboard, "/exit\n");
            assertTrue(process.waitFor(WAIT_SECONDS, TimeUnit.SECONDS), "/exit ends the program:\n" + screen.text());
            assertEquals(0, process.exitValue(), screen.text());
        } finally {
            process.destroyForcibly();
        }
    }

    /** The chat's JVM: script's child (the shell exec'd it). */
    static ProcessHandle chatProcess(Process script) {
        return script.toHandle().descendants()
                .filter(p -> p.info().command().map(c -> c.endsWith("/java")).orElse(false)).findFirst()
                .orElseThrow(() -> new AssertionError("no java process under script"));
    }

    /** SIGINT, as Ctrl-C raises it. */
    static void interrupt(ProcessHandle chat) throws IOException, InterruptedException {
        Process kill = new ProcessBuilder("kill", "-INT", Long.toString(chat.pid())).inheritIO().start();
        assertEquals(0, kill.waitFor(), "kill -INT " + chat.pid());
    }

    static void type(OutputStream keyboard, String keys) throws IOException {
        keyboard.write(keys.getBytes(StandardCharsets.UTF_8));
        keyboard.flush();
    }

    /** The text from {@code from} up to the next {@code end}: the echo of what was typed, then the reply. */
    static String after(String text, int from, String end) {
        int to = text.indexOf(end, from);
        assertTrue(to >= 0, "no '" + end + "' after position " + from + " in:\n" + text);
        return text.substring(from, to);
    }
}
