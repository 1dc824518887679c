package ai.kiln.cli;

import ai.kiln.api.Engine;
import ai.kiln.api.FinishReason;
import ai.kiln.api.GenerateRequest;
import ai.kiln.api.OutputIterator;
import ai.kiln.api.RequestAbortedException;
import ai.kiln.api.RequestHandle;
import ai.kiln.api.RequestOutput;
import ai.kiln.api.SamplingParams;
import ai.kiln.tokenizer.Tokenizer;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.PrintWriter;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.Semaphore;

/**
 * The prompt loop of {@code kiln chat} on a loaded engine: read a message, render the whole
 * conversation with the model's chat template, stream the reply, keep it in the conversation.
 * Replies go to {@code out}; the prompt, notes and problems to {@code err}, so that stdout holds
 * the replies alone.
 *
 * <p>{@link #interrupt()} (Ctrl-C) stops the reply being streamed, whose text shown so far stays in
 * the conversation (the next answer then follows what the user saw); at the prompt it prints a
 * hint, and a second one in a row ends the loop.
 *
 * <p>Lines are read on a thread of their own, one when the loop asks for it, so that an interrupt
 * can wake a loop waiting at the prompt, and a line typed during a reply stays in the terminal
 * (where Ctrl-C discards it) until the prompt asks for it.
 */
final class ChatSession {

    static final String PROMPT = ">>> ";
    static final String CONTINUATION_PROMPT = "... ";
    /** Begins and ends a message of several lines, as in {@code ollama run}. */
    static final String QUOTE = "\"\"\"";
    static final String HELP = String.join("\n",
            "  /reset        forget the conversation (the system prompt stays)",
            "  /bye, /exit   leave (Ctrl-D too)",
            "  /help         this list",
            "  \"\"\"           begin a message of several lines; end it with \"\"\" too",
            "  Ctrl-C        stop a reply (what was shown stays in the conversation);",
            "                at the prompt, twice in a row, leave");

    /** What the input thread and the interrupt deliver to the loop. */
    private sealed interface InputEvent permits Line, EndOfInput, ReadFailure, Interrupt {
    }

    private record Line(String text) implements InputEvent {
    }

    private record EndOfInput() implements InputEvent {
    }

    private record ReadFailure(IOException failure) implements InputEvent {
    }

    private record Interrupt() implements InputEvent {
    }

    /** How a reply ended: its text as shown, and why it ended. */
    private record Reply(String text, int tokens, FinishReason finishReason, boolean stopped, String abortReason) {
    }

    private final Engine engine;
    private final SamplingParams params;
    private final ChatHistory history;
    private final int contextTokens;
    private final int replyRoom;
    private final BufferedReader input;
    private final PrintWriter out;
    private final PrintWriter err;
    private final boolean interactive;
    private final boolean escapeOutput;

    private final BlockingQueue<InputEvent> events = new LinkedBlockingQueue<>();
    private final Semaphore linesWanted = new Semaphore(0);
    private boolean lineRequested;

    // What an interrupt stops; guarded by this. The interrupt comes on the signal's thread.
    private boolean replying;
    private boolean stopRequested;
    private RequestHandle replyHandle;

    /**
     * @param systemPrompt  the first message of every prompt, or null
     * @param interactive   input from a terminal: prompt for each line, print hints
     * @param escapeOutput  output to a terminal: show control characters instead of sending them
     */
    ChatSession(Engine engine, SamplingParams params, String systemPrompt, BufferedReader input, PrintWriter out,
            PrintWriter err, boolean interactive, boolean escapeOutput) {
        this.engine = engine;
        this.params = params;
        this.history = new ChatHistory(systemPrompt);
        this.contextTokens = contextTokens(engine);
        this.replyRoom = replyRoom(params.maxTokens(), contextTokens);
        this.input = input;
        this.out = out;
        this.err = err;
        this.interactive = interactive;
        this.escapeOutput = escapeOutput;
    }

    /**
     * The most tokens a prompt and its reply may take together: the longest sequence, or the KV
     * cache where that holds fewer (the engine refuses a request that cannot fit either).
     */
    static int contextTokens(Engine engine) {
        long cacheTokens = (long) engine.numKvBlocks() * engine.options().blockSize();
        return (int) Math.min(engine.maxModelLen(), cacheTokens);
    }

    /**
     * The tokens the conversation leaves free for the reply: --max-tokens where given; else a
     * quarter of the context, so that a reply has room even though it may run on to the end.
     */
    static int replyRoom(Integer maxTokens, int contextTokens) {
        return maxTokens != null ? maxTokens : Math.max(1, contextTokens / 4);
    }

    /** Runs the loop until /bye, /exit, the end of the input or two interrupts at the prompt; returns the exit code. */
    int run() {
        Thread reader = startReader();
        try {
            boolean interruptedAtPrompt = false;
            while (true) {
                InputEvent event = nextEvent(PROMPT);
                if (event instanceof Interrupt) {
                    if (interruptedAtPrompt) {
                        err.println();
                        return 0;
                    }
                    interruptedAtPrompt = true;
                    // A new line first: the cursor is after the prompt and the terminal's ^C.
                    hint(System.lineSeparator() + "(Ctrl-C again, Ctrl-D or /bye to leave)");
                    continue;
                }
                interruptedAtPrompt = false;
                if (event instanceof EndOfInput) {
                    if (interactive) {
                        err.println();
                    }
                    return 0;
                }
                if (event instanceof ReadFailure failure) {
                    problem("cannot read the input: " + KilnCli.describe(failure.failure()));
                    return 1;
                }
                String text = ((Line) event).text();
                if (text.startsWith(QUOTE)) {
                    InputEvent message = readQuoted(text.substring(QUOTE.length()));
                    if (message instanceof Line line) {
                        if (!line.text().isBlank()) {
                            reply(line.text());
                        }
                    } else if (message instanceof Interrupt) {
                        hint(System.lineSeparator() + "(the message was discarded)");
                    } else if (message instanceof ReadFailure failure) {
                        problem("cannot read the input: " + KilnCli.describe(failure.failure()));
                        return 1;
                    } else {
                        problem("the input ended inside a " + QUOTE + " message; it was not sent");
                        return 0;
                    }
                } else if (text.isBlank()) {
                    continue;
                } else if (text.startsWith("/")) {
                    if (!command(text.strip())) {
                        return 0;
                    }
                } else {
                    reply(text);
                }
            }
        } finally {
            reader.interrupt();
            out.flush();
            err.flush();
        }
    }

    /**
     * Ctrl-C: stops the reply being streamed (cancelling its request), or, at the prompt, tells the
     * loop. Safe from any thread.
     */
    void interrupt() {
        synchronized (this) {
            if (replying) {
                stopRequested = true;
                if (replyHandle != null) {
                    replyHandle.cancel();
                }
                return;
            }
        }
        events.add(new Interrupt());
    }

    /**
     * Reads lines until one ends with """; returns the message between the quotes (without the
     * empty lines the quotes stand on alone), or what ended it.
     */
    private InputEvent readQuoted(String firstLine) {
        List<String> lines = new ArrayList<>();
        String line = firstLine;
        while (!line.endsWith(QUOTE)) {
            lines.add(line);
            InputEvent event = nextEvent(CONTINUATION_PROMPT);
            if (!(event instanceof Line next)) {
                return event;
            }
            line = next.text();
        }
        lines.add(line.substring(0, line.length() - QUOTE.length()));
        if (lines.size() > 1 && lines.get(0).isEmpty()) {
            lines.remove(0);
        }
        if (lines.size() > 1 && lines.get(lines.size() - 1).isEmpty()) {
            lines.remove(lines.size() - 1);
        }
        return new Line(String.join("\n", lines));
    }

    /** Runs a /command; false: leave. */
    private boolean command(String line) {
        String name = line.split("\\s+", 2)[0];
        switch (name) {
            case "/bye", "/exit" -> {
                return false;
            }
            case "/reset", "/clear" -> {
                history.reset();
                hint(history.systemPrompt() == null ? "(the conversation is cleared)"
                        : "(the conversation is cleared; the system prompt stays)");
            }
            case "/help", "/?" -> {
                err.println(HELP);
                err.flush();
            }
            default -> problem("unknown command " + name + " (/help lists them)");
        }
        return true;
    }

    /**
     * Answers {@code user} after the conversation, streaming the reply, and keeps the turn. An
     * interrupt from here on stops this reply, even one that comes while the prompt is prepared.
     */
    private void reply(String user) {
        beginReply();
        try {
            answer(user);
        } finally {
            endReply();
        }
    }

    private void answer(String user) {
        int limit = contextTokens - replyRoom;
        int dropped;
        try {
            dropped = history.turnsToDrop(user, this::promptTokens, limit);
        } catch (IllegalArgumentException | IllegalStateException e) {
            problem("the chat template failed: " + KilnCli.describe(e) + "; the message was not sent");
            return;
        }
        if (dropped < 0) {
            int tokens = promptTokens(history.messagesWith(history.turnCount(), user));
            problem("the message is too long: its prompt takes " + tokens + " tokens, and the context of "
                    + contextTokens + " tokens keeps " + replyRoom + " of them for the reply; it was not sent");
            return;
        }
        // NOTE: the oldest turns leave the history only once this turn is kept: a refused or
        // stopped-before-it-began message leaves the conversation as it was.
        GenerateRequest request = GenerateRequest.ofChat(history.messagesWith(dropped, user), params).withStream(true);
        Reply reply = stream(request);
        if (reply == null) {
            return;
        }
        out.println();
        if (interactive) {
            out.println();
        }
        out.flush();
        boolean cutShort = reply.stopped() || reply.abortReason() != null;
        if (reply.stopped()) {
            note(reply.text().isEmpty() ? "(stopped before the reply began; the message was dropped)"
                    : "(stopped; what was shown stays in the conversation)");
        } else if (reply.abortReason() != null) {
            note("(the reply was aborted: " + reply.abortReason() + ")");
        } else if (reply.finishReason() == FinishReason.LENGTH) {
            if (params.maxTokens() != null && reply.tokens() >= params.maxTokens()) {
                hint("(the reply was cut at --max-tokens " + params.maxTokens() + ")");
            } else {
                note("(the reply was cut: the context of " + contextTokens + " tokens is full)");
            }
        }
        if (!(cutShort && reply.text().isEmpty())) {
            if (dropped > 0) {
                history.dropOldest(dropped);
                note("(dropped the oldest " + (dropped == 1 ? "turn" : dropped + " turns") + " of the conversation to"
                        + " fit the context of " + contextTokens + " tokens)");
            }
            history.add(user, reply.text());
        }
    }

    /** Submits the request and prints its text as it comes; null when the engine refused it (said on err). */
    private Reply stream(GenerateRequest request) {
        StringBuilder shown = new StringBuilder();
        int tokens = 0;
        FinishReason finishReason = null;
        String abortReason = null;
        RequestHandle handle;
        try {
            handle = engine.submit(request);
        } catch (IllegalArgumentException e) {
            problem(KilnCli.describe(e) + "; the message was not sent");
            return null;
        }
        attachReply(handle);
        try (OutputIterator outputs = handle.iterator()) {
            // NOTE: the stop is checked between outputs as well as by cancelling: a request that
            // has finished generating can still have outputs waiting to be shown.
            while (!stopRequested() && outputs.hasNext()) {
                RequestOutput output = outputs.next();
                shown.append(output.text());
                tokens += output.tokenIds().length;
                out.print(escapeOutput ? Terminals.escapeControls(output.text()) : output.text());
                out.flush();
                if (output.finished()) {
                    finishReason = output.finishReason();
                }
            }
        } catch (RequestAbortedException e) {
            if (!stopRequested()) {
                abortReason = e.getMessage();
            }
        }
        boolean stopped = stopRequested() && finishReason == null;
        return new Reply(shown.toString(), tokens, finishReason, stopped, abortReason);
    }

    private synchronized void beginReply() {
        replying = true;
        stopRequested = false;
        replyHandle = null;
    }

    private synchronized void attachReply(RequestHandle handle) {
        replyHandle = handle;
        if (stopRequested) {
            handle.cancel();
        }
    }

    private synchronized void endReply() {
        replying = false;
        replyHandle = null;
    }

    private synchronized boolean stopRequested() {
        return stopRequested;
    }

    /** The prompt's length in tokens, as the engine will render and tokenize it. */
    private int promptTokens(List<Map<String, Object>> messages) {
        Tokenizer tokenizer = engine.tokenizer();
        // The template writes the special tokens (BOS, the role markers) itself, as the engine assumes.
        return tokenizer.encode(tokenizer.applyChatTemplate(messages, true), false).length;
    }

    /** Prompts (on a terminal), asks the input thread for a line unless one is already asked for, and waits. */
    private InputEvent nextEvent(String prompt) {
        out.flush();
        if (interactive) {
            err.print(prompt);
            err.flush();
        }
        if (!lineRequested) {
            lineRequested = true;
            linesWanted.release();
        }
        InputEvent event;
        try {
            event = events.take();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return new EndOfInput();
        }
        if (!(event instanceof Interrupt)) {
            lineRequested = false;
        }
        return event;
    }

    private Thread startReader() {
        Thread reader = new Thread(() -> {
            try {
                while (true) {
                    linesWanted.acquire();
                    String line = input.readLine();
                    if (line == null) {
                        events.add(new EndOfInput());
                        return;
                    }
                    events.add(new Line(line));
                }
            } catch (IOException e) {
                events.add(new ReadFailure(e));
            } catch (InterruptedException e) {
                // The loop has ended.
            }
        }, "kiln-chat-input");
        reader.setDaemon(true);
        reader.start();
        return reader;
    }

    /** A note for whoever is at the terminal only: the state of the conversation. */
    private void hint(String text) {
        if (interactive) {
            note(text);
        }
    }

    /** A note on what happened to a message or reply, for every reader of err. */
    private void note(String text) {
        out.flush();
        err.println(text);
        err.flush();
    }

    private void problem(String text) {
        note("kiln chat: " + text);
    }
}
