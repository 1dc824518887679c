package ai.kiln.testing;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;

/**
 * The tiny reference models under test/resources/fixtures (made by scripts/make_fixtures.py with
 * Hugging Face transformers) and their recorded outputs.
 */
public final class Fixtures {

    public static final Path ROOT = Path.of("test/resources/fixtures");

    /**
     * One recorded prompt: its ids, the last-position logits and 32 greedy tokens; Hugging Face's
     * bf16 computation's logits at that position, and its relative error against fp32 at the first
     * 16 positions of the greedy path (teacher-forced).
     */
    public record Record(String prompt, int[] promptTokenIds, float[] logits, int[] greedyTokenIds,
            float[] logitsBf16Compute, float[] bf16PathErrors) {
    }

    /** A fixture model directory and its reference.json. */
    public record Model(String name, Path dir, String architecture, String dtype, int[] eosTokenIds,
            List<Record> records) {
        @Override
        public String toString() {
            return name;
        }
    }

    private Fixtures() {
    }

    public static List<Model> all() {
        try (Stream<Path> dirs = Files.list(ROOT)) {
            return dirs.filter(d -> Files.isRegularFile(d.resolve("reference.json"))).sorted().map(Fixtures::load)
                    .toList();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    public static Model named(String name) {
        return load(ROOT.resolve(name));
    }

    public static Model load(Path dir) {
        return load(dir, "reference.json");
    }

    /**
     * A fixture with the records of another reference file in its directory, e.g.
     * reference-int8.json (scripts/record_int8_reference.py: Hugging Face with Kiln's int8 weights).
     */
    public static Model load(Path dir, String referenceFile) {
        try {
            JsonNode root = new ObjectMapper().readTree(dir.resolve(referenceFile).toFile());
            List<Record> records = new ArrayList<>();
            for (JsonNode r : root.get("records")) {
                records.add(new Record(r.get("prompt").asText(), ints(r.get("prompt_token_ids")), floats(r.get("logits")),
                        ints(r.get("greedy_token_ids")),
                        r.has("logits_bf16_compute") ? floats(r.get("logits_bf16_compute")) : null,
                        r.has("bf16_path_errors") ? floats(r.get("bf16_path_errors")) : null));
            }
            return new Model(dir.getFileName().toString(), dir, root.get("architecture").asText(),
                    root.get("dtype").asText(), ints(root.get("eos_token_ids")), records);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    public static int[] ints(JsonNode array) {
        int[] out = new int[array.size()];
        for (int i = 0; i < out.length; i++) {
            out[i] = array.get(i).asInt();
        }
        return out;
    }

    public static float[] floats(JsonNode array) {
        float[] out = new float[array.size()];
        for (int i = 0; i < out.length; i++) {
            out[i] = (float) array.get(i).asDouble();
        }
        return out;
    }

    /** The index of the largest value (the first on ties). */
    public static int argmax(float[] values) {
        int best = 0;
        for (int i = 1; i < values.length; i++) {
            if (values[i] > values[best]) {
                best = i;
            }
        }
        return best;
    }

    /** max |actual - expected| / max |expected|: the error relative to the logits' scale. */
    public static double relativeError(float[] actual, float[] expected) {
        if (actual.length != expected.length) {
            return Double.POSITIVE_INFINITY;
        }
        double maxDiff = 0;
        double maxRef = 0;
        for (int i = 0; i < actual.length; i++) {
            double diff = Math.abs((double) actual[i] - expected[i]);
            if (Double.isNaN(diff)) {
                return Double.POSITIVE_INFINITY;
            }
            maxDiff = Math.max(maxDiff, diff);
            maxRef = Math.max(maxRef, Math.abs(expected[i]));
        }
        return maxDiff / maxRef;
    }
}
