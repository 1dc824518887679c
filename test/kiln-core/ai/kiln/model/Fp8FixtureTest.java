package ai.kiln.model;

import ai.kiln.backend.Backend;
import ai.kiln.testing.Fixtures;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Supplier;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * The FP8 checkpoints of scripts/make_fp8_fixtures.py, one per published form (compressed-tensors
 * per channel with dynamic inputs and per tensor weight-only, AutoFP8 static, fbgemm_fp8), on the
 * CPU backend against PyTorch running the same FP8 numerics in fp32 (reference-fp8.json); and
 * quantization fp8 of a bf16 checkpoint against PyTorch quantising it the same way.
 */
public class Fp8FixtureTest {

    /**
     * NOTE: both sides quantise the same weights and round activations to e4m3 by the same rule,
     * so the logits differ by fp32 summation order alone: a few ulps per product, which the e4m3
     * rounding of the next layer's inputs can turn into one e4m3 step (2^-4 relative) for an
     * activation that lies within those ulps of a rounding boundary. Measured: below 1e-6 relative;
     * the bound leaves room for a few such steps and stays far below what a missing input
     * quantisation gives (7e-2 to 1.4e-1 on the dynamic checkpoint). Where such steps cascade, the
     * reference itself moves further under ulp-sized noise on its inputs (its noise_logits_error,
     * up to 7e-2 on llama3-gqa-bf16's longer prompts): such a record allows twice that instead.
     * The greedy tokens recorded are those that survive the same noise (make_fp8_fixtures.py's
     * stable_prefix), compared exactly.
     */
    static final double FP8_LOGITS_TOLERANCE = 1e-4;

    /** Each record's bound: the fixed one, or twice what noise moves the reference, by prompt. */
    private static Fixtures.Model withBounds(String name, Map<String, Double> bounds) {
        Path dir = Fixtures.ROOT.resolve(name);
        try {
            for (JsonNode record : new ObjectMapper().readTree(dir.resolve("reference-fp8.json").toFile()).get("records")) {
                bounds.put(record.get("prompt").asText(),
                        Math.max(FP8_LOGITS_TOLERANCE, 2 * record.get("noise_logits_error").asDouble()));
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return Fixtures.load(dir, "reference-fp8.json");
    }

    private static void run(String name, WeightQuantization quantization) {
        Map<String, Double> bounds = new HashMap<>();
        Fixtures.Model fixture = withBounds(name, bounds);
        FixtureModelTest.runFixture(fixture, quantization, record -> bounds.get(record.prompt()));
    }

    /**
     * The fixture's records on a GPU backend whose quantised products run on the FP8 tensor cores:
     * each record's logits within its CPU bound or twice the error the tensor cores give the
     * PyTorch reference itself (+ {@link #FP8_LOGITS_TOLERANCE}), whichever is larger, and the
     * greedy tokens that run reproduced compared exactly; both from reference-fp8-tensor-cores.json
     * (make_fp8_fixtures.py --tensor-core-error, recorded on an H200).
     */
    public static void runOnTensorCores(String name, WeightQuantization quantization, Supplier<Backend> backends) {
        Map<String, Double> bounds = new HashMap<>();
        Fixtures.Model fixture = withBounds(name, bounds);
        Path sidecar = fixture.dir().resolve("reference-fp8-tensor-cores.json");
        Map<String, Integer> reproduced = new HashMap<>();
        try {
            for (JsonNode record : new ObjectMapper().readTree(sidecar.toFile()).get("records")) {
                String prompt = record.get("prompt").asText();
                bounds.merge(prompt, 2 * record.get("logits_error").asDouble() + FP8_LOGITS_TOLERANCE, Math::max);
                reproduced.put(prompt, record.get("greedy_tokens_reproduced").asInt());
            }
        } catch (IOException e) {
            throw new UncheckedIOException(sidecar + " (scripts/make_fp8_fixtures.py --tensor-core-error writes it)", e);
        }
        FixtureModelTest.runFixture(fixture, quantization, record -> bounds.get(record.prompt()),
                record -> reproduced.get(record.prompt()), backends);
    }

    public static List<String> checkpoints() {
        return List.of("llama3-gqa-fp8-ct-channel-dynamic", "llama3-gqa-fp8-ct-tensor-w8a16", "llama3-gqa-fp8-static",
                "llama3-gqa-fp8-fbgemm");
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("checkpoints")
    void logitsAndGreedyTokensMatchTheFp8Reference(String name) {
        run(name, WeightQuantization.NONE);
    }

    /**
     * quantization fp8 of llama3-gqa-bf16: each projection's rows quantised to e4m3 (amax / 448),
     * inputs per token, the LM head as stored; the same bound and reason as the checkpoints'.
     */
    @Test
    void quantizationFp8OfABf16CheckpointMatchesItsEmulation() {
        run("llama3-gqa-bf16", WeightQuantization.FP8);
    }

    /** An FP8 checkpoint under quantization fp8 loads as stored, and runs as it does without the flag. */
    @Test
    void quantizationFp8OfAnFp8CheckpointKeepsItsWeights() {
        run("llama3-gqa-fp8-static", WeightQuantization.FP8);
    }
}
