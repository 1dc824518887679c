package ai.kiln.bench;

import ai.kiln.tokenizer.IncrementalDecoder;
import ai.kiln.tokenizer.Tokenizer;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.AuxCounters;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.Threads;
import org.openjdk.jmh.annotations.Warmup;

/**
 * Tokenizer throughput on one thread, in tokens per second (the "tokens" secondary result):
 * encode, one-shot decode and streaming decode of a 5 KB English text and a 6,000-character CJK
 * text with the real Llama 3 and Qwen 3 vocabularies. {@code wordCacheEntries=0} disables the
 * per-word cache, which measures the cost of every word being new (a cold cache); with the cache
 * the repeated text is served mostly from it, as common words are in a long-running server.
 *
 * <p>Run (after {@code mvn test-compile}, which fetches the vocabularies into target/tokenizer-vocab):
 * <pre>
 * mvn -q dependency:build-classpath -Dmdep.includeScope=test -Dmdep.outputFile=target/test-classpath.txt
 * java -cp target/test-classes:target/classes:$(cat target/test-classpath.txt) org.openjdk.jmh.Main TokenizerBenchmark
 * </pre>
 * The texts are test/resources/tokenizer/bench/*.txt; their ids are checked against Hugging Face
 * in the tokenizer tests, so the benchmark measures correct work.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.Throughput)
@OutputTimeUnit(TimeUnit.SECONDS)
@Warmup(iterations = 3, time = 2)
@Measurement(iterations = 5, time = 2)
@Fork(value = 1, jvmArgsAppend = {"-Xmx2g"})
@Threads(1)
public class TokenizerBenchmark {
    @Param({"llama3", "qwen3"})
    public String vocabulary;

    @Param({"english", "cjk"})
    public String text;

    @Param({"65536", "0"})
    public int wordCacheEntries;

    private Tokenizer tokenizer;
    private String input;
    private int[] ids;

    /** Counts tokens so that JMH reports tokens per second beside operations per second. */
    @State(Scope.Thread)
    @AuxCounters(AuxCounters.Type.OPERATIONS)
    public static class Tokens {
        public long tokens;

        @Setup(Level.Iteration)
        public void reset() {
            tokens = 0;
        }
    }

    @Setup
    public void load() throws IOException {
        System.setProperty("kiln.tokenizer.wordCacheEntries", Integer.toString(wordCacheEntries));
        Path root = Path.of(System.getProperty("kiln.vocab.dir", "target/tokenizer-vocab"));
        tokenizer = Tokenizer.load(root.resolve(vocabulary));
        try (InputStream in = TokenizerBenchmark.class.getResourceAsStream("/tokenizer/bench/" + text + ".txt")) {
            if (in == null) {
                throw new IOException("benchmark text tokenizer/bench/" + text + ".txt not on the classpath");
            }
            input = new String(in.readAllBytes(), StandardCharsets.UTF_8);
        }
        ids = tokenizer.encode(input, false);
        if (!Files.isDirectory(root)) {
            throw new IOException("no vocabularies at " + root.toAbsolutePath());
        }
    }

    @Benchmark
    public int[] encode(Tokens counter) {
        int[] result = tokenizer.encode(input, false);
        counter.tokens += result.length;
        return result;
    }

    @Benchmark
    public String decode(Tokens counter) {
        counter.tokens += ids.length;
        return tokenizer.decode(ids, false);
    }

    @Benchmark
    public int decodeStreaming(Tokens counter) {
        IncrementalDecoder decoder = tokenizer.newIncrementalDecoder(false);
        int chars = 0;
        for (int id : ids) {
            chars += decoder.push(id).length();
        }
        counter.tokens += ids.length;
        return chars + decoder.flush().length();
    }
}
