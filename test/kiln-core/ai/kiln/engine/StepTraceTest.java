package ai.kiln.engine;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.kiln.api.EngineOptions;
import ai.kiln.api.GenerateRequest;
import ai.kiln.api.GenerateResult;
import ai.kiln.api.SamplingParams;
import ai.kiln.testing.Fixtures;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The step trace (-Dkiln.stepTrace): a header and one line per step whose shape adds up to what
 * the requests computed: every prompt token once as a prompt token, every generated token sampled
 * once, each step's timings non-negative.
 */
class StepTraceTest {

    @Test
    void oneLinePerStepAccountsForEveryToken(@TempDir Path dir) throws Exception {
        Fixtures.Model fixture = Fixtures.named("llama3-gqa");
        Path trace = dir.resolve("steps.csv");
        int[][] prompts = {{1, 2, 3, 4, 5, 6, 7}, {9, 8, 7}, {5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5}};
        int maxTokens = 6;
        System.setProperty(StepTrace.PROPERTY, trace.toString());
        try (LocalEngine engine = LocalEngine.create(fixture.dir(), EngineOptions.builder().threads(2)
                .kvCacheBytes(8L << 20).maxModelLen(256).maxBatchedTokens(8).build())) {
            List<CompletableFuture<GenerateResult>> results = new ArrayList<>();
            for (int[] prompt : prompts) {
                results.add(engine.submit(GenerateRequest.ofTokens(prompt, SamplingParams.greedy(maxTokens))).result());
            }
            for (CompletableFuture<GenerateResult> r : results) {
                r.get();
            }
        } finally {
            System.clearProperty(StepTrace.PROPERTY);
        }
        List<String> lines = Files.readAllLines(trace);
        assertEquals("step,start_us,tokens,seqs,prefill_tokens,sampled,max_seq_len,schedule_us,launch_us,overlapped_us,"
                + "wait_us,update_us", lines.get(0));
        long prefill = 0, sampled = 0, tokens = 0;
        long previousStart = -1;
        for (int i = 1; i < lines.size(); i++) {
            long[] f = java.util.Arrays.stream(lines.get(i).split(",")).mapToLong(Long::parseLong).toArray();
            assertEquals(12, f.length, lines.get(i));
            assertEquals(i - 1, f[0], "step number");
            assertTrue(f[1] >= previousStart, "start times in order");
            previousStart = f[1];
            assertTrue(f[2] <= 8 && f[3] <= f[2] && f[4] <= f[2], "shape within the budget: " + lines.get(i));
            for (int c = 7; c < 12; c++) {
                assertTrue(f[c] >= 0, "timings: " + lines.get(i));
            }
            tokens += f[2];
            prefill += f[4];
            sampled += f[5];
        }
        int promptTokens = 0;
        for (int[] p : prompts) {
            promptTokens += p.length;
        }
        assertEquals(promptTokens, prefill, "every prompt token computed once, as a prompt token");
        assertEquals((long) prompts.length * maxTokens, sampled, "every generated token sampled once");
        // The last token of each request is sampled but never fed back.
        assertEquals(promptTokens + (long) prompts.length * (maxTokens - 1), tokens, "tokens computed");
    }
}
