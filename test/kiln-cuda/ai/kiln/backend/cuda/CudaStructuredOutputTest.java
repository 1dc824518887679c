package ai.kiln.backend.cuda;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import ai.kiln.api.Engine;
import ai.kiln.api.EngineOptions;
import ai.kiln.api.FinishReason;
import ai.kiln.api.GenerateRequest;
import ai.kiln.api.GenerateResult;
import ai.kiln.api.SamplingParams;
import ai.kiln.api.StructuredOutput;
import ai.kiln.backend.Backend;
import ai.kiln.backend.HostTensors;
import ai.kiln.backend.cpu.CpuBackend;
import ai.kiln.tensor.DType;
import ai.kiln.tensor.Tensor;
import ai.kiln.testing.Fixtures;
import ai.kiln.testing.SchemaValidation;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * Structured output and logit bias on the CUDA backend: maskLogits and addLogitBias equal to the
 * CPU backend's bit for bit at a 128k vocabulary, and constrained requests through the engine on
 * CUDA (greedy and sampled) whose completed outputs the schema validator accepts.
 */
@Tag("gpu")
class CudaStructuredOutputTest {

    static final int V = 128_256;
    static final int ROWS = 64;
    static final String SCHEMA = """
            {"type": "object", "properties": {"name": {"type": "string", "maxLength": 6},
             "n": {"type": "integer", "minimum": 0, "maximum": 99}, "ok": {"type": "boolean"}},
             "required": ["name", "n", "ok"], "additionalProperties": false}""";

    @BeforeAll
    static void requireGpu() {
        String reason = CudaBackend.unavailableReason();
        if (reason != null) {
            System.out.println("CudaStructuredOutputTest skipped: " + reason);
        }
        assumeTrue(reason == null, reason);
    }

    static float[] run(Backend backend, float[] logits, int[] masks, int[] maskRows, int[] biasEntries) {
        Tensor l = backend.allocate(DType.F32, ROWS, V);
        Tensor host = HostTensors.floats(logits, ROWS, V);
        backend.upload(l, host);
        HostTensors.release(host);
        Tensor m = backend.allocate(DType.I32, maskRows.length, (V + 31) / 32);
        backend.copyFromHost(m, masks, masks.length);
        Tensor r = backend.allocate(DType.I32, maskRows.length);
        backend.copyFromHost(r, maskRows, maskRows.length);
        Tensor b = backend.allocate(DType.I32, biasEntries.length / 3, 3);
        backend.copyFromHost(b, biasEntries, biasEntries.length);
        backend.addLogitBias(l, b, biasEntries.length / 3);
        backend.maskLogits(l, m, r, maskRows.length);
        float[] out = new float[ROWS * V];
        backend.copyToHost(l, out, out.length);
        return out;
    }

    @Test
    void maskAndBiasEqualTheCpuBackends() {
        SplittableRandom random = new SplittableRandom(19);
        float[] logits = new float[ROWS * V];
        for (int i = 0; i < logits.length; i++) {
            logits[i] = (float) (random.nextDouble() * 20 - 10);
        }
        int[] maskRows = {3, 0, 63, 17, 40};
        int[] masks = new int[maskRows.length * ((V + 31) / 32)];
        for (int i = 0; i < masks.length; i++) {
            masks[i] = random.nextInt() & random.nextInt();
        }
        int[] bias = new int[3 * 500];
        for (int k = 0; k < 500; k++) {
            bias[3 * k] = k % ROWS;
            bias[3 * k + 1] = (k / ROWS) * 1000 + random.nextInt(1000); // distinct (row, id) pairs
            bias[3 * k + 2] = Float.floatToRawIntBits((float) (random.nextDouble() * 200 - 100));
        }
        float[] cpu;
        try (CpuBackend backend = new CpuBackend(0, 2L << 30)) {
            cpu = run(backend, logits, masks, maskRows, bias);
        }
        float[] gpu;
        try (CudaBackend backend = new CudaBackend(0, DType.BF16)) {
            gpu = run(backend, logits, masks, maskRows, bias);
        }
        assertArrayEquals(cpu, gpu);
    }

    @Test
    void constrainedRequestsOnCudaGiveValidOutputs() {
        EngineOptions options = EngineOptions.builder().device("cuda").maxModelLen(512).build();
        try (Engine engine = Engine.create(Fixtures.named("llama3-gqa").dir(), options)) {
            for (SamplingParams params : List.of(SamplingParams.builder().temperature(0).maxTokens(120).build(),
                    SamplingParams.builder().n(8).seed(3L).maxTokens(120).build())) {
                GenerateResult r = engine.generate(GenerateRequest.of("JSON:", params.toBuilder()
                        .structuredOutput(StructuredOutput.jsonSchema(SCHEMA)).build()));
                for (GenerateResult.Completion c : r.completions()) {
                    if (c.finishReason() == FinishReason.STOP) {
                        assertEquals(List.of(), SchemaValidation.problems(SCHEMA, c.text()), c.text());
                    } else {
                        assertEquals(FinishReason.LENGTH, c.finishReason(), c.text());
                    }
                }
            }
        }
    }
}
