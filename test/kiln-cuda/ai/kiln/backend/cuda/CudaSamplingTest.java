package ai.kiln.backend.cuda;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import ai.kiln.backend.Backend;
import ai.kiln.backend.HostTensors;
import ai.kiln.backend.cpu.CpuBackend;
import ai.kiln.model.ForwardBatch;
import ai.kiln.sampling.BackendSampler;
import ai.kiln.sampling.SamplerOutput;
import ai.kiln.sampling.SamplingBatch;
import ai.kiln.api.SamplingParams;
import ai.kiln.sampling.SampledLogprobs;
import ai.kiln.tensor.DType;
import ai.kiln.tensor.Tensor;
import ai.kiln.testing.Fixtures;
import ai.kiln.testing.SampledSequence;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * The CUDA sampler against the CPU backend's: given the same logits, the same ids (and
 * log-probabilities within 2e-5) at a 128k vocabulary for 256 rows of every kind of parameters,
 * step after step with their penalty tables evolving; a row's ids the same wherever it sits in
 * the batch; and on the fp32 fixtures, 64 sampled steps of seeded requests on the CUDA backend in
 * fp32 giving the CPU backend's tokens.
 */
@Tag("gpu")
class CudaSamplingTest {

    static final int V = 128_256;
    static final int ROWS = 256;

    @BeforeAll
    static void requireGpu() {
        String reason = CudaBackend.unavailableReason();
        if (reason != null) {
            System.out.println("CudaSamplingTest skipped: " + reason);
        }
        assumeTrue(reason == null, reason);
    }

    static SamplingParams kind(int i) {
        SamplingParams.Builder b = SamplingParams.builder().seed((long) i).maxTokens(64);
        switch (i % 8) {
            case 0 -> b.temperature(0);
            case 1 -> b.temperature(1.0);
            case 2 -> b.temperature(0.8).topP(0.95);
            case 3 -> b.temperature(0.7).topK(50).topP(0.9);
            case 4 -> b.temperature(1.0).minP(0.05).logprobs(5);
            case 5 -> b.temperature(0.9).repetitionPenalty(1.2).frequencyPenalty(0.5).presencePenalty(0.3);
            case 6 -> b.temperature(0).frequencyPenalty(1.5).logprobs(20);
            default -> b.temperature(1.3).topK(1 + i % 40).minTokens(8);
        }
        return b.build();
    }

    static Tensor upload(Backend backend, float[] values, int rows, int vocab) {
        Tensor t = backend.allocate(DType.F32, rows, vocab);
        Tensor host = HostTensors.floats(values, rows, vocab);
        backend.upload(t, host);
        HostTensors.release(host);
        return t;
    }

    static List<SampledSequence> rows(int count, SplittableRandom random) {
        List<SampledSequence> rows = new ArrayList<>();
        for (int i = 0; i < count; i++) {
            int[] prompt = random.ints(1 + random.nextInt(60), 0, 2000).toArray();
            rows.add(new SampledSequence(kind(i), 7000 + i, prompt, new int[] {0, 1, 2}));
        }
        return rows;
    }

    static void sample(BackendSampler sampler, Tensor logits, List<SampledSequence> rows, SamplerOutput out) {
        SamplingBatch batch = new SamplingBatch(rows.size());
        for (SampledSequence r : rows) {
            r.addTo(batch);
        }
        sampler.sample(logits, batch, out);
    }

    static void append(List<SampledSequence> rows, SamplerOutput out) {
        for (int i = 0; i < rows.size(); i++) {
            rows.get(i).append(out.tokenId(i));
        }
    }

    @Test
    void sameLogitsGiveTheCpuBackendsIdsStepAfterStep() {
        SplittableRandom random = new SplittableRandom(3);
        int steps = 8;
        try (CudaBackend gpu = new CudaBackend(0, DType.BF16); CpuBackend cpu = new CpuBackend(0, 2L << 30)) {
            BackendSampler onGpu = new BackendSampler(gpu, ROWS, V);
            BackendSampler onCpu = new BackendSampler(cpu, ROWS, V);
            List<SampledSequence> gpuRows = rows(ROWS, new SplittableRandom(5));
            List<SampledSequence> cpuRows = rows(ROWS, new SplittableRandom(5));
            SamplerOutput gpuOut = new SamplerOutput(ROWS);
            SamplerOutput cpuOut = new SamplerOutput(ROWS);
            long compared = 0;
            for (int step = 0; step < steps; step++) {
                float[] logits = new float[ROWS * V];
                for (int i = 0; i < logits.length; i++) {
                    logits[i] = (float) (2 * random.nextGaussian());
                }
                Tensor g = upload(gpu, logits, ROWS, V);
                Tensor c = upload(cpu, logits, ROWS, V);
                sample(onGpu, g, gpuRows, gpuOut);
                sample(onCpu, c, cpuRows, cpuOut);
                for (int i = 0; i < ROWS; i++) {
                    assertEquals(cpuOut.tokenId(i), gpuOut.tokenId(i), "step " + step + " row " + i + " " + kind(i));
                    SampledLogprobs a = cpuOut.logprobs(i);
                    SampledLogprobs b = gpuOut.logprobs(i);
                    assertEquals(a == null, b == null);
                    if (a != null) {
                        assertEquals(a.rank(), b.rank());
                        assertEquals(a.logprob(), b.logprob(), 2e-5);
                        for (int j = 0; j < a.topIds().length; j++) {
                            assertEquals(a.topIds()[j], b.topIds()[j]);
                            assertEquals(a.topLogprobs()[j], b.topLogprobs()[j], 2e-5);
                        }
                    }
                    compared++;
                }
                append(gpuRows, gpuOut);
                append(cpuRows, cpuOut);
                gpu.free(g);
                cpu.free(c);
            }
            System.out.printf("CUDA sampler: %d of %d ids equal to the CPU's (%d rows x %d steps, vocabulary %d)%n",
                    compared, compared, ROWS, steps, V);
            onGpu.close();
            onCpu.close();
        }
    }

    @Test
    void aRowsIdsDoNotDependOnItsPlaceInTheBatch() {
        SplittableRandom random = new SplittableRandom(9);
        float[] row = new float[V];
        for (int i = 0; i < V; i++) {
            row[i] = (float) (2 * random.nextGaussian());
        }
        SamplingParams params = SamplingParams.builder().temperature(0.8).topP(0.95).repetitionPenalty(1.1).build();
        try (CudaBackend gpu = new CudaBackend(0, DType.BF16)) {
            int[] expected = null;
            for (int position : new int[] {0, 1, 137, 255}) {
                float[] logits = new float[ROWS * V];
                for (int i = 0; i < logits.length; i++) {
                    logits[i] = (float) random.nextGaussian();
                }
                System.arraycopy(row, 0, logits, position * V, V);
                Tensor t = upload(gpu, logits, ROWS, V);
                BackendSampler sampler = new BackendSampler(gpu, ROWS, V);
                List<SampledSequence> rows = rows(ROWS, new SplittableRandom(position));
                rows.set(position, new SampledSequence(params, 42, new int[] {5, 6, 7}, new int[0]));
                int[] ids = new int[16];
                SamplerOutput out = new SamplerOutput(ROWS);
                for (int s = 0; s < ids.length; s++) {
                    sample(sampler, t, rows, out);
                    ids[s] = out.tokenId(position);
                    append(rows, out);
                }
                if (expected == null) {
                    expected = ids;
                } else {
                    assertArrayEquals(expected, ids, "at batch position " + position);
                }
                sampler.close();
                gpu.free(t);
            }
        }
    }

    static List<Fixtures.Model> fp32Fixtures() {
        return Fixtures.all().stream().filter(f -> f.dtype().equals("float32")).toList();
    }

    /**
     * Seeded sampled requests on the fp32 fixtures, the CUDA backend in fp32 and the CPU backend
     * each sampling its own logits along the same token history: 64 equal tokens per request.
     */
    @ParameterizedTest(name = "{0}")
    @MethodSource("fp32Fixtures")
    void fp32FixturesSampleTheCpuBackendsTokens(Fixtures.Model fixture) {
        int steps = 64;
        try (CudaFixtureModelTest.Loaded gpu = CudaFixtureModelTest.Loaded.of(new CudaBackend(0, DType.F32), fixture);
                CudaFixtureModelTest.Loaded cpu = CudaFixtureModelTest.Loaded.of(new CpuBackend(0, 1L << 30), fixture)) {
            int vocab = gpu.model().config().vocabSize();
            List<SamplingParams> requests = List.of(
                    SamplingParams.builder().temperature(1.0).build(),
                    SamplingParams.builder().temperature(0.8).topP(0.95).build(),
                    SamplingParams.builder().temperature(0.7).topK(20).minP(0.05).frequencyPenalty(0.5).build(),
                    SamplingParams.builder().temperature(1.2).repetitionPenalty(1.3).presencePenalty(0.4).build());
            int equal = 0;
            for (int r = 0; r < requests.size(); r++) {
                int[] prompt = fixture.records().get(r % fixture.records().size()).promptTokenIds();
                BackendSampler gpuSampler = new BackendSampler(gpu.backend(), 1, vocab);
                BackendSampler cpuSampler = new BackendSampler(cpu.backend(), 1, vocab);
                SampledSequence gpuRow = new SampledSequence(requests.get(r), 1234 + r, prompt, new int[0]);
                SampledSequence cpuRow = new SampledSequence(requests.get(r), 1234 + r, prompt, new int[0]);
                int[] blockTable = new int[256 / CudaFixtureModelTest.BLOCK_SIZE]; // the Loaded model's row length
                for (int b = 0; b < blockTable.length; b++) {
                    blockTable[b] = b + 1;
                }
                int start = 0;
                SamplerOutput gpuOut = new SamplerOutput(1);
                SamplerOutput cpuOut = new SamplerOutput(1);
                for (int s = 0; s < steps; s++) {
                    ForwardBatch batch = CudaFixtureModelTest.step(cpuRow.tokensFrom(start), start,
                            blockTable);
                    Tensor g = gpu.model().forward(batch, gpu.cache());
                    Tensor c = cpu.model().forward(batch, cpu.cache());
                    sample(gpuSampler, g, List.of(gpuRow), gpuOut);
                    sample(cpuSampler, c, List.of(cpuRow), cpuOut);
                    assertEquals(cpuOut.tokenId(0), gpuOut.tokenId(0),
                            fixture + " request " + r + " (" + requests.get(r) + ") step " + s);
                    equal++;
                    start = cpuRow.numTokens();
                    append(List.of(gpuRow), gpuOut);
                    append(List.of(cpuRow), cpuOut);
                }
                gpuSampler.close();
                cpuSampler.close();
            }
            System.out.printf("%s: %d/%d sampled tokens on CUDA fp32 equal to the CPU's%n", fixture, equal, equal);
        }
    }
}
