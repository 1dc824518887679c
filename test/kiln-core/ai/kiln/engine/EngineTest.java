package ai.kiln.engine;

import ai.kiln.api.Engine;
import ai.kiln.api.EngineException;
import ai.kiln.api.EngineMetrics;
import ai.kiln.api.EngineOptions;
import ai.kiln.api.GenerateRequest;
import ai.kiln.api.GenerateResult;
import ai.kiln.api.RequestAbortedException;
import ai.kiln.api.RequestHandle;
import ai.kiln.api.RequestOutput;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.kiln.kvcache.KvCacheStorage;
import ai.kiln.model.ModelConfig;
import ai.kiln.api.SamplingParams;
import ai.kiln.api.TokenLogprobs;
import ai.kiln.api.FinishReason;
import ai.kiln.api.RequestRejectedException;
import ai.kiln.tensor.DType;
import ai.kiln.testing.Fixtures;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Flow;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;
import java.util.stream.IntStream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * The engine end to end on the CPU backend with the fixture models: batch invariance under
 * chunked prefill and preemption, prefix caching, seeded sampling, parallel samples, streaming
 * with backpressure, cancel, close, stop conditions and rejections.
 */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class EngineTest {

    static final int BLOCK = 16;

    static LocalEngine engine(Fixtures.Model fixture, Consumer<EngineOptions.Builder> options) {
        EngineOptions.Builder b = EngineOptions.builder().threads(2).kvCacheBytes(8L << 20).maxModelLen(512);
        options.accept(b);
        return LocalEngine.create(fixture.dir(), b.build());
    }

    /** KV-cache bytes for exactly {@code blocks} blocks (the null block included). */
    static long kvBytes(Fixtures.Model fixture, int blocks) {
        ModelConfig c = ModelConfig.load(fixture.dir());
        return blocks * KvCacheStorage.bytesPerBlock(c.numLayers(), BLOCK, c.numKvHeads(), c.headDim(), DType.F32);
    }

    static int[] concat(int[] a, int[] b) {
        int[] out = Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, out, a.length, b.length);
        return out;
    }

    /** The fixture's four recorded prompts and four more of other lengths made from them. */
    static List<int[]> prompts(Fixtures.Model fixture) {
        List<int[]> p = new ArrayList<>();
        for (Fixtures.Record r : fixture.records()) {
            p.add(r.promptTokenIds());
        }
        int[] longest = fixture.records().get(2).promptTokenIds();
        p.add(concat(longest, p.get(0)));
        p.add(Arrays.copyOf(longest, 50));
        p.add(concat(p.get(1), p.get(3)));
        p.add(Arrays.copyOf(longest, 17));
        return p;
    }

    static SamplingParams greedy(int maxTokens) {
        return SamplingParams.builder().temperature(0).maxTokens(maxTokens).ignoreEos(true).build();
    }

    static void assertIdle(Engine engine) throws InterruptedException {
        for (int i = 0; i < 200 && (engine.metrics().numRunning() > 0 || engine.metrics().kvCacheUsage() > 0); i++) {
            Thread.sleep(10);
        }
        EngineMetrics m = engine.metrics();
        assertEquals(0, m.numRunning());
        assertEquals(0, m.numWaiting());
        assertEquals(0.0, m.kvCacheUsage(), "KV blocks still held");
    }

    @ParameterizedTest
    @CsvSource({"llama3-gqa, true", "mistral-gqa, false"})
    void concurrentGreedyOutputsEqualEachRequestAlone(String name, boolean prefixCaching) throws Exception {
        Fixtures.Model fixture = Fixtures.named(name);
        List<int[]> prompts = prompts(fixture);
        List<int[]> alone = new ArrayList<>();
        try (Engine engine = engine(fixture, b -> { })) {
            for (int[] prompt : prompts) {
                alone.add(engine.generate(GenerateRequest.ofTokens(prompt, greedy(32))).tokenIds());
            }
            for (int i = 0; i < fixture.records().size(); i++) {
                assertArrayEquals(fixture.records().get(i).greedyTokenIds(), alone.get(i), "HF greedy tokens, prompt " + i);
            }
        }
        // 12 usable blocks, 24 tokens a step, 4 sequences: long prompts are chunked, and the
        // sequences outgrow the pool, so the latest admitted are preempted and recomputed.
        try (Engine engine = engine(fixture, b -> b.kvCacheBytes(kvBytes(fixture, 13)).maxBatchedTokens(24)
                .maxRunningSeqs(4).prefixCaching(prefixCaching))) {
            assertEquals(12, engine.numKvBlocks());
            List<RequestHandle> handles = new ArrayList<>();
            for (int[] prompt : prompts) {
                handles.add(engine.submit(GenerateRequest.ofTokens(prompt, greedy(32))));
            }
            for (int i = 0; i < handles.size(); i++) {
                GenerateResult r = handles.get(i).result().get(60, TimeUnit.SECONDS);
                assertArrayEquals(alone.get(i), r.tokenIds(), "prompt " + i + " in the batch");
                assertEquals(FinishReason.LENGTH, r.finishReason());
                assertArrayEquals(prompts.get(i), r.promptTokenIds());
            }
            EngineMetrics m = engine.metrics();
            assertTrue(m.numPreemptions() > 0, "expected preemptions, got " + m);
            assertEquals(8 * 32, m.generationTokens());
            assertIdle(engine);
        }
    }

    @Test
    void prefixCacheHitGivesTheSameTokensAndSkipsTheCachedPrompt() throws Exception {
        Fixtures.Model fixture = Fixtures.named("llama2-mha");
        int[] prompt = fixture.records().get(2).promptTokenIds(); // 111 tokens
        int[] expected = fixture.records().get(2).greedyTokenIds();
        try (Engine engine = engine(fixture, b -> { })) {
            GenerateResult first = engine.generate(GenerateRequest.ofTokens(prompt, greedy(32)));
            EngineMetrics before = engine.metrics();
            assertEquals(0, first.numCachedPromptTokens());
            assertEquals(111, before.prefillTokens());
            assertEquals(0, before.prefixCacheHits());

            GenerateResult second = engine.generate(GenerateRequest.ofTokens(prompt, greedy(32)));
            EngineMetrics after = engine.metrics();
            assertArrayEquals(expected, first.tokenIds());
            assertArrayEquals(expected, second.tokenIds());
            // Six full blocks of 16 come from the cache; only the last 15 prompt tokens are computed.
            assertEquals(96, second.numCachedPromptTokens());
            assertEquals(96, after.prefixCacheHits() - before.prefixCacheHits());
            assertEquals(111, after.prefixCacheQueries() - before.prefixCacheQueries());
            assertEquals(15, after.prefillTokens() - before.prefillTokens());
        }
        try (Engine engine = engine(fixture, b -> b.prefixCaching(false))) {
            engine.generate(GenerateRequest.ofTokens(prompt, greedy(32)));
            GenerateResult again = engine.generate(GenerateRequest.ofTokens(prompt, greedy(32)));
            assertArrayEquals(expected, again.tokenIds());
            assertEquals(0, again.numCachedPromptTokens());
            assertEquals(2 * 111, engine.metrics().prefillTokens());
        }
    }

    @Test
    void seededSamplingRepeatsWhateverElseRuns() throws Exception {
        Fixtures.Model fixture = Fixtures.named("qwen2-bias-tied");
        int[] prompt = fixture.records().get(1).promptTokenIds();
        SamplingParams params = SamplingParams.builder().temperature(0.9).topP(0.95).topK(50).seed(42L).maxTokens(24)
                .ignoreEos(true).build();
        try (Engine engine = engine(fixture, b -> b.maxBatchedTokens(32))) {
            int[] alone = engine.generate(GenerateRequest.ofTokens(prompt, params)).tokenIds();
            // The same request among others (other lengths and seeds, chunked with them).
            List<RequestHandle> others = new ArrayList<>();
            for (int[] other : prompts(fixture)) {
                others.add(engine.submit(GenerateRequest.ofTokens(other, params.toBuilder().seed(null).build())));
            }
            RequestHandle again = engine.submit(GenerateRequest.ofTokens(prompt, params));
            assertArrayEquals(alone, again.result().get(60, TimeUnit.SECONDS).tokenIds());
            for (RequestHandle h : others) {
                h.result().get(60, TimeUnit.SECONDS);
            }
            int[] otherSeed = engine.generate(GenerateRequest.ofTokens(prompt, params.toBuilder().seed(43L).build()))
                    .tokenIds();
            assertFalse(Arrays.equals(alone, otherSeed), "seeds 42 and 43 gave the same 24 tokens");

            // n = 3 with seed s: completion i is what n = 1 with seed s + i gives.
            GenerateResult three = engine.generate(GenerateRequest.ofTokens(prompt, params.toBuilder().n(3).build()));
            assertEquals(3, three.completions().size());
            assertArrayEquals(alone, three.completions().get(0).tokenIds());
            assertArrayEquals(otherSeed, three.completions().get(1).tokenIds());
            assertEquals(72, three.numGeneratedTokens());
            assertIdle(engine);
        }
    }

    @Test
    void parallelGreedySamplesShareThePromptAndAgree() throws Exception {
        Fixtures.Model fixture = Fixtures.named("llama3-gqa");
        Fixtures.Record record = fixture.records().get(2);
        try (Engine engine = engine(fixture, b -> b.prefixCaching(false))) {
            GenerateResult r = engine.generate(GenerateRequest.ofTokens(record.promptTokenIds(),
                    greedy(32).toBuilder().n(4).build()));
            for (GenerateResult.Completion c : r.completions()) {
                assertArrayEquals(record.greedyTokenIds(), c.tokenIds(), "completion " + c.index());
            }
            // The siblings computed only the prompt's last partial block: 89 + 3 * (89 - 80).
            assertEquals(89 + 3 * 9, engine.metrics().prefillTokens());
            assertIdle(engine);
        }
    }

    @Test
    void endOfSequenceStopsAndIgnoreEosGoesOn() {
        Fixtures.Model fixture = Fixtures.named("llama3-gqa");
        Fixtures.Record record = fixture.records().get(2);
        int[] full = record.greedyTokenIds();
        int eosAt = IntStream.range(0, full.length)
                .filter(i -> Arrays.stream(fixture.eosTokenIds()).anyMatch(e -> e == full[i])).findFirst().orElseThrow();
        try (Engine engine = engine(fixture, b -> { })) {
            GenerateResult stopped = engine.generate(GenerateRequest.ofTokens(record.promptTokenIds(),
                    SamplingParams.builder().temperature(0).maxTokens(32).build()));
            assertEquals(FinishReason.STOP, stopped.finishReason());
            assertArrayEquals(Arrays.copyOf(full, eosAt + 1), stopped.tokenIds(), "ends with the EOS token");
            assertNull(stopped.completions().get(0).stopReason());

            GenerateResult stopId = engine.generate(GenerateRequest.ofTokens(record.promptTokenIds(),
                    greedy(32).toBuilder().stopTokenIds(List.of(full[3])).build()));
            assertEquals(FinishReason.STOP, stopId.finishReason());
            assertEquals(Integer.toString(full[3]), stopId.completions().get(0).stopReason());
            assertEquals(4, stopId.tokenIds().length);

            GenerateResult length = engine.generate(GenerateRequest.ofTokens(record.promptTokenIds(), greedy(5)));
            assertEquals(FinishReason.LENGTH, length.finishReason());
            assertArrayEquals(Arrays.copyOf(full, 5), length.tokenIds());
        }
    }

    @Test
    void stopStringsAreCutFromTheTextEvenAcrossTokens() throws Exception {
        Fixtures.Model fixture = Fixtures.named("llama3-gqa");
        String prompt = fixture.records().get(1).prompt();
        try (Engine engine = engine(fixture, b -> { })) {
            assertTrue(engine.hasTokenizer());
            GenerateResult plain = engine.generate(GenerateRequest.of(prompt, greedy(32)));
            assertArrayEquals(fixture.records().get(1).promptTokenIds(), plain.promptTokenIds());
            String text = plain.text();
            // A stop string that starts inside one token's text and ends inside a later one's.
            int[] ids = plain.tokenIds();
            var decoder = engine.tokenizer().newIncrementalDecoder(true);
            int boundary = -1;
            int length = 0;
            for (int i = 0; i < ids.length && boundary < 0; i++) {
                String piece = decoder.push(ids[i]);
                if (length >= 8 && piece.length() >= 2 && length + 2 <= text.length()) {
                    boundary = length;
                }
                length += piece.length();
            }
            assertTrue(boundary > 0, "no token boundary to split a stop string over in '" + text + "'");
            String stop = text.substring(boundary - 2, boundary + 2);
            int at = text.indexOf(stop);

            GenerateResult cut = engine.generate(GenerateRequest.of(prompt, greedy(32).toBuilder().stop(stop).build()));
            assertEquals(FinishReason.STOP, cut.finishReason());
            assertEquals(stop, cut.completions().get(0).stopReason());
            assertEquals(text.substring(0, at), cut.text());
            assertTrue(cut.tokenIds().length < ids.length);
            assertArrayEquals(Arrays.copyOf(ids, cut.tokenIds().length), cut.tokenIds());

            GenerateResult kept = engine.generate(GenerateRequest.of(prompt,
                    greedy(32).toBuilder().stop(stop).includeStopStrInOutput(true).build()));
            assertEquals(text.substring(0, at + stop.length()), kept.text());

            // Streamed, no character of the stop string ever leaves the engine.
            Collector collector = new Collector(Long.MAX_VALUE);
            RequestHandle handle = engine.submit(GenerateRequest.of(prompt, greedy(32).toBuilder().stop(stop).build())
                    .withStream(true));
            handle.subscribe(collector);
            GenerateResult streamed = handle.result().get(30, TimeUnit.SECONDS);
            assertNull(collector.end.get(30, TimeUnit.SECONDS));
            assertEquals(cut.text(), collector.text());
            assertEquals(streamed.text(), collector.text());
        }
    }

    /** Collects a stream; requests {@code batch} at a time (Long.MAX_VALUE: everything). */
    static class Collector implements Flow.Subscriber<RequestOutput> {
        final List<RequestOutput> items = new ArrayList<>();
        final CompletableFuture<Throwable> end = new CompletableFuture<>();
        final long batch;
        Flow.Subscription subscription;

        Collector(long batch) {
            this.batch = batch;
        }

        @Override
        public void onSubscribe(Flow.Subscription s) {
            subscription = s;
            s.request(batch);
        }

        @Override
        public synchronized void onNext(RequestOutput item) {
            items.add(item);
        }

        @Override
        public void onError(Throwable throwable) {
            end.complete(throwable);
        }

        @Override
        public void onComplete() {
            end.complete(null);
        }

        synchronized String text() {
            StringBuilder sb = new StringBuilder();
            items.forEach(i -> sb.append(i.text()));
            return sb.toString();
        }

        synchronized String text(int index) {
            StringBuilder sb = new StringBuilder();
            items.stream().filter(i -> i.index() == index).forEach(i -> sb.append(i.text()));
            return sb.toString();
        }

        synchronized int[] tokens(int index) {
            return items.stream().filter(i -> i.index() == index).flatMapToInt(i -> Arrays.stream(i.tokenIds())).toArray();
        }
    }

    @Test
    void streamingDeliversEveryTokenThenCompletes() throws Exception {
        Fixtures.Model fixture = Fixtures.named("qwen3-qknorm-sharded");
        Fixtures.Record record = fixture.records().get(0);
        try (Engine engine = engine(fixture, b -> { })) {
            Collector collector = new Collector(Long.MAX_VALUE);
            RequestHandle handle = engine.submit(GenerateRequest.of(record.prompt(), greedy(32).toBuilder().n(2)
                    .logprobs(2).build()).withStream(true).withRequestId("streamed"));
            handle.subscribe(collector);
            GenerateResult result = handle.result().get(30, TimeUnit.SECONDS);
            assertNull(collector.end.get(30, TimeUnit.SECONDS));
            assertEquals("streamed", result.requestId());
            for (int index = 0; index < 2; index++) {
                assertArrayEquals(record.greedyTokenIds(), collector.tokens(index));
                assertArrayEquals(record.greedyTokenIds(), result.completions().get(index).tokenIds());
            }
            assertEquals(2 * 32, collector.items.size(), "one output per completion per token");
            RequestOutput last = collector.items.get(collector.items.size() - 1);
            assertEquals(FinishReason.LENGTH, last.finishReason());
            List<TokenLogprobs> logprobs = result.completions().get(0).logprobs();
            assertEquals(32, logprobs.size());
            for (TokenLogprobs lp : logprobs) {
                assertEquals(1, lp.rank(), "greedy picks the most likely token");
                assertEquals(2, lp.top().size());
                assertEquals(lp.tokenId(), lp.top().get(0).tokenId());
                assertTrue(lp.logprob() <= 0);
            }
            assertNotNull(result.timing().timeToFirstToken());
            assertTrue(result.timing().total().compareTo(result.timing().timeToFirstToken()) >= 0);

            // Not streamed: one output per completion, at the end.
            Collector whole = new Collector(Long.MAX_VALUE);
            RequestHandle quiet = engine.submit(GenerateRequest.of(record.prompt(), greedy(32)));
            quiet.subscribe(whole);
            quiet.result().get(30, TimeUnit.SECONDS);
            assertNull(whole.end.get(30, TimeUnit.SECONDS));
            assertEquals(1, whole.items.size());
            assertArrayEquals(record.greedyTokenIds(), whole.items.get(0).tokenIds());

            // A second subscriber is refused.
            Collector late = new Collector(1);
            quiet.subscribe(late);
            assertInstanceOf(IllegalStateException.class, late.end.get(30, TimeUnit.SECONDS));
        }
    }

    @Test
    void manyStreamsAtOnceGetTheirOutputsInOrderAndABlockedOneHoldsBackNoOther() throws Exception {
        Fixtures.Model fixture = Fixtures.named("llama3-gqa");
        List<Fixtures.Record> records = fixture.records();
        try (Engine engine = engine(fixture, b -> b.maxBatchedTokens(2048))) {
            // From its eighth output on (when all the requests decode together) it waits until
            // every other stream has ended: their outputs leave the engine in the same steps.
            CompletableFuture<Void> othersEnded = new CompletableFuture<>();
            Collector blocked = new Collector(Long.MAX_VALUE) {
                @Override
                public void onNext(RequestOutput item) {
                    if (items.size() >= 7) {
                        othersEnded.join();
                    }
                    super.onNext(item);
                }
            };
            RequestHandle blockedHandle = engine.submit(GenerateRequest.ofTokens(records.get(0).promptTokenIds(),
                    greedy(16)).withStream(true));
            blockedHandle.subscribe(blocked);
            List<RequestHandle> handles = new ArrayList<>();
            List<Collector> collectors = new ArrayList<>();
            for (int i = 0; i < 40; i++) {
                Fixtures.Record record = records.get(i % records.size());
                RequestHandle handle = engine.submit(GenerateRequest.of(record.prompt(),
                        greedy(24).toBuilder().n(2).build()).withStream(true));
                Collector collector = new Collector(Long.MAX_VALUE);
                handle.subscribe(collector);
                handles.add(handle);
                collectors.add(collector);
            }
            for (int i = 0; i < handles.size(); i++) {
                assertNull(collectors.get(i).end.get(60, TimeUnit.SECONDS), "stream " + i);
                GenerateResult result = handles.get(i).result().get(60, TimeUnit.SECONDS);
                for (int index = 0; index < 2; index++) {
                    GenerateResult.Completion completion = result.completions().get(index);
                    assertArrayEquals(completion.tokenIds(), collectors.get(i).tokens(index), "stream " + i + "#" + index);
                    assertEquals(completion.text(), collectors.get(i).text(index), "stream " + i + "#" + index);
                }
            }
            othersEnded.complete(null);
            assertNull(blocked.end.get(30, TimeUnit.SECONDS));
            assertArrayEquals(Arrays.copyOf(records.get(0).greedyTokenIds(), 16), blocked.tokens(0));
        }
    }

    @Test
    void aSubscriberThatFallsBehindGetsItsRequestCancelled() throws Exception {
        Fixtures.Model fixture = Fixtures.named("llama32-mqa-tied-rope-scaled");
        int[] prompt = fixture.records().get(0).promptTokenIds();
        try (Engine engine = engine(fixture, b -> b.streamBufferSize(4))) {
            Collector stalled = new Collector(1); // takes one output and never asks for more
            RequestHandle handle = engine.submit(GenerateRequest.ofTokens(prompt, greedy(64)).withStream(true));
            handle.subscribe(stalled);
            GenerateResult r = handle.result().get(30, TimeUnit.SECONDS);
            assertEquals(FinishReason.ABORT, r.finishReason());
            String reason = r.completions().get(0).stopReason();
            assertTrue(reason.startsWith("the stream subscriber fell behind"), reason);
            Throwable end = stalled.end.get(30, TimeUnit.SECONDS);
            assertInstanceOf(RequestAbortedException.class, end);
            assertTrue(end.getMessage().contains("fell behind"), end.getMessage());
            assertTrue(r.tokenIds().length < 64);
            // The engine goes on serving.
            assertEquals(FinishReason.LENGTH, engine.generate(GenerateRequest.ofTokens(prompt, greedy(8))).finishReason());
            assertIdle(engine);
        }
    }

    @Test
    void cancelFreesTheRequestsBlocks() throws Exception {
        Fixtures.Model fixture = Fixtures.named("llama2-mha");
        int[] prompt = fixture.records().get(2).promptTokenIds();
        try (Engine engine = engine(fixture, b -> { })) {
            CompletableFuture<RequestHandle> handleRef = new CompletableFuture<>();
            Collector collector = new Collector(Long.MAX_VALUE) {
                @Override
                public synchronized void onNext(RequestOutput item) {
                    super.onNext(item);
                    handleRef.join().cancel(); // on the first output: the request is running
                }
            };
            RequestHandle handle = engine.submit(GenerateRequest.ofTokens(prompt, greedy(400)).withStream(true));
            handleRef.complete(handle);
            handle.subscribe(collector);
            GenerateResult r = handle.result().get(30, TimeUnit.SECONDS);
            assertEquals(FinishReason.ABORT, r.finishReason());
            assertEquals("cancelled by the caller", r.completions().get(0).stopReason());
            assertTrue(r.tokenIds().length < 400);
            assertInstanceOf(RequestAbortedException.class, collector.end.get(30, TimeUnit.SECONDS));
            assertIdle(engine);
            handle.cancel(); // idempotent
        }
    }

    @Test
    void closeLetsRequestsFinishWithinTheGraceThenAbortsThem() throws Exception {
        Fixtures.Model fixture = Fixtures.named("llama3-gqa");
        int[] prompt = fixture.records().get(0).promptTokenIds();
        RequestHandle finishing;
        try (Engine engine = engine(fixture, b -> b.shutdownGrace(Duration.ofSeconds(60)))) {
            finishing = engine.submit(GenerateRequest.ofTokens(prompt, greedy(32)));
        }
        assertArrayEquals(fixture.records().get(0).greedyTokenIds(), finishing.result().get().tokenIds());

        Engine engine = engine(fixture, b -> b.shutdownGrace(Duration.ZERO));
        Collector collector = new Collector(Long.MAX_VALUE);
        RequestHandle cut = engine.submit(GenerateRequest.ofTokens(prompt, greedy(500)).withStream(true));
        cut.subscribe(collector);
        engine.close();
        GenerateResult r = cut.result().get(30, TimeUnit.SECONDS);
        assertEquals(FinishReason.ABORT, r.finishReason());
        assertTrue(r.completions().get(0).stopReason().startsWith("the engine closed before the request"),
                r.completions().get(0).stopReason());
        assertInstanceOf(RequestAbortedException.class, collector.end.get(30, TimeUnit.SECONDS));
        IllegalStateException closed = assertThrows(IllegalStateException.class,
                () -> engine.submit(GenerateRequest.ofTokens(prompt, greedy(4))));
        assertEquals("the engine is closed", closed.getMessage());
        engine.close(); // idempotent
    }

    @Test
    void manyThreadsSubmitAtOnce() throws Exception {
        Fixtures.Model fixture = Fixtures.named("llama31-rope-scaled-bias-classic");
        List<Fixtures.Record> records = fixture.records();
        ExecutorService pool = Executors.newFixedThreadPool(8);
        try (Engine engine = engine(fixture, b -> b.maxBatchedTokens(64))) {
            List<Future<GenerateResult>> futures = new ArrayList<>();
            for (int i = 0; i < 32; i++) {
                Fixtures.Record record = records.get(i % records.size());
                futures.add(pool.submit(() -> engine.generate(GenerateRequest.ofTokens(record.promptTokenIds(),
                        greedy(32)))));
            }
            for (int i = 0; i < futures.size(); i++) {
                assertArrayEquals(records.get(i % records.size()).greedyTokenIds(),
                        futures.get(i).get(60, TimeUnit.SECONDS).tokenIds());
            }
            EngineMetrics m = engine.metrics();
            assertEquals(32, m.requestsFinished());
            assertEquals(32 * 32, m.generationTokens());
            assertTrue(m.prefixCacheHits() > 0, "repeated prompts hit the prefix cache");
            assertIdle(engine);
        } finally {
            pool.shutdown();
        }
    }

    @Test
    void requestsThatCannotRunAreRejectedAtSubmission() {
        Fixtures.Model fixture = Fixtures.named("llama3-gqa");
        try (Engine engine = engine(fixture, b -> b.kvCacheBytes(kvBytes(fixture, 9)))) {
            int[] prompt = fixture.records().get(2).promptTokenIds(); // 89 tokens
            RequestRejectedException context = assertThrows(RequestRejectedException.class,
                    () -> engine.submit(GenerateRequest.ofTokens(prompt, greedy(500))));
            assertEquals("the prompt (89 tokens) + max_tokens (500) = 589 tokens exceeds the model's context of 512"
                    + " tokens", context.getMessage());
            RequestRejectedException pool = assertThrows(RequestRejectedException.class,
                    () -> engine.submit(GenerateRequest.ofTokens(prompt, greedy(100))));
            assertEquals("the prompt (89 tokens) + max_tokens (100) needs 12 KV-cache blocks of 16 tokens, but the"
                    + " cache has only 8 (128 tokens)", pool.getMessage());
            IllegalArgumentException vocab = assertThrows(IllegalArgumentException.class,
                    () -> engine.submit(GenerateRequest.ofTokens(new int[] {1, 2, 512}, greedy(4))));
            assertEquals("prompt token id 512 at position 2 is outside the vocabulary [0, 512)", vocab.getMessage());
            assertThrows(IllegalArgumentException.class, () -> engine.submit(GenerateRequest.ofTokens(new int[0], greedy(4))));
            // max_tokens left open: what the cache leaves.
            GenerateResult open = engine.generate(GenerateRequest.ofTokens(prompt,
                    greedy(1).toBuilder().maxTokens(null).build()));
            assertEquals(128 - 89 + 1, open.tokenIds().length);
            assertEquals(FinishReason.LENGTH, open.finishReason());
        }
    }

    @Test
    void optionsAreChecked() {
        assertEquals("blockSize must be in [1, 1024], got 0",
                assertThrows(IllegalArgumentException.class, () -> EngineOptions.builder().blockSize(0).build()).getMessage());
        String device = assertThrows(IllegalArgumentException.class, () -> EngineOptions.builder().device("tpu").build())
                .getMessage();
        assertTrue(device.startsWith("device must be ") && device.endsWith(", got tpu"), device);
        EngineException missing = assertThrows(EngineException.class,
                () -> Engine.create(java.nio.file.Path.of("no/such/model"), EngineOptions.defaults()));
        assertEquals("model directory no/such/model does not exist", missing.getMessage());
        Fixtures.Model fixture = Fixtures.named("llama3-gqa");
        EngineException tooLong = assertThrows(EngineException.class,
                () -> engine(fixture, b -> b.maxModelLen(4096)));
        assertEquals("maxModelLen 4096 exceeds the model's max_position_embeddings 512", tooLong.getMessage());
        EngineException tiny = assertThrows(EngineException.class, () -> engine(fixture, b -> b.kvCacheBytes(1000)));
        assertTrue(tiny.getMessage().startsWith("the KV cache gets 1000 bytes, room for 0 blocks of 16 tokens"),
                tiny.getMessage());
    }
}
