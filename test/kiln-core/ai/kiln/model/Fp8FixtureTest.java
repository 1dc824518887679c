package ai.kiln.model;

import ai.kiln.testing.Fixtures;
import java.util.List;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * The FP8 checkpoints of scripts/make_fp8_fixtures.py, one per published form (compressed-tensors
 * per channel with dynamic inputs and per tensor weight-only, AutoFP8 static, fbgemm_fp8), on the
 * CPU backend against PyTorch running the same FP8 numerics in fp32 (reference-fp8.json).
 */
class Fp8FixtureTest {

    /**
     * NOTE: both sides quantise the same weights and round activations to e4m3 by the same rule,
     * so the logits differ by fp32 summation order alone: a few ulps per product, which the e4m3
     * rounding of the next layer's inputs can turn into one e4m3 step (2^-4 relative) for an
     * activation that lies within those ulps of a rounding boundary. Measured: below 1e-6 relative;
     * the bound leaves room for a few such steps and stays far below what a missing input
     * quantisation gives (7e-2 to 1.4e-1 on the dynamic checkpoint). The greedy tokens recorded are
     * those that survive ulp-sized noise (make_fp8_fixtures.py's stable_prefix), compared exactly.
     */
    static final double FP8_LOGITS_TOLERANCE = 1e-4;

    static List<String> checkpoints() {
        return List.of("llama3-gqa-fp8-ct-channel-dynamic", "llama3-gqa-fp8-ct-tensor-w8a16", "llama3-gqa-fp8-static",
                "llama3-gqa-fp8-fbgemm");
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("checkpoints")
    void logitsAndGreedyTokensMatchTheFp8Reference(String name) {
        FixtureModelTest.runFixture(Fixtures.load(Fixtures.ROOT.resolve(name), "reference-fp8.json"),
                WeightQuantization.NONE, FP8_LOGITS_TOLERANCE);
    }
}
