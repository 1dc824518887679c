package ai.kiln.engine;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Executor;

/**
 * The stream deliveries that one step's outputs start, handed to the stream executor together.
 * Handing each over on its own costs the engine loop a thread wake-up per output (a futex call of
 * some microseconds, hundreds a step); here the loop hands over one task per step, and the
 * executor's threads fan the rest out among themselves. Engine loop only.
 */
final class DeliveryBatch {

    private final List<Runnable> deliveries = new ArrayList<>();
    private Executor executor; // where the gathered deliveries run; null while none is gathered

    /** Gathers a delivery (a channel's drain) to run on {@code on} at the next {@link #dispatch}. */
    void add(Executor on, Runnable delivery) {
        if (executor != null && executor != on) {
            dispatch(); // one executor a batch; channels on another start a batch of their own
        }
        executor = on;
        deliveries.add(delivery);
    }

    /** Hands every gathered delivery to its executor. Deliveries run in no particular order. */
    void dispatch() {
        if (deliveries.isEmpty()) {
            return;
        }
        Runnable[] batch = deliveries.toArray(new Runnable[0]);
        Executor on = executor;
        deliveries.clear();
        executor = null;
        on.execute(new FanOut(batch, 0, batch.length, on));
    }

    /**
     * Runs {@code deliveries[from, to)}: hands the upper half on to another task, repeatedly, and
     * runs the one delivery left.
     */
    private record FanOut(Runnable[] deliveries, int from, int to, Executor executor) implements Runnable {
        @Override
        public void run() {
            int end = to;
            // NOTE: the rest is handed on before this task runs its own delivery, so that each
            // delivery gets a task of its own, as if it had been handed over alone: a subscriber
            // that blocks holds back its own stream, never another.
            while (end - from > 1) {
                int mid = (from + end) >>> 1;
                executor.execute(new FanOut(deliveries, mid, end, executor));
                end = mid;
            }
            deliveries[from].run();
        }
    }
}
