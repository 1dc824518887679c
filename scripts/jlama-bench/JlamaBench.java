/*
 * CPU peer benchmark: Jlama (com.github.tjake:jlama-core) on a Hugging Face model directory.
 *
 * Loads the directory with Jlama (weights as stored, bf16 for scripts/make_bench_model.py's models;
 * working dtype F32 or BF16), then times, on a fresh KV cache each time: a prompt of --prompt tokens
 * (BOS and fixed pseudo-random token ids, one batched forward pass, ending with the greedy pick of the
 * first new token) and --gen single-token decode steps (forward pass and greedy pick each), the
 * shape of llama-bench's pp128 / tg64. One warm-up round (printed, marked warmup) runs before the
 * --reps measured rounds, because the first round also pays for the JIT compiling the vector code.
 *
 * --working-dtype BF16 works with Jlama's Panama operations only (-Djlama.force_panama_tensor_operations=true);
 * with its native ones (jlama-native on the class path) the greedy pick finds no logit above -inf
 * (sample() returns Integer.MIN_VALUE and the next forward pass fails).
 * Run on Java 21+ (the script uses Java 25) with the Jlama jars on the class path:
 *   java --add-modules jdk.incubator.vector --enable-preview -cp 'LIB/*' JlamaBench.java MODEL_DIR \
 *        [--threads 2] [--prompt 128] [--gen 64] [--reps 2] [--working-dtype F32|BF16] [--label NAME]
 * Prints one line per round:
 *   jlama  dtype=bf16 working=F32 threads=2 round=1  prompt 128 tok in 1.234 s = 103.7 tok/s  decode 64 tok in ... = ... tok/s
 * scripts/cpu-peer-bench.sh fetches the jars and runs this.
 */

import com.github.tjake.jlama.model.AbstractModel;
import com.github.tjake.jlama.model.ModelSupport;
import com.github.tjake.jlama.safetensors.DType;
import com.github.tjake.jlama.tensor.AbstractTensor;
import com.github.tjake.jlama.tensor.KvBufferCache;
import com.github.tjake.jlama.tensor.operations.TensorOperationsProvider;
import com.github.tjake.jlama.util.MachineSpec;
import com.github.tjake.jlama.util.PhysicalCoreExecutor;

import java.io.File;
import java.util.Locale;
import java.util.Optional;
import java.util.UUID;

public class JlamaBench {

    public static void main(String[] args) throws Exception {
        if (args.length < 1) {
            System.err.println("usage: JlamaBench MODEL_DIR [--threads N] [--prompt N] [--gen N] [--reps N]"
                    + " [--working-dtype F32|BF16] [--label NAME]");
            System.exit(2);
        }
        File modelDir = new File(args[0]);
        int threads = 2, promptTokens = 128, genTokens = 64, reps = 2;
        DType working = DType.F32;
        String label = "bf16";
        for (int i = 1; i < args.length; i += 2) {
            String value = args[i + 1];
            switch (args[i]) {
                case "--threads" -> threads = Integer.parseInt(value);
                case "--prompt" -> promptTokens = Integer.parseInt(value);
                case "--gen" -> genTokens = Integer.parseInt(value);
                case "--reps" -> reps = Integer.parseInt(value);
                case "--working-dtype" -> working = DType.valueOf(value.toUpperCase(Locale.ROOT));
                case "--label" -> label = value;
                default -> throw new IllegalArgumentException("unknown option " + args[i]);
            }
        }

        // Jlama sizes its compute pool from the physical core count unless told otherwise.
        PhysicalCoreExecutor.overrideThreadCount(threads);
        long loadStart = System.nanoTime();
        // Working quantization type = the working dtype: no activation quantization (that is only for
        // Q4/Q8 weights); the bf16 weights are used as stored.
        AbstractModel model = ModelSupport.loadModel(modelDir, working, working);
        double loadS = (System.nanoTime() - loadStart) / 1e9;
        int vocab = model.getConfig().vocabularySize;
        System.out.printf(Locale.ROOT, "jlama: %s loaded in %.1f s; vocab %d, context %d, %d threads, vector type %s, %s%n",
                modelDir, loadS, vocab, model.getConfig().contextLength, PhysicalCoreExecutor.instance.get().getCoreCount(),
                MachineSpec.VECTOR_TYPE, TensorOperationsProvider.get().name());

        int[] prompt = new int[promptTokens];
        prompt[0] = model.getConfig().bosToken;
        long state = 12345;
        int span = Math.min(vocab, 32000) - 200; // ordinary tokens of both the Llama 2 and Llama 3 vocabularies
        for (int i = 1; i < promptTokens; i++) {
            state = state * 6364136223846793005L + 1442695040888963407L;
            prompt[i] = 100 + (int) Long.remainderUnsigned(state >>> 11, span);
        }

        KvBufferCache kvCache = new KvBufferCache(model);
        for (int round = 0; round <= reps; round++) {
            try (KvBufferCache.KvBuffer kv = kvCache.getKvBuffer(UUID.randomUUID());
                 AbstractTensor logits = model.makeDenseTensor(vocab)) {
                long t0 = System.nanoTime();
                AbstractTensor out = model.batchForward(prompt, 0, kv);
                int next = model.sample(out.slice(out.shape().first() - 1), 0.0f, 0.0f, logits);
                out.close();
                long t1 = System.nanoTime();
                int first = next;
                for (int i = 0; i < genTokens; i++) {
                    AbstractTensor o = model.forward(next, promptTokens + i, kv, Optional.empty());
                    next = model.sample(o, 0.0f, 0.0f, logits);
                    o.close();
                    kv.incrementContextPosition();
                }
                long t2 = System.nanoTime();
                double promptS = (t1 - t0) / 1e9, genS = (t2 - t1) / 1e9;
                System.out.printf(Locale.ROOT,
                        "jlama  dtype=%s working=%s threads=%d round=%s  prompt %d tok in %.3f s = %.2f tok/s"
                                + "  decode %d tok in %.3f s = %.2f tok/s  (first new token %d, last %d)%n",
                        label, working, threads, round == 0 ? "warmup" : Integer.toString(round), promptTokens,
                        promptS, promptTokens / promptS, genTokens, genS, genTokens / genS, first, next);
            }
        }
        kvCache.close();
        model.close();
        System.exit(0);
    }
}
