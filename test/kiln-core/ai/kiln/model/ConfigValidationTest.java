package ai.kiln.model;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.kiln.testing.Fixtures;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.fasterxml.jackson.databind.util.RawValue;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A config.json or generation_config.json field of the wrong type, out of its range or outside
 * the vocabulary is refused with a message naming the file and the field, never read as absent,
 * wrapped or clamped. Each case corrupts one field of a fixture's config.
 */
class ConfigValidationTest {

    private static final ObjectMapper JSON = new ObjectMapper();

    @TempDir
    Path dir;

    /**
     * @param fixture   the model directory whose config is corrupted
     * @param file      config.json or generation_config.json
     * @param field     the field, "a.b" for a field of an object
     * @param value     the JSON text written as its value verbatim (null: the field is removed)
     * @param fragments what the error message must contain
     */
    record Case(String fixture, String file, String field, String value, List<String> fragments) {
        @Override
        public String toString() {
            return file + " " + field + ": " + (value == null ? "(removed)" : value);
        }
    }

    private static Case config(String field, String value, String... fragments) {
        return new Case("llama3-gqa", "config.json", field, value, List.of(fragments));
    }

    private static Case ropeScaled(String field, String value, String... fragments) {
        return new Case("llama31-rope-scaled-bias-classic", "config.json", field, value, List.of(fragments));
    }

    private static Case ropeParameters(String field, String value, String... fragments) {
        return new Case("llama2-mha", "config.json", field, value, List.of(fragments));
    }

    private static Case generation(String field, String value, String... fragments) {
        return new Case("llama3-gqa", "generation_config.json", field, value, List.of(fragments));
    }

    static Stream<Case> refused() {
        String intRange = "must be an integer in [";
        return Stream.of(
                // Wrong JSON types, which were read as "absent" and silently changed the model.
                config("rope_theta", "{}", "rope_theta must be a number > 0, got an object"),
                config("rope_theta", "null", "rope_theta must be a number > 0, got null"),
                config("rope_theta", "\"500000\"", "rope_theta must be a number > 0, got the string \"500000\""),
                config("rope_theta", "-1", "rope_theta must be a number > 0, got -1"),
                config("rms_norm_eps", "[1]", "rms_norm_eps must be a number > 0, got an array [1]"),
                config("rms_norm_eps", "null", "rms_norm_eps must be a number > 0, got null"),
                config("rms_norm_eps", "0", "rms_norm_eps must be a number > 0, got 0"),
                config("tie_word_embeddings", "-1", "tie_word_embeddings must be true or false, got -1"),
                config("tie_word_embeddings", "\"true\"", "tie_word_embeddings must be true or false"),
                config("tie_word_embeddings", "null", "tie_word_embeddings must be true or false, got null"),
                config("attention_bias", "1", "attention_bias must be true or false, got 1"),
                config("mlp_bias", "\"no\"", "mlp_bias must be true or false"),
                config("hidden_act", "7", "hidden_act must be a string, got 7"),
                config("torch_dtype", "16", "torch_dtype must be a string or null, got 16"),
                config("eos_token_id", "\"str\"", "eos_token_id must be an integer or a list of integers in [0, 512)",
                        "got the string \"str\""),
                config("eos_token_id", "[508, \"511\"]", "eos_token_id must be an integer or a list of integers"),
                config("eos_token_id", "[508, null]", "eos_token_id must be an integer or a list of integers"),
                config("eos_token_id", "508.0", "eos_token_id must be an integer or a list of integers"),
                config("bos_token_id", "1.5", "bos_token_id must be an integer in [0, 512)", "got 1.5"),
                config("bos_token_id", "\"507\"", "bos_token_id must be an integer in [0, 512)"),
                config("bos_token_id", "true", "bos_token_id must be an integer in [0, 512)"),
                config("rope_scaling", "-1", "rope_scaling must be an object or null, got -1"),
                config("rope_scaling", "\"llama3\"", "rope_scaling must be an object or null"),
                config("rope_scaling", "[]", "rope_scaling must be an object or null, got an array []"),
                config("rope_parameters", "5", "rope_parameters must be an object or null, got 5"),
                config("architectures", "[5]", "architectures[0] must be a string, got 5"),
                config("num_key_value_heads", "{}", "num_key_value_heads " + intRange + "1, 4096], got an object"),
                config("head_dim", "\"16\"", "head_dim " + intRange + "1, 4096]"),
                config("num_hidden_layers", "2.0", "num_hidden_layers " + intRange + "1, 4096], got 2.0"),
                config("intermediate_size", "true", "intermediate_size " + intRange + "1, 4194304], got true"),
                config("vocab_size", "\"512\"", "vocab_size " + intRange + "1, 2147483647]"),
                config("vocab_size", null, "vocab_size is missing"),

                // Integers outside their range, which wrapped when narrowed to an int.
                config("max_position_embeddings", "4294967808",
                        "max_position_embeddings " + intRange + "1, 1073741824], got 4294967808"),
                config("max_position_embeddings", "1000000000000",
                        "max_position_embeddings " + intRange + "1, 1073741824], got 1000000000000"),
                config("max_position_embeddings", "100000000000000000000000",
                        "max_position_embeddings " + intRange + "1, 1073741824], got 100000000000000000000000"),
                config("max_position_embeddings", "null", "max_position_embeddings " + intRange + "1, 1073741824], got null"),
                config("max_position_embeddings", "0", "max_position_embeddings " + intRange + "1, 1073741824], got 0"),
                config("num_attention_heads", "1e9", "num_attention_heads " + intRange + "1, 4096], got 1.0E9"),
                config("num_attention_heads", "1000000000", "num_attention_heads " + intRange + "1, 4096], got 1000000000"),
                config("hidden_size", "1000000000000", "hidden_size " + intRange + "1, 1048576], got 1000000000000"),
                config("vocab_size", "4294967808", "vocab_size " + intRange + "1, 2147483647], got 4294967808"),
                config("vocab_size", "-5", "vocab_size " + intRange + "1, 2147483647], got -5"),
                config("num_hidden_layers", "4294967298", "num_hidden_layers " + intRange + "1, 4096], got 4294967298"),

                // Special tokens outside the vocabulary.
                config("eos_token_id", "512", "eos_token_id must be an integer or a list of integers in [0, 512)",
                        "got 512"),
                config("eos_token_id", "[508, 100000]", "eos_token_id", "[0, 512)", "got an array [508,100000]"),
                config("eos_token_id", "-1", "eos_token_id", "[0, 512)", "got -1"),
                config("bos_token_id", "512", "bos_token_id must be an integer in [0, 512)", "got 512"),
                config("bos_token_id", "-1", "bos_token_id must be an integer in [0, 512)", "got -1"),
                generation("eos_token_id", "\"str\"", "generation_config.json: eos_token_id must be an integer or a list"),
                generation("eos_token_id", "[508, 600]", "generation_config.json: eos_token_id", "[0, 512)"),
                generation("bos_token_id", "4294967808", "generation_config.json: bos_token_id", "[0, 512)"),

                // Fields of rope_scaling and rope_parameters.
                ropeScaled("rope_scaling.factor", "\"8\"", "rope_scaling.factor must be a number > 0, got the string \"8\""),
                ropeScaled("rope_scaling.factor", null, "rope_scaling.factor is missing"),
                ropeScaled("rope_scaling.low_freq_factor", "[]", "rope_scaling.low_freq_factor must be a number > 0"),
                ropeScaled("rope_scaling.high_freq_factor", null, "rope_scaling.high_freq_factor is missing"),
                ropeScaled("rope_scaling.original_max_position_embeddings", "4294967808",
                        "rope_scaling.original_max_position_embeddings " + intRange + "1, 1073741824], got 4294967808"),
                ropeScaled("rope_scaling.rope_type", "3", "rope_scaling.rope_type must be a string, got 3"),
                ropeParameters("rope_parameters.rope_theta", "{}", "rope_parameters.rope_theta must be a number > 0, got an object"),
                ropeParameters("rope_parameters.rope_theta", "null", "rope_parameters.rope_theta must be a number > 0, got null"));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("refused")
    void refused(Case c) throws IOException {
        Path model = corrupted(c);
        ModelLoadException error = assertThrows(ModelLoadException.class, () -> ModelConfig.load(model),
                "loading with " + c + " should fail");
        assertTrue(error.getMessage().startsWith(model.resolve(c.file()).toString() + ": "),
                "message '" + error.getMessage() + "' should start with the file");
        for (String fragment : c.fragments()) {
            assertTrue(error.getMessage().contains(fragment),
                    "message '" + error.getMessage() + "' should contain '" + fragment + "'");
        }
    }

    /** JSON null where transformers reads null as "none" (or "derive it") is accepted. */
    @Test
    void nullWhereTransformersAcceptsIt() throws IOException {
        Path model = corrupted(config("rope_scaling", "null"));
        for (String field : List.of("head_dim", "num_key_value_heads", "bos_token_id", "eos_token_id", "torch_dtype",
                "rope_parameters")) {
            edit(model.resolve("config.json"), field, "null");
        }
        Files.delete(model.resolve("generation_config.json"));
        ModelConfig config = ModelConfig.load(model);
        assertEquals(16, config.headDim()); // hidden_size 64 / 4 heads
        assertEquals(4, config.numKvHeads());
        assertEquals(-1, config.bosTokenId());
        assertEquals(List.of(), config.eosTokenIds());
        assertEquals(RopeScaling.NONE, config.ropeScaling());
    }

    @Test
    void everyFixtureConfigStillLoads() throws IOException {
        try (Stream<Path> dirs = Files.list(Fixtures.ROOT)) {
            for (Path fixture : dirs.filter(Files::isDirectory).toList()) {
                ModelConfig config = ModelConfig.load(fixture);
                assertTrue(config.vocabSize() > 0, fixture.toString());
            }
        }
    }

    private Path corrupted(Case c) throws IOException {
        Path model = dir.resolve(c.fixture());
        Files.createDirectories(model);
        for (String name : List.of("config.json", "generation_config.json")) {
            Path source = Fixtures.ROOT.resolve(c.fixture()).resolve(name);
            if (Files.exists(source)) {
                Files.copy(source, model.resolve(name));
            }
        }
        edit(model.resolve(c.file()), c.field(), c.value());
        return model;
    }

    /** Sets (or, for a null value, removes) one field, writing the value's JSON text verbatim. */
    private static void edit(Path file, String field, String value) throws IOException {
        ObjectNode root = (ObjectNode) JSON.readTree(file.toFile());
        ObjectNode parent = root;
        String name = field;
        int dot = field.indexOf('.');
        if (dot >= 0) {
            parent = (ObjectNode) root.get(field.substring(0, dot));
            name = field.substring(dot + 1);
        }
        if (value == null) {
            assertTrue(parent.has(name), "the fixture has " + field);
            parent.remove(name);
        } else {
            parent.putRawValue(name, new RawValue(value));
        }
        Files.writeString(file, JSON.writeValueAsString(root));
    }
}
