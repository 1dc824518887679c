package ai.kiln.backend.cuda;

import ai.kiln.model.WeightQuantization;
import ai.kiln.tensor.DType;
import java.nio.file.Path;
import java.util.Random;

/**
 * FP8 against bf16 on one model (e.g. the Llama-3-8B shape): the model loaded twice on the GPU, as
 * stored (bf16) and under quantization fp8; a 128-token random prompt, then 128 decode steps
 * teacher-forced along the bf16 model's greedy path, so both see the same history. Prints a JSON
 * line: the logits' relative error (max |fp8 - bf16| / max |bf16|) at the prompt's end and over
 * the steps (mean, max), and how often the two argmaxes agree. A report, not a test
 * (scripts/gpu-fp8-bench.sh agreement runs it):
 *
 * <pre>java -cp ... ai.kiln.backend.cuda.Fp8AgreementReport MODEL_DIR [STEPS]</pre>
 */
public final class Fp8AgreementReport {

    private static final int BLOCK_SIZE = CudaFixtureModelTest.BLOCK_SIZE;
    private static final int PROMPT = 128;

    private Fp8AgreementReport() {
    }

    public static void main(String[] args) {
        Path dir = Path.of(args[0]);
        int steps = args.length > 1 ? Integer.parseInt(args[1]) : 128;
        int maxContext = (PROMPT + steps + BLOCK_SIZE) / BLOCK_SIZE * BLOCK_SIZE;
        int[] table = new int[maxContext / BLOCK_SIZE]; // blocks 1.. of the cache, in order
        for (int i = 0; i < table.length; i++) {
            table[i] = i + 1;
        }
        try (CudaFixtureModelTest.Loaded bf16 = CudaFixtureModelTest.Loaded.of(new CudaBackend(0, DType.BF16), dir,
                WeightQuantization.NONE, maxContext, 1);
                CudaFixtureModelTest.Loaded fp8 = CudaFixtureModelTest.Loaded.of(new CudaBackend(0, DType.BF16), dir,
                        WeightQuantization.FP8, maxContext, 1)) {
            int vocab = bf16.model().config().vocabSize();
            Random random = new Random(0);
            int[] prompt = new int[PROMPT];
            for (int i = 0; i < PROMPT; i++) {
                prompt[i] = random.nextInt(vocab);
            }
            float[] reference = bf16.run(CudaFixtureModelTest.step(prompt, 0, table));
            float[] quantized = fp8.run(CudaFixtureModelTest.step(prompt, 0, table));
            double promptError = relativeError(quantized, reference);
            double sum = 0;
            double worst = 0;
            int agree = 0;
            int length = PROMPT;
            for (int s = 0; s < steps; s++) {
                int next = argmax(reference);
                agree += argmax(quantized) == next ? 1 : 0;
                reference = bf16.run(CudaFixtureModelTest.step(new int[] {next}, length, table));
                quantized = fp8.run(CudaFixtureModelTest.step(new int[] {next}, length, table));
                length++;
                double error = relativeError(quantized, reference);
                sum += error;
                worst = Math.max(worst, error);
            }
            System.out.printf("{\"model\": \"%s\", \"prompt_tokens\": %d, \"steps\": %d, \"prompt_logits_error\": %.4g,"
                    + " \"mean_step_logits_error\": %.4g, \"max_step_logits_error\": %.4g, \"argmax_agreement\": %.4f}%n",
                    dir.getFileName(), PROMPT, steps, promptError, sum / steps, worst, agree / (double) steps);
        }
    }

    private static double relativeError(float[] got, float[] expected) {
        double diff = 0;
        double scale = 0;
        for (int i = 0; i < got.length; i++) {
            diff = Math.max(diff, Math.abs(got[i] - expected[i]));
            scale = Math.max(scale, Math.abs(expected[i]));
        }
        return diff / scale;
    }

    private static int argmax(float[] values) {
        int best = 0;
        for (int i = 1; i < values.length; i++) {
            if (values[i] > values[best]) {
                best = i;
            }
        }
        return best;
    }
}
