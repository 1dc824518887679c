package ai.kiln.cli;

import ai.kiln.api.Engine;
import ai.kiln.api.EngineOptions;
import ai.kiln.api.GenerateRequest;
import ai.kiln.api.GenerateResult;
import ai.kiln.api.RequestHandle;
import ai.kiln.api.RequestOutput;
import ai.kiln.api.SamplingParams;
import ai.kiln.server.EngineFlags;
import ai.kiln.server.ModelOption;
import ai.kiln.server.SamplingJson;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.Callable;
import java.util.concurrent.CompletionException;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.Flow;
import java.util.function.BooleanSupplier;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine;

/**
 * {@code kiln generate}: one prompt (streamed to stdout, or as one JSON object with --json), or a
 * JSONL file of prompts submitted together so they run as one continuous batch, answered as JSON
 * lines in input order.
 */
@Command(name = "generate", mixinStandardHelpOptions = true,
        description = {"Generate a completion for a prompt, or for every line of a JSONL file as one batch.",
                "Exit codes: 0 done, 1 bad input file or model, 2 bad options."})
public final class GenerateCommand implements Callable<Integer> {

    /** What an --input line may hold: the prompt, and sampling fields as {@code /v1/completions} takes them. */
    static final Set<String> LINE_FIELDS = Set.of("prompt", "max_tokens", "temperature", "seed", "top_p", "top_k",
            "min_p", "stop", "ignore_eos");

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Option(names = "--model", required = true, paramLabel = "DIR|ORG/NAME|URL", description = ModelOption.DESCRIPTION)
    String model;

    @Option(names = "--revision", paramLabel = "REV", defaultValue = "main", description = ModelOption.REVISION_DESCRIPTION)
    String revision;

    @Option(names = "--prompt", paramLabel = "TEXT", description = "the prompt")
    String prompt;

    @Option(names = "--chat", paramLabel = "FILE.json",
            description = "chat messages ([{\"role\": ..., \"content\": ...}], or {\"messages\": [...]}),"
                    + " rendered with the model's chat template")
    Path chat;

    @Option(names = "--input", paramLabel = "FILE.jsonl",
            description = "one request per line: {\"prompt\": ..., \"max_tokens\": ..., \"temperature\": ...,"
                    + " \"seed\": ..., \"top_p\", \"top_k\", \"min_p\", \"stop\", \"ignore_eos\"}; prints one JSON"
                    + " line per input line (--json is implied)")
    Path input;

    @Option(names = "--max-tokens", paramLabel = "N", defaultValue = "16",
            description = "tokens to generate (default ${DEFAULT-VALUE})")
    int maxTokens;

    @Option(names = "--temperature", paramLabel = "T", defaultValue = "1.0",
            description = "0: greedy (default ${DEFAULT-VALUE})")
    double temperature;

    @Option(names = "--top-p", paramLabel = "P", defaultValue = "1.0",
            description = "nucleus sampling mass (default ${DEFAULT-VALUE})")
    double topP;

    @Option(names = "--top-k", paramLabel = "K", defaultValue = "0",
            description = "keep the K most likely tokens (0: off)")
    int topK;

    @Option(names = "--min-p", paramLabel = "P", defaultValue = "0",
            description = "drop tokens below P times the most likely (0: off)")
    double minP;

    // NOTE: not among the EngineFlags: this seeds the request, serve's --seed the engine.
    @Option(names = "--seed", paramLabel = "S", description = "seed of the random choices")
    Long seed;

    @Option(names = "--stop", paramLabel = "TEXT", description = "stop string (repeatable)")
    List<String> stop = new ArrayList<>();

    @Option(names = "--ignore-eos", description = "keep generating past end-of-sequence tokens")
    boolean ignoreEos;

    @Option(names = "--json", description = "print {\"prompt_token_ids\", \"token_ids\", \"text\", \"finish_reason\"}")
    boolean json;

    @Option(names = "--raw", description = "print the model's text as it is, control characters included (on a"
            + " terminal they are shown escaped, ^[ for ESC, so that a model's text cannot drive the terminal)")
    boolean raw;

    @Mixin
    EngineFlags engineFlags;

    /** Whether stdout is a terminal, where the streamed text is shown with its control characters escaped (tests set it). */
    BooleanSupplier stdoutIsTerminal = () -> Terminals.isTerminal(Terminals.STDOUT);

    private final ObjectMapper mapper = new ObjectMapper();

    @Override
    public Integer call() {
        PrintWriter out = spec.commandLine().getOut();
        PrintWriter err = spec.commandLine().getErr();
        try {
            int given = (prompt != null ? 1 : 0) + (chat != null ? 1 : 0) + (input != null ? 1 : 0);
            if (given != 1) {
                throw usage("give exactly one of --prompt, --chat and --input");
            }
            EngineOptions options = engineFlags.engineOptions();
            SamplingParams params = commandLineParams();
            Path modelDir = modelDirectory();
            if (input != null) {
                List<GenerateRequest> requests = readInput(input, params);
                try (Engine engine = Engine.create(modelDir, options)) {
                    runBatch(engine, requests, out);
                }
            } else {
                GenerateRequest request = chat != null ? GenerateRequest.ofChat(readChat(chat), params)
                        : GenerateRequest.of(prompt, params);
                try (Engine engine = Engine.create(modelDir, options)) {
                    runOne(engine, request, out);
                }
            }
            return 0;
        } catch (CommandLine.ParameterException e) {
            err.println("kiln generate: " + e.getMessage());
            return 2;
        } catch (CommandFailure e) {
            err.println("kiln generate: " + e.getMessage());
            return 1;
        } catch (RuntimeException e) {
            err.println("kiln generate: " + KilnCli.describe(unwrap(e)));
            return 1;
        } finally {
            out.flush();
            err.flush();
        }
    }

    private CommandLine.ParameterException usage(String message) {
        return new CommandLine.ParameterException(spec.commandLine(), message);
    }

    private static Throwable unwrap(Throwable e) {
        return e instanceof CompletionException && e.getCause() != null ? e.getCause() : e;
    }

    /** --model's directory (a Hub model located or downloaded), which must hold a config.json. */
    private Path modelDirectory() {
        Path dir = ModelOption.locate(spec, model, revision).directory();
        if (!Files.isRegularFile(dir.resolve("config.json"))) {
            throw usage("--model: " + model + " has no config.json");
        }
        return dir;
    }

    /** The command line's sampling options: those of --prompt and --chat, and the defaults of --input's lines. */
    SamplingParams commandLineParams() {
        try {
            return SamplingParams.builder().maxTokens(maxTokens).temperature(temperature).topP(topP).topK(topK)
                    .minP(minP).seed(seed).stop(stop).ignoreEos(ignoreEos).build();
        } catch (IllegalArgumentException e) {
            // The message starts with the field's API name (top_p); name the option (--top-p).
            String message = e.getMessage();
            int space = message.indexOf(' ');
            String field = space > 0 ? message.substring(0, space) : message;
            throw usage("--" + field.replace('_', '-') + message.substring(field.length()));
        }
    }

    /**
     * The requests of a JSONL file, one per line: its prompt, and its sampling fields read as the
     * server reads those of {@code /v1/completions} (the same names, checks and messages), over
     * {@code defaults} (the command line's).
     */
    List<GenerateRequest> readInput(Path file, SamplingParams defaults) {
        List<String> lines;
        try {
            lines = Files.readAllLines(file, StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw usage("--input: cannot read " + file + " (" + e.getClass().getSimpleName() + ": " + e.getMessage() + ")");
        }
        List<GenerateRequest> requests = new ArrayList<>();
        for (int i = 0; i < lines.size(); i++) {
            String text = lines.get(i);
            if (text.isBlank()) {
                continue;
            }
            String where = file.getFileName() + " line " + (i + 1) + ": ";
            JsonNode line;
            try {
                line = mapper.readTree(text);
            } catch (JsonProcessingException e) {
                throw new CommandFailure(where + "not valid JSON (" + e.getOriginalMessage() + ")");
            }
            if (line == null || !line.isObject()) {
                throw new CommandFailure(where + "expected a JSON object, got " + (line == null ? "nothing" : line.getNodeType()));
            }
            for (Iterator<String> names = line.fieldNames(); names.hasNext();) {
                String name = names.next();
                if (!LINE_FIELDS.contains(name)) {
                    throw new CommandFailure(where + "unknown field '" + name + "' (known: " + String.join(", ",
                            LINE_FIELDS.stream().sorted().toList()) + ")");
                }
            }
            JsonNode p = line.get("prompt");
            if (p == null || !p.isTextual()) {
                throw new CommandFailure(where + "'prompt' must be a string" + (p == null ? " and is missing" : ", got " + p));
            }
            SamplingParams params;
            try {
                params = SamplingJson.read(line, SamplingJson.Endpoint.COMPLETIONS, defaults);
            } catch (IllegalArgumentException e) {
                throw new CommandFailure(where + withoutClosingPeriod(e.getMessage()));
            }
            requests.add(GenerateRequest.of(p.asText(), params).withRequestId("line-" + (i + 1)));
        }
        if (requests.isEmpty()) {
            throw new CommandFailure(file.getFileName() + ": no requests (the file is empty)");
        }
        return requests;
    }

    /** The server's sentence as one line of this command's errors, which end with no period. */
    private static String withoutClosingPeriod(String message) {
        return message.endsWith(".") ? message.substring(0, message.length() - 1) : message;
    }

    private List<Map<String, Object>> readChat(Path file) {
        JsonNode root;
        try {
            root = mapper.readTree(file.toFile());
        } catch (JsonProcessingException e) {
            throw new CommandFailure(file.getFileName() + ": not valid JSON (" + e.getOriginalMessage() + ")");
        } catch (IOException e) {
            throw usage("--chat: cannot read " + file + " (" + e.getClass().getSimpleName() + ": " + e.getMessage() + ")");
        }
        JsonNode messages = root != null && root.isObject() ? root.get("messages") : root;
        if (messages == null || !messages.isArray() || messages.isEmpty()) {
            throw new CommandFailure(file.getFileName() + ": expected a non-empty list of messages, or {\"messages\": [...]}");
        }
        List<Map<String, Object>> out = new ArrayList<>();
        for (int i = 0; i < messages.size(); i++) {
            JsonNode m = messages.get(i);
            if (!m.isObject() || !m.path("role").isTextual() || !m.has("content")) {
                throw new CommandFailure(file.getFileName() + ": message " + i + " needs a string 'role' and a 'content'");
            }
            @SuppressWarnings("unchecked")
            Map<String, Object> map = mapper.convertValue(m, Map.class);
            out.add(map);
        }
        return out;
    }

    private void runOne(Engine engine, GenerateRequest request, PrintWriter out) {
        if (json) {
            GenerateResult result = engine.generate(request);
            out.println(toJson(result));
            return;
        }
        // NOTE: a model's text may hold any character (random weights give ESC often); raw on a
        // terminal, it would move the cursor, recolour or retitle it. Piped output and --json stay
        // exact.
        boolean escape = !raw && stdoutIsTerminal.getAsBoolean();
        RequestHandle handle = engine.submit(request.withStream(true));
        CountDownLatch ended = new CountDownLatch(1);
        handle.subscribe(new Flow.Subscriber<>() {
            @Override
            public void onSubscribe(Flow.Subscription subscription) {
                subscription.request(Long.MAX_VALUE);
            }

            @Override
            public void onNext(RequestOutput item) {
                out.print(escape ? Terminals.escapeControls(item.text()) : item.text());
                out.flush();
            }

            @Override
            public void onError(Throwable throwable) {
                ended.countDown();
            }

            @Override
            public void onComplete() {
                ended.countDown();
            }
        });
        GenerateResult result = handle.result().join();
        try {
            ended.await(); // the stream's last text is delivered after the result completes
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        out.println();
        if (result.finishReason() == ai.kiln.api.FinishReason.ABORT) {
            throw new IllegalStateException("generation aborted: " + result.completions().get(0).stopReason());
        }
    }

    private void runBatch(Engine engine, List<GenerateRequest> requests, PrintWriter out) {
        List<RequestHandle> handles = new ArrayList<>(requests.size());
        for (GenerateRequest request : requests) {
            try {
                handles.add(engine.submit(request));
            } catch (IllegalArgumentException e) {
                handles.forEach(RequestHandle::cancel);
                throw new CommandFailure(input.getFileName() + " " + request.requestId().replace('-', ' ') + ": "
                        + e.getMessage());
            }
        }
        for (RequestHandle handle : handles) {
            out.println(toJson(handle.result().join()));
        }
    }

    private String toJson(GenerateResult result) {
        ObjectNode node = mapper.createObjectNode();
        ArrayNode promptIds = node.putArray("prompt_token_ids");
        for (int id : result.promptTokenIds()) {
            promptIds.add(id);
        }
        ArrayNode ids = node.putArray("token_ids");
        for (int id : result.tokenIds()) {
            ids.add(id);
        }
        node.put("text", result.text());
        node.put("finish_reason", result.finishReason().apiName());
        try {
            return mapper.writeValueAsString(node);
        } catch (JsonProcessingException e) {
            throw new IllegalStateException(e);
        }
    }
}
