package ai.kiln.cli;

import ai.kiln.server.ModelOption;
import ai.kiln.tokenizer.Tokenizer;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.type.TypeReference;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine.ArgGroup;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine;

/**
 * {@code kiln tokenize}: the model's tokenizer on a text, on every line of a JSONL file, or on a
 * chat rendered with the model's chat template; for checking prompts and comparing with other
 * implementations.
 */
@Command(name = "tokenize", mixinStandardHelpOptions = true,
        description = {"Encode text with a model's tokenizer (tokenizer.json, tokenizer_config.json).",
                "--text: the ids (--json: {\"ids\": [...], \"text\": <the ids decoded>}).",
                "--input FILE.jsonl: one {\"text\": ..., \"add_special\": bool} per line; prints {\"ids\": [...], \"text\": ...} per line.",
                "--chat FILE.json: OpenAI-style messages rendered with the chat template; the prompt"
                        + " (--json: {\"prompt\": ..., \"ids\": [...]}, ids encoded without added special tokens).",
                "Exit codes: 0 done, 1 bad input file or tokenizer, 2 bad options."})
public final class TokenizeCommand implements Callable<Integer> {
    private static final ObjectMapper JSON = new ObjectMapper();

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Option(names = "--model", required = true, paramLabel = "DIR|ORG/NAME|URL",
            description = "model holding tokenizer.json: " + ModelOption.DESCRIPTION)
    String model;

    @Option(names = "--revision", paramLabel = "REV", defaultValue = "main", description = ModelOption.REVISION_DESCRIPTION)
    String revision;

    /** Exactly one input. */
    static final class Source {
        @Option(names = "--text", paramLabel = "TEXT", description = "text to encode")
        String text;

        @Option(names = "--chat", paramLabel = "FILE.json", description = "messages: [{\"role\": ..., \"content\": ...}] or {\"messages\": [...]}")
        Path chat;

        @Option(names = "--input", paramLabel = "FILE.jsonl", description = "one {\"text\": ..., \"add_special\": bool} per line")
        Path input;
    }

    @ArgGroup(exclusive = true, multiplicity = "1")
    Source source;

    @Option(names = "--add-special", description = "let the post-processor add special tokens such as BOS"
            + " (--text, and --input lines without add_special)")
    boolean addSpecial;

    @Option(names = "--no-generation-prompt", description = "--chat: render without add_generation_prompt")
    boolean noGenerationPrompt;

    @Option(names = "--json", description = "print JSON (always so for --input)")
    boolean json;

    @Override
    public Integer call() {
        PrintWriter out = spec.commandLine().getOut();
        PrintWriter err = spec.commandLine().getErr();
        try {
            Tokenizer tokenizer = Tokenizer.load(ModelOption.locate(spec, model, revision).directory());
            if (source.text != null) {
                encodeText(tokenizer, source.text, out);
            } else if (source.input != null) {
                encodeLines(tokenizer, source.input, out);
            } else {
                renderChat(tokenizer, source.chat, out);
            }
            return 0;
        } catch (CommandLine.ParameterException e) {
            err.println("kiln tokenize: " + e.getMessage());
            return 2;
        } catch (IOException | RuntimeException e) {
            String message = e.getMessage();
            err.println("kiln tokenize: " + (message == null || message.isBlank() ? e.getClass().getSimpleName() : message));
            return 1;
        } finally {
            out.flush();
            err.flush();
        }
    }

    private void encodeText(Tokenizer tokenizer, String text, PrintWriter out) throws JsonProcessingException {
        int[] ids = tokenizer.encode(text, addSpecial);
        if (json) {
            out.println(JSON.writeValueAsString(idsAndText(tokenizer, ids)));
        } else {
            StringBuilder line = new StringBuilder();
            for (int id : ids) {
                line.append(line.length() == 0 ? "" : " ").append(id);
            }
            out.println(line);
        }
    }

    private static ObjectNode idsAndText(Tokenizer tokenizer, int[] ids) {
        ObjectNode node = JSON.createObjectNode();
        ArrayNode idArray = node.putArray("ids");
        for (int id : ids) {
            idArray.add(id);
        }
        node.put("text", tokenizer.decode(ids, false));
        return node;
    }

    private void encodeLines(Tokenizer tokenizer, Path file, PrintWriter out) throws IOException {
        List<ObjectNode> results = new ArrayList<>();
        try (BufferedReader reader = Files.newBufferedReader(file, StandardCharsets.UTF_8)) {
            String line;
            int number = 0;
            while ((line = reader.readLine()) != null) {
                number++;
                if (line.isBlank()) {
                    continue;
                }
                String where = file.getFileName() + " line " + number + ": ";
                JsonNode request;
                try {
                    request = JSON.readTree(line);
                } catch (JsonProcessingException e) {
                    throw new CommandFailure(where + "not valid JSON (" + e.getOriginalMessage() + ")");
                }
                if (request == null || !request.isObject() || !request.path("text").isTextual()) {
                    throw new CommandFailure(where + "expected {\"text\": \"...\", \"add_special\": true|false}");
                }
                JsonNode addSpecialField = request.get("add_special");
                if (addSpecialField != null && !addSpecialField.isBoolean()) {
                    throw new CommandFailure(where + "add_special must be true or false");
                }
                boolean lineAddSpecial = addSpecialField == null ? addSpecial : addSpecialField.booleanValue();
                try {
                    results.add(idsAndText(tokenizer, tokenizer.encode(request.get("text").textValue(), lineAddSpecial)));
                } catch (IllegalArgumentException e) {
                    throw new CommandFailure(where + e.getMessage());
                }
            }
        }
        // Printed only once every line is valid, so a bad line leaves no partial output.
        for (ObjectNode result : results) {
            out.println(JSON.writeValueAsString(result));
        }
    }

    private void renderChat(Tokenizer tokenizer, Path file, PrintWriter out) throws IOException {
        JsonNode root;
        try {
            root = JSON.readTree(file.toFile());
        } catch (JsonProcessingException e) {
            throw new CommandFailure(file.getFileName() + ": not valid JSON (" + e.getOriginalMessage() + ")");
        }
        JsonNode messages = root != null && root.isObject() ? root.get("messages") : root;
        if (messages == null || !messages.isArray()) {
            throw new CommandFailure(file.getFileName() + ": expected a list of messages, or {\"messages\": [...]}");
        }
        for (int i = 0; i < messages.size(); i++) {
            JsonNode message = messages.get(i);
            if (!message.isObject() || !message.path("role").isTextual()) {
                throw new CommandFailure(file.getFileName() + ": message " + i + " needs a string \"role\"");
            }
        }
        List<Map<String, Object>> list = JSON.convertValue(messages, new TypeReference<List<Map<String, Object>>>() { });
        String prompt = tokenizer.applyChatTemplate(list, !noGenerationPrompt);
        if (!json) {
            out.print(prompt);
            out.println();
            return;
        }
        ObjectNode node = JSON.createObjectNode();
        node.put("prompt", prompt);
        ArrayNode ids = node.putArray("ids");
        // Chat templates write their own BOS, so the post-processor must not add another (as transformers does).
        for (int id : tokenizer.encode(prompt, false)) {
            ids.add(id);
        }
        out.println(JSON.writeValueAsString(node));
    }
}
