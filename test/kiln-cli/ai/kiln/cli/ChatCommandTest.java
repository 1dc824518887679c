package ai.kiln.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.kiln.api.Engine;
import ai.kiln.api.EngineOptions;
import ai.kiln.api.GenerateRequest;
import ai.kiln.api.SamplingParams;
import ai.kiln.tokenizer.Tokenizer;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;
import picocli.CommandLine.Model.OptionSpec;

/**
 * {@code kiln chat} in process with piped input: each reply is what the engine generates greedily
 * for the conversation so far (so the history is kept and rendered whole), /reset forgets it,
 * /exit and the end of the input end the program with 0, the oldest turns make way when the
 * context fills, and a model that cannot chat fails with one line naming why.
 */
class ChatCommandTest {

    static final Path MODEL = Path.of("test/resources/fixtures/llama3-gqa");
    static final int MAX_TOKENS = 24;

    static Engine engine;

    @TempDir
    Path dir;

    @BeforeAll
    static void loadEngine() {
        engine = Engine.create(MODEL, EngineOptions.builder().device("cpu").threads(2).kvCacheBytes(16L << 20).build());
    }

    @AfterAll
    static void closeEngine() {
        engine.close();
    }

    /** Exit code, stdout and stderr of one run. */
    record Run(int exitCode, String out, String err) {
    }

    /** Runs {@code kiln chat} on piped {@code input}, its output to a terminal or not. */
    static Run chat(String input, boolean outputToTerminal, String... args) {
        StringWriter out = new StringWriter();
        StringWriter err = new StringWriter();
        ChatCommand command = new ChatCommand(new ByteArrayInputStream(input.getBytes(StandardCharsets.UTF_8)), false,
                outputToTerminal);
        CommandLine commandLine = new CommandLine(command);
        commandLine.setOut(new PrintWriter(out));
        commandLine.setErr(new PrintWriter(err));
        List<String> all = new ArrayList<>(List.of("--device", "cpu", "--threads", "2", "--kv-cache-mib", "16",
                "--temperature", "0"));
        all.addAll(Arrays.asList(args));
        if (!all.contains("--max-tokens")) {
            all.addAll(List.of("--max-tokens", Integer.toString(MAX_TOKENS)));
        }
        if (!all.contains("--model")) {
            all.addAll(List.of("--model", MODEL.toString()));
        }
        int code = commandLine.execute(all.toArray(String[]::new));
        return new Run(code, out.toString(), err.toString());
    }

    static Run chat(String input, String... args) {
        return chat(input, false, args);
    }

    /** What the engine generates greedily for these messages, as kiln chat asks for it. */
    static String greedyReply(List<Map<String, Object>> messages) {
        SamplingParams params = SamplingParams.builder().temperature(0).topP(0.95).maxTokens(MAX_TOKENS).build();
        return engine.generate(GenerateRequest.ofChat(messages, params)).text();
    }

    static Map<String, Object> user(String content) {
        return ChatHistory.message("user", content);
    }

    static Map<String, Object> assistant(String content) {
        return ChatHistory.message("assistant", content);
    }

    @Test
    void eachReplyAnswersTheWholeConversationSoFar() {
        String first = greedyReply(List.of(user("Hello")));
        String second = greedyReply(List.of(user("Hello"), assistant(first), user("How are you?")));
        assertFalse(first.isEmpty());
        // The second answer depends on the first turn: else this test could not tell a kept history from none.
        assertFalse(second.equals(greedyReply(List.of(user("How are you?")))));

        Run run = chat("Hello\nHow are you?\n");

        assertEquals(0, run.exitCode(), run.err());
        assertEquals(first + "\n" + second + "\n", run.out());
        assertFalse(run.out().contains(ChatSession.PROMPT), "no prompt without a terminal");
    }

    @Test
    void resetForgetsTheConversation() {
        String first = greedyReply(List.of(user("Hello")));

        Run run = chat("Hello\n/reset\nHello\n");

        assertEquals(0, run.exitCode(), run.err());
        assertEquals(first + "\n" + first + "\n", run.out());
    }

    @Test
    void exitAndByeEndTheProgramAndTheRestIsNotRead() {
        String first = greedyReply(List.of(user("Hello")));
        for (String command : List.of("/exit", "/bye")) {
            Run run = chat("Hello\n" + command + "\nHow are you?\n");
            assertEquals(0, run.exitCode(), run.err());
            assertEquals(first + "\n", run.out(), command);
        }
    }

    @Test
    void theEndOfTheInputEndsTheProgramWithZero() {
        Run empty = chat("");
        assertEquals(0, empty.exitCode(), empty.err());
        assertEquals("", empty.out());

        // A last line without a newline is still a message; blank lines are none.
        Run unterminated = chat("\n   \nHello");
        assertEquals(0, unterminated.exitCode(), unterminated.err());
        assertEquals(greedyReply(List.of(user("Hello"))) + "\n", unterminated.out());
    }

    @Test
    void theSystemPromptComesFirstAndSurvivesReset() {
        String first = greedyReply(List.of(ChatHistory.message("system", "Be brief."), user("Hello")));

        Run run = chat("Hello\n/reset\nHello\n", "--system", "Be brief.");

        assertEquals(0, run.exitCode(), run.err());
        assertEquals(first + "\n" + first + "\n", run.out());
        assertFalse(first.equals(greedyReply(List.of(user("Hello")))), "the system prompt changes the answer");
    }

    @Test
    void aTemplateThatRefusesSystemPromptsFailsAtTheStart() throws IOException {
        Path model = copyOfTheModel();
        Files.writeString(model.resolve("chat_template.jinja"), "{% if messages[0]['role'] == 'system' %}"
                + "{{ raise_exception('System role not supported') }}{% endif %}"
                + Files.readString(MODEL.resolve("chat_template.jinja")));

        Run refused = chat("Hello\n", "--model", model.toString(), "--system", "Be brief.");
        assertEquals(1, refused.exitCode());
        assertEquals("", refused.out());
        assertTrue(refused.err().startsWith("kiln chat: --system: the model's chat template refuses a system prompt"),
                refused.err());
        assertTrue(refused.err().contains("System role not supported"), refused.err());

        // Without --system the same model chats.
        Run accepted = chat("Hello\n", "--model", model.toString());
        assertEquals(0, accepted.exitCode(), accepted.err());
    }

    @Test
    void aModelWithoutAChatTemplateFailsAtTheStart() throws IOException {
        Path model = copyOfTheModel();
        Files.delete(model.resolve("chat_template.jinja"));

        Run run = chat("Hello\n", "--model", model.toString());

        assertEquals(1, run.exitCode());
        assertTrue(run.err().startsWith("kiln chat: " + model + " has no chat template"), run.err());
    }

    @Test
    void badOptionsAreUsageErrors() {
        Run topP = chat("Hello\n", "--top-p", "0");
        assertEquals(2, topP.exitCode());
        assertTrue(topP.err().startsWith("kiln chat: --top-p must be in (0, 1]"), topP.err());

        Run tooLong = chat("Hello\n", "--max-model-len", "64", "--max-tokens", "64");
        assertEquals(2, tooLong.exitCode());
        assertTrue(tooLong.err().startsWith("kiln chat: --max-tokens 64 leaves no room for the conversation in the"
                + " context of 64 tokens"), tooLong.err());

        Run noModel = chat("Hello\n", "--model", dir.resolve("missing").toString());
        assertEquals(2, noModel.exitCode());
        assertTrue(noModel.err().contains("is neither a directory, a Hugging Face Hub id"), noModel.err());
    }

    @Test
    void theOldestTurnsMakeWayWhenTheContextFills() {
        int context = 96;
        int limit = context - MAX_TOKENS;
        List<String> questions = List.of("Hello there, how are you today?", "Tell me about the weather.",
                "What is the capital of France?", "And of Spain?", "Thank you very much.");
        // The same reckoning by hand: drop whole turns, oldest first, until the prompt leaves room for the reply.
        Tokenizer tokenizer = engine.tokenizer();
        List<Map<String, Object>> turns = new ArrayList<>();
        StringBuilder expected = new StringBuilder();
        int drops = 0;
        for (String question : questions) {
            List<Map<String, Object>> messages;
            boolean dropped = false;
            while (true) {
                messages = new ArrayList<>(turns);
                messages.add(user(question));
                int tokens = tokenizer.encode(tokenizer.applyChatTemplate(messages, true), false).length;
                if (tokens <= limit) {
                    break;
                }
                turns.subList(0, 2).clear();
                dropped = true;
            }
            drops += dropped ? 1 : 0;
            String reply = greedyReply(messages);
            expected.append(reply).append('\n');
            turns.add(user(question));
            turns.add(assistant(reply));
        }
        assertTrue(drops >= 2, "the conversation should outgrow the context more than once, dropped " + drops);

        Run run = chat(String.join("\n", questions) + "\n", "--max-model-len", Integer.toString(context));

        assertEquals(0, run.exitCode(), run.err());
        assertEquals(expected.toString(), run.out());
        long notes = run.err().lines().filter(line -> line.startsWith("(dropped the oldest")).count();
        assertEquals(drops, notes, run.err());
        assertTrue(run.err().contains("to fit the context of " + context + " tokens"), run.err());
    }

    @Test
    void aMessageTooLongForTheContextIsNotSentAndTheChatGoesOn() {
        String longMessage = String.join(" ", java.util.Collections.nCopies(80, "word"));

        Run run = chat(longMessage + "\nHello\n", "--max-model-len", "64");

        assertEquals(0, run.exitCode(), run.err());
        assertTrue(run.err().startsWith("kiln chat: the message is too long: its prompt takes "), run.err());
        assertTrue(run.err().contains("the context of 64 tokens keeps " + MAX_TOKENS + " of them for the reply"),
                run.err());
        // The long message left no trace: Hello is answered as the first message.
        assertEquals(greedyReply(List.of(user("Hello"))) + "\n", run.out());
    }

    @Test
    void tripleQuotesHoldAMessageOfSeveralLines() {
        String expected = greedyReply(List.of(user("First line\nsecond line\nthird")));

        Run run = chat("\"\"\"First line\nsecond line\nthird\"\"\"\n");
        // The quotes may stand on lines of their own.
        Run alone = chat("\"\"\"\nFirst line\nsecond line\nthird\n\"\"\"\n");

        assertEquals(0, run.exitCode(), run.err());
        assertEquals(expected + "\n", run.out());
        assertEquals(expected + "\n", alone.out(), alone.err());
    }

    @Test
    void anUnknownCommandIsSaidAndNotSent() {
        Run run = chat("/nonsense\nHello\n");

        assertEquals(0, run.exitCode(), run.err());
        assertTrue(run.err().contains("kiln chat: unknown command /nonsense (/help lists them)"), run.err());
        assertEquals(greedyReply(List.of(user("Hello"))) + "\n", run.out());
    }

    @Test
    void controlCharactersAreShownEscapedOnATerminalAndRawElsewhere() {
        // Greedy replies of the random-weight model hold control characters: find a question whose reply does.
        String question = Stream.of("Hello", "How are you?", "Tell me a story", "Why?", "What is this?", "Go on")
                .filter(q -> hasControls(greedyReply(List.of(user(q))))).findFirst()
                .orElseThrow(() -> new AssertionError("no reply with control characters to test"));
        String reply = greedyReply(List.of(user(question)));

        Run piped = chat(question + "\n");
        Run shown = chat(question + "\n", true);

        assertEquals(reply + "\n", piped.out());
        assertEquals(Terminals.escapeControls(reply) + "\n", shown.out());
        assertFalse(hasControls(shown.out().replace("\n", "")), shown.out());
    }

    static boolean hasControls(String text) {
        return text.chars().anyMatch(c -> (c < 0x20 && c != '\n' && c != '\t') || c == 0x7f || (c >= 0x80 && c <= 0x9f));
    }

    @Test
    void chatDeclaresTheEngineFlagsAsGenerateDoes() {
        CommandLine chat = new CommandLine(new ChatCommand());
        CommandLine generate = new CommandLine(new GenerateCommand());
        for (String flag : EngineFlagsTest.FLAGS) {
            OptionSpec option = chat.getCommandSpec().findOption(flag);
            assertTrue(option != null, "chat lacks " + flag);
            OptionSpec reference = generate.getCommandSpec().findOption(flag);
            assertEquals(reference.defaultValue(), option.defaultValue(), flag);
        }
        assertEquals("auto", chat.getCommandSpec().findOption("--device").defaultValue());
    }

    @Test
    void chatIsASubcommandOfKiln() {
        CommandLine kiln = new CommandLine(new KilnCli());
        assertTrue(kiln.getSubcommands().containsKey("chat"));
    }

    private Path copyOfTheModel() throws IOException {
        Path model = dir.resolve("model");
        Files.createDirectories(model);
        try (Stream<Path> files = Files.list(MODEL)) {
            for (Path file : files.toList()) {
                Files.copy(file, model.resolve(file.getFileName()));
            }
        }
        return model;
    }
}
