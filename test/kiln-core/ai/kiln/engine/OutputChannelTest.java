package ai.kiln.engine;

import ai.kiln.api.RequestAbortedException;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Flow;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/** The bounded, demand-driven output channel between the engine loop and a subscriber. */
class OutputChannelTest {

    private final ExecutorService executor = Executors.newCachedThreadPool();

    @AfterEach
    void stop() {
        executor.shutdownNow();
    }

    static class Recorder implements Flow.Subscriber<Integer> {
        final List<Integer> items = new ArrayList<>();
        final CompletableFuture<Throwable> end = new CompletableFuture<>();
        volatile Flow.Subscription subscription;
        final long initial;

        Recorder(long initial) {
            this.initial = initial;
        }

        @Override
        public void onSubscribe(Flow.Subscription s) {
            subscription = s;
            if (initial > 0) {
                s.request(initial);
            }
        }

        @Override
        public synchronized void onNext(Integer item) {
            items.add(item);
        }

        @Override
        public void onError(Throwable t) {
            end.complete(t);
        }

        @Override
        public void onComplete() {
            end.complete(null);
        }

        synchronized List<Integer> items() {
            return new ArrayList<>(items);
        }
    }

    @Test
    void itemsBeforeSubscriptionWaitAndCompletionFollowsThem() throws Exception {
        OutputChannel<Integer> channel = new OutputChannel<>(8, executor);
        for (int i = 0; i < 5; i++) {
            assertTrue(channel.offer(i));
        }
        channel.complete();
        Recorder r = new Recorder(Long.MAX_VALUE);
        channel.subscribe(r);
        assertNull(r.end.get(10, TimeUnit.SECONDS));
        assertEquals(List.of(0, 1, 2, 3, 4), r.items());
    }

    @Test
    void deliveryFollowsDemandAndAFullBufferRefusesWithoutBlocking() throws Exception {
        OutputChannel<Integer> channel = new OutputChannel<>(3, executor);
        Recorder r = new Recorder(1);
        channel.subscribe(r);
        assertTrue(channel.offer(0));
        waitFor(() -> r.items().size() == 1);
        assertTrue(channel.offer(1));
        assertTrue(channel.offer(2));
        assertTrue(channel.offer(3));
        assertFalse(channel.offer(4), "three undelivered outputs fill a buffer of three");
        assertEquals(3, channel.pending());
        r.subscription.request(2);
        waitFor(() -> r.items().size() == 3);
        assertEquals(1, channel.pending());
        channel.complete();
        r.subscription.request(10);
        assertNull(r.end.get(10, TimeUnit.SECONDS));
        assertEquals(List.of(0, 1, 2, 3), r.items());
    }

    @Test
    void anErrorReachesAStalledSubscriber() throws Exception {
        OutputChannel<Integer> channel = new OutputChannel<>(4, executor);
        Recorder r = new Recorder(0);
        channel.subscribe(r);
        channel.offer(1);
        channel.fail(new RequestAbortedException("fell behind"));
        assertInstanceOf(RequestAbortedException.class, r.end.get(10, TimeUnit.SECONDS));
        assertTrue(r.items().isEmpty());
    }

    @Test
    void cancelByTheSubscriberIsReportedOnce() throws Exception {
        OutputChannel<Integer> channel = new OutputChannel<>(4, executor);
        AtomicBoolean cancelled = new AtomicBoolean();
        List<Boolean> calls = new ArrayList<>();
        channel.onSubscriberCancel(() -> {
            calls.add(true);
            cancelled.set(true);
        });
        Recorder r = new Recorder(1);
        channel.subscribe(r);
        waitFor(() -> r.subscription != null);
        r.subscription.cancel();
        r.subscription.cancel();
        assertTrue(cancelled.get());
        assertEquals(1, calls.size());
        assertTrue(channel.offer(5), "offers after a cancel are dropped, not refused");
    }

    @Test
    void nonPositiveRequestIsAnError() throws Exception {
        OutputChannel<Integer> channel = new OutputChannel<>(4, executor);
        Recorder r = new Recorder(0);
        channel.subscribe(r);
        waitFor(() -> r.subscription != null);
        r.subscription.request(0);
        assertInstanceOf(IllegalArgumentException.class, r.end.get(10, TimeUnit.SECONDS));
    }

    @Test
    void aBatchedOfferWaitsForTheDispatchAndOrderHoldsAcrossBatches() throws Exception {
        OutputChannel<Integer> channel = new OutputChannel<>(1000, executor);
        // Asks for one output at a time, from inside onNext, so that demand and offers race.
        Recorder r = new Recorder(1) {
            @Override
            public synchronized void onNext(Integer item) {
                super.onNext(item);
                subscription.request(1);
            }
        };
        DeliveryBatch batch = new DeliveryBatch();
        assertTrue(channel.offer(0, batch));
        channel.subscribe(r);
        Thread.sleep(50);
        assertNull(r.subscription, "nothing is delivered before the batch is dispatched, not even onSubscribe");
        batch.dispatch();
        waitFor(() -> r.items().size() == 1);
        int next = 1;
        for (int size = 1; next < 900; size = size % 7 + 1) {
            for (int i = 0; i < size; i++) {
                assertTrue(channel.offer(next++, batch));
            }
            batch.dispatch();
        }
        channel.complete();
        assertNull(r.end.get(10, TimeUnit.SECONDS));
        List<Integer> expected = new ArrayList<>();
        for (int i = 0; i < next; i++) {
            expected.add(i);
        }
        assertEquals(expected, r.items());
    }

    @Test
    void aBatchedOfferToAFullBufferIsRefused() throws Exception {
        OutputChannel<Integer> channel = new OutputChannel<>(2, executor);
        DeliveryBatch batch = new DeliveryBatch();
        assertTrue(channel.offer(1, batch));
        assertTrue(channel.offer(2, batch));
        assertFalse(channel.offer(3, batch), "two undelivered outputs fill a buffer of two");
        Recorder r = new Recorder(0);
        channel.subscribe(r);
        batch.dispatch();
        waitFor(() -> r.subscription != null);
        r.subscription.request(5);
        waitFor(() -> r.items().size() == 2);
        assertEquals(List.of(1, 2), r.items());
    }

    private static void waitFor(java.util.function.BooleanSupplier condition) throws InterruptedException {
        for (int i = 0; i < 1000 && !condition.getAsBoolean(); i++) {
            Thread.sleep(5);
        }
        assertTrue(condition.getAsBoolean(), "condition not reached");
    }
}
