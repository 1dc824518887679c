package ai.kiln.engine;

import java.util.ArrayDeque;
import java.util.concurrent.Executor;
import java.util.concurrent.Flow;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * A request's outputs on their way to its one subscriber: a bounded buffer the engine loop
 * offers to without ever blocking, drained on an executor as the subscriber's demand allows.
 * Outputs produced before the subscriber arrives wait in the buffer. Completion comes after
 * every buffered output; an error comes once the outputs the subscriber asked for are delivered.
 */
final class OutputChannel<T> implements Flow.Publisher<T> {

    private final int capacity;
    private final Executor executor;
    private volatile Runnable onSubscriberCancel = () -> { };
    private final ArrayDeque<T> buffer = new ArrayDeque<>();
    private final AtomicInteger wip = new AtomicInteger();
    private final Runnable drainLoop = this::drainLoop;
    private Flow.Subscriber<? super T> subscriber; // guarded by this
    private boolean subscribed;                     // guarded by this
    private boolean started;                        // onSubscribe delivered (drain thread only)
    private long demand;                            // guarded by this
    private boolean completed;                      // guarded by this
    private Throwable error;                        // guarded by this
    private boolean cancelled;                      // guarded by this
    private boolean terminated;                     // terminal signal delivered (drain thread only)

    /**
     * @param capacity outputs that may wait undelivered
     * @param executor runs the subscriber's callbacks
     */
    OutputChannel(int capacity, Executor executor) {
        this.capacity = capacity;
        this.executor = executor;
    }

    /** What to do (once) when the subscriber cancels its subscription. */
    void onSubscriberCancel(Runnable action) {
        onSubscriberCancel = action;
    }

    /** Queues an output; false when the buffer is full (nothing is queued). Never blocks. */
    boolean offer(T item) {
        Offered offered = enqueue(item);
        if (offered == Offered.QUEUED) {
            drain();
        }
        return offered != Offered.REFUSED;
    }

    /**
     * Queues an output as {@link #offer(Object)} does, but a delivery it has to start joins
     * {@code batch} instead of being handed to the executor at once. Until the batch is
     * dispatched this channel delivers nothing: the caller must dispatch it.
     */
    boolean offer(T item, DeliveryBatch batch) {
        Offered offered = enqueue(item);
        if (offered == Offered.QUEUED && wip.getAndIncrement() == 0) {
            batch.add(executor, drainLoop);
        }
        return offered != Offered.REFUSED;
    }

    private enum Offered { QUEUED, DROPPED, REFUSED }

    private synchronized Offered enqueue(T item) {
        if (cancelled || completed || error != null) {
            return Offered.DROPPED; // nobody will read it; not the producer's problem
        }
        if (buffer.size() >= capacity) {
            return Offered.REFUSED;
        }
        buffer.addLast(item);
        return Offered.QUEUED;
    }

    /** Outputs buffered and not yet delivered. */
    synchronized int pending() {
        return buffer.size();
    }

    void complete() {
        synchronized (this) {
            if (completed || error != null) {
                return;
            }
            completed = true;
        }
        drain();
    }

    void fail(Throwable cause) {
        synchronized (this) {
            if (completed || error != null) {
                return;
            }
            error = cause;
        }
        drain();
    }

    @Override
    public void subscribe(Flow.Subscriber<? super T> s) {
        synchronized (this) {
            if (!subscribed) {
                subscribed = true;
                subscriber = s;
                s = null;
            }
        }
        if (s != null) {
            Flow.Subscriber<? super T> late = s;
            executor.execute(() -> {
                late.onSubscribe(new Flow.Subscription() {
                    @Override
                    public void request(long n) {
                    }

                    @Override
                    public void cancel() {
                    }
                });
                late.onError(new IllegalStateException("a request's outputs can be subscribed to only once"));
            });
            return;
        }
        drain();
    }

    private final Flow.Subscription subscription = new Flow.Subscription() {
        @Override
        public void request(long n) {
            synchronized (OutputChannel.this) {
                if (cancelled) {
                    return;
                }
                if (n <= 0) {
                    // Reactive Streams rule 3.9: signal an error for a non-positive request.
                    error = new IllegalArgumentException("Subscription.request needs n > 0, got " + n);
                    buffer.clear();
                } else {
                    demand = demand + n < 0 ? Long.MAX_VALUE : demand + n;
                }
            }
            drain();
        }

        @Override
        public void cancel() {
            boolean first;
            synchronized (OutputChannel.this) {
                first = !cancelled;
                cancelled = true;
                buffer.clear();
            }
            if (first) {
                onSubscriberCancel.run();
            }
        }
    };

    private void drain() {
        if (wip.getAndIncrement() == 0) {
            executor.execute(drainLoop);
        }
    }

    private void drainLoop() {
        int missed = 1;
        do {
            deliver();
            missed = wip.addAndGet(-missed);
        } while (missed != 0);
    }

    private void deliver() {
        Flow.Subscriber<? super T> s;
        synchronized (this) {
            s = subscriber;
        }
        if (s == null || terminated) {
            return;
        }
        if (!started) {
            started = true;
            s.onSubscribe(subscription);
        }
        while (true) {
            T item;
            Throwable failure;
            boolean done;
            synchronized (this) {
                if (cancelled) {
                    terminated = true;
                    subscriber = null;
                    return;
                }
                failure = error;
                done = completed;
                item = demand > 0 ? buffer.pollFirst() : null;
                if (item != null) {
                    demand--;
                } else if (!buffer.isEmpty() && failure == null) {
                    return; // wait for demand
                }
                // NOTE: an error does not wait for demand: outputs the subscriber has not asked
                // for are dropped, so a stalled subscriber still learns why its stream ended.
            }
            if (item != null) {
                s.onNext(item);
                continue;
            }
            if (failure != null || done) {
                terminated = true;
                synchronized (this) {
                    subscriber = null;
                }
                if (failure != null) {
                    s.onError(failure);
                } else {
                    s.onComplete();
                }
            }
            return;
        }
    }
}
