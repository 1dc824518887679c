package ai.kiln.langchain4j;

import ai.kiln.api.Engine;
import ai.kiln.api.EngineOptions;
import ai.kiln.api.GenerateRequest;
import ai.kiln.api.GenerateResult;
import ai.kiln.api.SamplingParams;
import java.net.URISyntaxException;
import java.net.URL;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.LockSupport;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The bundled tiny Llama 3 fixture (random weights, a real tokenizer and chat template: its
 * answers are gibberish, but greedy decoding repeats them exactly), found on the test class path
 * so that the tests run from any working directory, and the engine calls the provider is checked
 * against.
 */
final class TinyLlama {

    /** The fixture directory's name, which models built from the directory answer to. */
    static final String NAME = "llama3-gqa";

    private TinyLlama() {
    }

    static Path directory() {
        URL config = TinyLlama.class.getResource("/fixtures/" + NAME + "/config.json");
        if (config == null) {
            throw new IllegalStateException("fixtures/" + NAME + " is not on the test class path (test/resources)");
        }
        try {
            return Path.of(config.toURI()).getParent();
        } catch (URISyntaxException e) {
            throw new IllegalStateException(e);
        }
    }

    /** Small enough for a test: two CPU threads, 8 MiB of KV cache, the fixture's 512-token context. */
    static EngineOptions options() {
        return EngineOptions.builder().threads(2).kvCacheBytes(8L << 20).maxModelLen(512).build();
    }

    static Engine newEngine() {
        return Engine.create(directory(), options());
    }

    /** One chat message as the engine takes it, written out by hand (not by the provider's mapping). */
    static Map<String, Object> message(String role, String content) {
        return Map.of("role", role, "content", content);
    }

    /** Greedy decoding of up to {@code maxTokens} tokens (null: to the context length), straight on the engine. */
    static GenerateResult generateGreedily(Engine engine, List<Map<String, Object>> messages, Integer maxTokens) {
        return engine.generate(GenerateRequest.ofChat(messages,
                SamplingParams.builder().temperature(0).maxTokens(maxTokens).build()));
    }

    /**
     * A stop string for a test: the first run of three ASCII letters in {@code text} that does not
     * start it (the gibberish answers hold replacement characters and control codes too), so
     * that cutting at it leaves a non-empty answer.
     */
    static String stopSequenceInside(String text) {
        Matcher letters = Pattern.compile("[A-Za-z]{3}").matcher(text);
        while (letters.find()) {
            String candidate = letters.group();
            if (text.indexOf(candidate) > 0) {
                return candidate;
            }
        }
        throw new IllegalStateException("no three ASCII letters inside the answer " + text);
    }

    /** Waits (up to 10 s) until the engine has finished {@code count} requests since it started. */
    static void awaitRequestsFinished(Engine engine, long count) {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        while (engine.metrics().requestsFinished() < count) {
            if (System.nanoTime() > deadline) {
                throw new AssertionError("the engine finished " + engine.metrics().requestsFinished()
                        + " requests, not " + count + ", within 10 s");
            }
            LockSupport.parkNanos(TimeUnit.MILLISECONDS.toNanos(1));
        }
    }
}
