package ai.kiln.tokenizer;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * The real vocabularies (fetched by scripts/fetch-test-vocabularies.sh, which Maven runs in
 * generate-test-resources) and the reference fixtures recorded with Hugging Face
 * (scripts/record_tokenizer_fixtures.py). Loaded tokenizers are shared between test classes.
 */
final class TestVocabularies {
    static final String[] NAMES = {"llama3", "qwen3", "llama2"};
    private static final Map<String, Tokenizer> LOADED = new ConcurrentHashMap<>();
    private static final ObjectMapper JSON = new ObjectMapper();

    private TestVocabularies() {
    }

    static Path vocabularyRoot() {
        Path root = Path.of(System.getProperty("kiln.vocab.dir", "target/tokenizer-vocab"));
        if (!Files.isDirectory(root.resolve("llama3"))) {
            throw new IllegalStateException("test vocabularies missing under " + root.toAbsolutePath()
                    + "; run scripts/fetch-test-vocabularies.sh (mvn runs it in generate-test-resources)");
        }
        return root;
    }

    static Path directory(String name) {
        return vocabularyRoot().resolve(name);
    }

    static Tokenizer tokenizer(String name) {
        return LOADED.computeIfAbsent(name, n -> {
            try {
                return Tokenizer.load(directory(n));
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        });
    }

    /**
     * A variant of a real tokenizer.json: top-level fields replaced by the patch, and
     * "model.X" keys replacing one field of the model, as scripts/record_tokenizer_fixtures.py does.
     */
    static Tokenizer variant(String base, JsonNode patch) {
        try {
            com.fasterxml.jackson.databind.node.ObjectNode spec =
                    (com.fasterxml.jackson.databind.node.ObjectNode) JSON.readTree(directory(base).resolve("tokenizer.json").toFile());
            patch.fields().forEachRemaining(entry -> {
                if (entry.getKey().startsWith("model.")) {
                    ((com.fasterxml.jackson.databind.node.ObjectNode) spec.get("model"))
                            .set(entry.getKey().substring("model.".length()), entry.getValue());
                } else {
                    spec.set(entry.getKey(), entry.getValue());
                }
            });
            Path dir = Files.createTempDirectory("kiln-tokenizer-variant");
            dir.toFile().deleteOnExit();
            Path file = dir.resolve("tokenizer.json");
            JSON.writeValue(file.toFile(), spec);
            file.toFile().deleteOnExit();
            return Tokenizer.load(dir);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    static JsonNode fixture(String resourceName) {
        try (InputStream in = TestVocabularies.class.getResourceAsStream("/tokenizer/" + resourceName)) {
            if (in == null) {
                throw new IllegalStateException("missing test resource tokenizer/" + resourceName);
            }
            return JSON.readTree(in);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    static int[] ints(JsonNode array) {
        int[] out = new int[array.size()];
        for (int i = 0; i < out.length; i++) {
            out[i] = array.get(i).intValue();
        }
        return out;
    }

    /** Decodes id by id through an incremental decoder and concatenates what it emits. */
    static String streamDecode(Tokenizer tokenizer, int[] ids, boolean skipSpecialTokens) {
        IncrementalDecoder decoder = tokenizer.newIncrementalDecoder(skipSpecialTokens);
        StringBuilder out = new StringBuilder();
        for (int id : ids) {
            out.append(decoder.push(id));
        }
        return out.append(decoder.flush()).toString();
    }

    /** Shows invisible characters so that failure messages are readable. */
    static String visible(String text) {
        StringBuilder out = new StringBuilder("\"");
        text.codePoints().forEach(cp -> {
            if (cp < 0x20 || cp == 0x7F || (cp >= 0x80 && cp < 0xA0) || Character.getType(cp) == Character.FORMAT
                    || Character.isWhitespace(cp) && cp != ' ') {
                out.append(String.format("\\u%04X", cp));
            } else {
                out.appendCodePoint(cp);
            }
        });
        return out.append('"').toString();
    }
}
