package ai.kiln.engine;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.concurrent.CountDownLatch;
import java.util.concurrent.Executor;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicIntegerArray;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** The deliveries of one step, handed to the stream executor together and fanned out there. */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class DeliveryBatchTest {

    private final ExecutorService pool = Executors.newCachedThreadPool();

    @AfterEach
    void stop() {
        pool.shutdownNow();
    }

    /** The pool, counting the tasks handed to it from the test's own thread. */
    private final class CountingExecutor implements Executor {
        final Thread owner = Thread.currentThread();
        final AtomicInteger fromOwner = new AtomicInteger();

        @Override
        public void execute(Runnable task) {
            if (Thread.currentThread() == owner) {
                fromOwner.incrementAndGet();
            }
            pool.execute(task);
        }
    }

    @Test
    void everyDeliveryRunsOnceAfterDispatchAndTheDispatcherHandsOverOneTask() throws Exception {
        CountingExecutor executor = new CountingExecutor();
        DeliveryBatch batch = new DeliveryBatch();
        int n = 257; // odd, so that the halving meets uneven ranges
        AtomicIntegerArray runs = new AtomicIntegerArray(n);
        CountDownLatch done = new CountDownLatch(n);
        for (int i = 0; i < n; i++) {
            int index = i;
            batch.add(executor, () -> {
                runs.incrementAndGet(index);
                done.countDown();
            });
        }
        Thread.sleep(50);
        assertEquals(n, done.getCount(), "nothing runs before the dispatch");
        batch.dispatch();
        assertTrue(done.await(30, TimeUnit.SECONDS));
        for (int i = 0; i < n; i++) {
            assertEquals(1, runs.get(i), "delivery " + i);
        }
        assertEquals(1, executor.fromOwner.get(), "one hand-over for the whole batch");

        batch.dispatch(); // empty: hands over nothing
        assertEquals(1, executor.fromOwner.get());
    }

    @Test
    void aDeliveryThatBlocksHoldsBackNoOther() throws Exception {
        DeliveryBatch batch = new DeliveryBatch();
        CountDownLatch release = new CountDownLatch(1);
        // Each position of the batch blocked in turn: the fan-out reaches every other one all the same.
        for (int blocked = 0; blocked < 64; blocked += 21) {
            CountDownLatch round = new CountDownLatch(63);
            for (int i = 0; i < 64; i++) {
                if (i == blocked) {
                    batch.add(pool, () -> {
                        try {
                            release.await();
                        } catch (InterruptedException e) {
                            Thread.currentThread().interrupt();
                        }
                    });
                } else {
                    batch.add(pool, round::countDown);
                }
            }
            batch.dispatch();
            assertTrue(round.await(30, TimeUnit.SECONDS), "deliveries held back behind the one at " + blocked);
        }
        release.countDown();
    }

    @Test
    void deliveriesForAnotherExecutorGoToThatExecutor() throws Exception {
        ExecutorService other = Executors.newSingleThreadExecutor(r -> new Thread(r, "other-executor"));
        try {
            DeliveryBatch batch = new DeliveryBatch();
            CountDownLatch done = new CountDownLatch(4);
            AtomicInteger onOther = new AtomicInteger();
            Runnable onOtherCheck = () -> {
                if (Thread.currentThread().getName().equals("other-executor")) {
                    onOther.incrementAndGet();
                }
                done.countDown();
            };
            batch.add(pool, done::countDown);
            batch.add(other, onOtherCheck);
            batch.add(other, onOtherCheck);
            batch.add(pool, done::countDown);
            batch.dispatch();
            assertTrue(done.await(30, TimeUnit.SECONDS));
            assertEquals(2, onOther.get());
        } finally {
            other.shutdownNow();
        }
    }
}
