package ai.kiln.cli;

import ai.kiln.api.Engine;
import ai.kiln.api.EngineOptions;
import ai.kiln.api.SamplingParams;
import ai.kiln.server.EngineFlags;
import ai.kiln.server.ModelOption;
import ai.kiln.tokenizer.Tokenizer;
import java.io.BufferedReader;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.io.PrintWriter;
import java.nio.charset.Charset;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.concurrent.CompletionException;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine;

/**
 * {@code kiln chat}: a conversation with a model in the terminal, in the manner of {@code ollama
 * run}; see {@link ChatSession} for the loop. From a terminal it prompts with {@code >>> } and
 * Ctrl-C stops a reply; from a pipe it answers each line in turn and ends at the end of the input.
 */
@Command(name = "chat", mixinStandardHelpOptions = true,
        description = {"Chat with a model: each line is a message, answered with the whole conversation as context"
                + " and streamed as it is generated. Commands: /help, /reset, /bye (or /exit, Ctrl-D). Ctrl-C stops"
                + " a reply. Input from a pipe: each line is answered in turn, the replies alone on stdout.",
                "Exit codes: 0 done, 1 bad model or engine failure, 2 bad options."})
public final class ChatCommand implements Callable<Integer> {

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Option(names = "--model", required = true, paramLabel = "DIR|ORG/NAME", description = ModelOption.DESCRIPTION)
    String model;

    @Option(names = "--revision", paramLabel = "REV", defaultValue = "main", description = ModelOption.REVISION_DESCRIPTION)
    String revision;

    @Option(names = "--system", paramLabel = "TEXT", description = "system prompt: the first message of the conversation")
    String systemPrompt;

    @Option(names = "--temperature", paramLabel = "T", defaultValue = "0.7",
            description = "0: greedy (default ${DEFAULT-VALUE})")
    double temperature;

    @Option(names = "--top-p", paramLabel = "P", defaultValue = "0.95",
            description = "nucleus sampling mass (default ${DEFAULT-VALUE})")
    double topP;

    @Option(names = "--top-k", paramLabel = "K", defaultValue = "0",
            description = "keep the K most likely tokens (0: off)")
    int topK;

    @Option(names = "--max-tokens", paramLabel = "N",
            description = "longest reply (default: until the model ends it or the context is full)")
    Integer maxTokens;

    @Option(names = "--seed", paramLabel = "S",
            description = "seed of every reply's random choices, so that a conversation repeats (default: random)")
    Long seed;

    @Mixin
    EngineFlags engineFlags;

    private final InputStream input;
    private final boolean inputIsTerminal;
    private final boolean outputIsTerminal;

    /** The command on the process's stdin and stdout. */
    public ChatCommand() {
        this(System.in, Terminals.isTerminal(Terminals.STDIN), Terminals.isTerminal(Terminals.STDOUT));
    }

    /**
     * The command reading messages from {@code input}; {@code inputIsTerminal} turns on the prompt,
     * the hints and Ctrl-C, {@code outputIsTerminal} the escaping of control characters.
     */
    ChatCommand(InputStream input, boolean inputIsTerminal, boolean outputIsTerminal) {
        this.input = input;
        this.inputIsTerminal = inputIsTerminal;
        this.outputIsTerminal = outputIsTerminal;
    }

    @Override
    public Integer call() {
        PrintWriter out = spec.commandLine().getOut();
        PrintWriter err = spec.commandLine().getErr();
        try {
            SamplingParams params = samplingParams();
            EngineOptions options = engineFlags.engineOptions();
            Path modelDir = ModelOption.locate(spec, model, revision).directory();
            if (!Files.isRegularFile(modelDir.resolve("config.json"))) {
                throw usage("--model: " + model + " has no config.json");
            }
            if (inputIsTerminal) {
                err.println("Loading " + model + " ...");
                err.flush();
            }
            try (Engine engine = Engine.create(modelDir, options)) {
                checkChatTemplate(engine);
                int context = ChatSession.contextTokens(engine);
                if (maxTokens != null && maxTokens >= context) {
                    throw usage("--max-tokens " + maxTokens + " leaves no room for the conversation in the context of "
                            + context + " tokens");
                }
                // NOTE: the platform's charset, as picocli's stdout uses: the terminal's, read and written alike.
                BufferedReader lines = new BufferedReader(new InputStreamReader(input, Charset.defaultCharset()));
                ChatSession session = new ChatSession(engine, params, systemPrompt, lines, out, err, inputIsTerminal,
                        outputIsTerminal);
                if (inputIsTerminal) {
                    err.println(engine.modelName() + " on " + engine.deviceDescription() + ", a context of " + context
                            + " tokens. /help for help, /bye or Ctrl-D to leave.");
                    err.flush();
                }
                return inputIsTerminal ? runStoppingRepliesOnCtrlC(session) : session.run();
            }
        } catch (CommandLine.ParameterException e) {
            err.println("kiln chat: " + e.getMessage());
            return 2;
        } catch (CommandFailure e) {
            err.println("kiln chat: " + e.getMessage());
            return 1;
        } catch (RuntimeException e) {
            Throwable cause = e instanceof CompletionException && e.getCause() != null ? e.getCause() : e;
            err.println("kiln chat: " + KilnCli.describe(cause));
            return 1;
        } finally {
            out.flush();
            err.flush();
        }
    }

    /**
     * Runs the session with SIGINT delivered to it rather than ending the JVM. Only from a
     * terminal: with piped input there is no prompt to come back to, and Ctrl-C ends the program
     * as it ends any other.
     *
     * <p>{@code sun.misc.Signal} (jdk.unsupported) rather than a line-editing library: it needs no
     * dependency, and the terminal's own line editing (erase, kill line, Ctrl-D) serves a prompt
     * that reads one line at a time. The handler runs on the JVM's signal thread; the session only
     * sets a flag and cancels the request there.
     */
    private static int runStoppingRepliesOnCtrlC(ChatSession session) {
        sun.misc.Signal interrupt = new sun.misc.Signal("INT");
        sun.misc.SignalHandler previous;
        try {
            previous = sun.misc.Signal.handle(interrupt, signal -> session.interrupt());
        } catch (IllegalArgumentException e) {
            // The JVM keeps SIGINT to itself (as under -Xrs): Ctrl-C ends the program instead.
            return session.run();
        }
        try {
            return session.run();
        } finally {
            sun.misc.Signal.handle(interrupt, previous);
        }
    }

    /** Fails, naming the reason, where the model cannot render this conversation. */
    private void checkChatTemplate(Engine engine) {
        if (!engine.hasTokenizer()) {
            throw new CommandFailure(model + " has no tokenizer.json; a chat needs the model's tokenizer and chat"
                    + " template");
        }
        Tokenizer tokenizer = engine.tokenizer();
        if (!tokenizer.hasChatTemplate()) {
            throw new CommandFailure(model + " has no chat template (tokenizer_config.json's chat_template or"
                    + " chat_template.jinja); kiln generate --prompt takes plain text");
        }
        if (systemPrompt != null) {
            // Templates that refuse a system role raise an exception only when given one: find out now.
            try {
                tokenizer.applyChatTemplate(List.of(ChatHistory.message("system", systemPrompt),
                        ChatHistory.message("user", "Hello")), true);
            } catch (IllegalArgumentException | IllegalStateException e) {
                throw new CommandFailure("--system: the model's chat template refuses a system prompt ("
                        + KilnCli.describe(e) + ")");
            }
        }
    }

    /** The sampling options; a bad value is a usage error naming the option. */
    SamplingParams samplingParams() {
        try {
            return SamplingParams.builder().temperature(temperature).topP(topP).topK(topK).maxTokens(maxTokens)
                    .seed(seed).build();
        } catch (IllegalArgumentException e) {
            // The message starts with the field's API name (top_p); name the option (--top-p).
            String message = e.getMessage();
            int space = message.indexOf(' ');
            String field = space > 0 ? message.substring(0, space) : message;
            throw usage("--" + field.replace('_', '-') + message.substring(field.length()));
        }
    }

    private CommandLine.ParameterException usage(String message) {
        return new CommandLine.ParameterException(spec.commandLine(), message);
    }
}
