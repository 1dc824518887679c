package ai.kiln.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.kiln.api.Engine;
import ai.kiln.api.EngineOptions;
import ai.kiln.api.GenerateRequest;
import ai.kiln.api.SamplingParams;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.PipedInputStream;
import java.io.PipedOutputStream;
import java.io.PrintWriter;
import java.io.StringReader;
import java.io.StringWriter;
import java.io.Writer;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.BooleanSupplier;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The chat loop's interrupts (Ctrl-C, delivered as {@link ChatSession#interrupt()}): during a reply
 * it stops the reply, whose shown text stays in the conversation, and the loop goes on; at the
 * prompt it prints a hint, and a second one in a row leaves with 0.
 */
class ChatSessionTest {

    static final SamplingParams GREEDY = SamplingParams.builder().temperature(0).maxTokens(200).build();

    static Engine engine;

    @BeforeAll
    static void loadEngine() {
        engine = Engine.create(ChatCommandTest.MODEL,
                EngineOptions.builder().device("cpu").threads(2).kvCacheBytes(16L << 20).build());
    }

    @AfterAll
    static void closeEngine() {
        engine.close();
    }

    static String greedyReply(List<Map<String, Object>> messages) {
        return engine.generate(GenerateRequest.ofChat(messages, GREEDY)).text();
    }

    /** A writer that runs {@code onFirstText} once, after the first non-empty text written to it. */
    static final class FirstTextTrigger extends Writer {
        final StringBuilder text = new StringBuilder();
        final Runnable onFirstText;
        String textAtTrigger;

        FirstTextTrigger(Runnable onFirstText) {
            this.onFirstText = onFirstText;
        }

        @Override
        public void write(char[] chars, int offset, int length) {
            text.append(chars, offset, length);
            if (textAtTrigger == null && length > 0) {
                textAtTrigger = text.toString();
                onFirstText.run();
            }
        }

        @Override
        public void flush() {
        }

        @Override
        public void close() {
        }
    }

    @Test
    void anInterruptStopsTheReplyKeepsWhatWasShownAndTheChatGoesOn() {
        String full = greedyReply(List.of(ChatCommandTest.user("Tell me a story")));
        AtomicReference<ChatSession> session = new AtomicReference<>();
        FirstTextTrigger out = new FirstTextTrigger(() -> session.get().interrupt());
        StringWriter err = new StringWriter();
        session.set(new ChatSession(engine, GREEDY, null, new BufferedReader(new StringReader("Tell me a story\nGo on\n")),
                new PrintWriter(out), new PrintWriter(err), false, false));

        assertEquals(0, session.get().run(), err.toString());

        String shown = out.textAtTrigger;
        assertTrue(shown.length() < full.length() && full.startsWith(shown),
                "the reply stops after its first text: " + shown.length() + " of " + full.length() + " chars");
        assertTrue(err.toString().contains("(stopped; what was shown stays in the conversation)"), err.toString());
        // The second answer follows the stopped reply as it was shown.
        String second = greedyReply(List.of(ChatCommandTest.user("Tell me a story"), ChatCommandTest.assistant(shown),
                ChatCommandTest.user("Go on")));
        assertEquals(shown + "\n" + second + "\n", out.text.toString());
    }

    @Test
    void anInterruptAtThePromptHintsAndASecondOneLeaves() throws Exception {
        Typing typing = startTyping();
        PipedOutputStream keyboard = typing.keyboard();
        StringWriter out = typing.out();
        StringWriter err = typing.err();
        ChatSession session = typing.session();
        CompletableFuture<Integer> exit = typing.exit();
        awaitTrue(() -> err.toString().contains(ChatSession.PROMPT), err);

        session.interrupt();
        awaitTrue(() -> err.toString().contains("(Ctrl-C again, Ctrl-D or /bye to leave)"), err);
        assertFalse(exit.isDone(), "one interrupt at the prompt does not leave");

        // A message in between: the next interrupt is a first one again.
        keyboard.write("Hello\n".getBytes(StandardCharsets.UTF_8));
        keyboard.flush();
        awaitTrue(() -> countOf(err.toString(), ChatSession.PROMPT) == 3, err);
        assertEquals(greedyReply(List.of(ChatCommandTest.user("Hello"))) + "\n\n", out.toString());
        session.interrupt();
        awaitTrue(() -> countOf(err.toString(), "(Ctrl-C again") == 2, err);
        assertFalse(exit.isDone(), "an interrupt after a message is a first one");

        session.interrupt();
        assertEquals(0, exit.get(30, TimeUnit.SECONDS));
        keyboard.close();
    }

    @Test
    void anInterruptInsideAMessageOfSeveralLinesDiscardsIt() throws Exception {
        Typing typing = startTyping();
        PipedOutputStream keyboard = typing.keyboard();
        StringWriter out = typing.out();
        StringWriter err = typing.err();
        ChatSession session = typing.session();
        CompletableFuture<Integer> exit = typing.exit();

        keyboard.write("\"\"\"one\n".getBytes(StandardCharsets.UTF_8));
        keyboard.flush();
        awaitTrue(() -> err.toString().contains(ChatSession.CONTINUATION_PROMPT), err);
        session.interrupt();
        awaitTrue(() -> err.toString().contains("(the message was discarded)"), err);
        keyboard.close();

        assertEquals(0, exit.get(30, TimeUnit.SECONDS));
        assertEquals("", out.toString(), "nothing was sent");
    }

    /** A running interactive session (a terminal's), its keyboard a pipe the test writes to. */
    record Typing(PipedOutputStream keyboard, StringWriter out, StringWriter err, ChatSession session,
            CompletableFuture<Integer> exit) {
    }

    Typing startTyping() throws IOException {
        PipedOutputStream keyboard = new PipedOutputStream();
        BufferedReader input = new BufferedReader(new java.io.InputStreamReader(new PipedInputStream(keyboard),
                StandardCharsets.UTF_8));
        StringWriter out = new StringWriter();
        StringWriter err = new StringWriter();
        ChatSession session = new ChatSession(engine, GREEDY, null, input, new PrintWriter(out), new PrintWriter(err),
                true, false);
        return new Typing(keyboard, out, err, session, CompletableFuture.supplyAsync(session::run));
    }

    static int countOf(String text, String part) {
        int count = 0;
        for (int at = text.indexOf(part); at >= 0; at = text.indexOf(part, at + part.length())) {
            count++;
        }
        return count;
    }

    static void awaitTrue(BooleanSupplier condition, StringWriter transcript) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
        while (!condition.getAsBoolean()) {
            if (System.nanoTime() > deadline) {
                throw new AssertionError("timed out; stderr so far: " + transcript);
            }
            Thread.sleep(10);
        }
    }

    @Test
    void controlCharactersBecomeVisibleExceptNewlineAndTab() throws IOException {
        assertEquals("plain text\n\tand more", Terminals.escapeControls("plain text\n\tand more"));
        assertEquals("^[[31mred^[[0m", Terminals.escapeControls("\u001b[31mred\u001b[0m"));
        assertEquals("a^Mb^@c^?d^G", Terminals.escapeControls("a\rb\u0000c\u007fd\u0007"));
        assertEquals("<U+009B>2J ok \u00e9\u20ac", Terminals.escapeControls("\u009b2J ok \u00e9\u20ac"));
    }
}
