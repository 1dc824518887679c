package ai.kiln.api;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import java.util.function.UnaryOperator;
import org.junit.jupiter.api.Test;

/** SamplingParams: vLLM's defaults, and a message naming the field for each bad value. */
class SamplingParamsTest {

    @Test
    void defaultsAreVllms() {
        SamplingParams p = SamplingParams.builder().build();
        assertEquals(1, p.n());
        assertEquals(1.0, p.temperature());
        assertEquals(1.0, p.topP());
        assertEquals(0, p.topK());
        assertEquals(0.0, p.minP());
        assertEquals(16, p.maxTokens());
        assertNull(p.seed());
        assertNull(p.logprobs());
        assertTrue(p.skipSpecialTokens());
        assertFalse(p.isGreedy());
        assertFalse(p.hasPenalties());
        assertTrue(SamplingParams.greedy(8).isGreedy());
        assertEquals(p, p.toBuilder().build());
    }

    private static void rejects(String message, UnaryOperator<SamplingParams.Builder> change) {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> change.apply(SamplingParams.builder()).build());
        assertEquals(message, e.getMessage());
    }

    @Test
    void badValuesAreNamed() {
        rejects("n must be in [1, 128], got 0", b -> b.n(0));
        rejects("temperature must be a finite number >= 0, got -0.5", b -> b.temperature(-0.5));
        rejects("temperature must be a finite number >= 0, got NaN", b -> b.temperature(Double.NaN));
        rejects("top_p must be in (0, 1], got 0.0", b -> b.topP(0));
        rejects("top_p must be in (0, 1], got 1.5", b -> b.topP(1.5));
        rejects("top_k must be -1 or 0 (off) or >= 1, got -2", b -> b.topK(-2));
        rejects("min_p must be in [0, 1], got 1.1", b -> b.minP(1.1));
        rejects("repetition_penalty must be a finite number > 0, got 0.0", b -> b.repetitionPenalty(0));
        rejects("presence_penalty must be in [-2, 2], got 2.5", b -> b.presencePenalty(2.5));
        rejects("frequency_penalty must be in [-2, 2], got -3.0", b -> b.frequencyPenalty(-3));
        rejects("max_tokens must be >= 1, got 0", b -> b.maxTokens(0));
        rejects("min_tokens must be >= 0, got -1", b -> b.minTokens(-1));
        rejects("min_tokens (20) must be <= max_tokens (16)", b -> b.minTokens(20));
        rejects("stop: stop strings must not be empty", b -> b.stop(""));
        rejects("stop_token_ids must hold token ids >= 0, got -4", b -> b.stopTokenIds(List.of(-4)));
        rejects("logprobs must be in [0, 20], got 21", b -> b.logprobs(21));
    }

    @Test
    void offValuesAreAccepted() {
        assertFalse(SamplingParams.builder().topK(-1).build().hasTopK());
        assertEquals(null, SamplingParams.builder().maxTokens(null).build().maxTokens());
        assertTrue(SamplingParams.builder().temperature(1e-6).build().isGreedy());
    }
}
