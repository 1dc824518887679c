package ai.kiln.api;

import java.util.Iterator;
import java.util.NoSuchElementException;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.Flow;

/**
 * A request's outputs as a blocking iterator, for code that would rather loop than subscribe:
 * {@link #hasNext()} waits for the next output. It asks the stream for one output at a time, so an
 * iterator read slowly holds the stream back as a slow subscriber would. {@link #close()} (or
 * leaving a try-with-resources block early) cancels the request.
 *
 * <pre>{@code
 * try (OutputIterator outputs = engine.submit(request.withStream(true)).iterator()) {
 *     while (outputs.hasNext()) {
 *         System.out.print(outputs.next().text());
 *     }
 * }
 * }</pre>
 *
 * <p>A stream that ends in an error ({@link RequestAbortedException}, or an {@link EngineException}
 * for a failed step) throws it from {@link #hasNext()}. Not thread-safe: one consumer.
 */
public final class OutputIterator implements Iterator<RequestOutput>, AutoCloseable {

    /** What the stream delivered: an output, or its end. */
    private sealed interface Event permits Output, End {
    }

    private record Output(RequestOutput output) implements Event {
    }

    private record End(Throwable failure) implements Event {
    }

    private final RequestHandle handle;
    // NOTE: one output is requested at a time, so at most that one and the end are ever queued.
    private final BlockingQueue<Event> events = new ArrayBlockingQueue<>(2);
    private volatile Flow.Subscription subscription;
    private Event next;      // taken from the queue, not yet returned
    private boolean ended;

    OutputIterator(RequestHandle handle) {
        this.handle = handle;
        handle.subscribe(new Flow.Subscriber<RequestOutput>() {
            @Override
            public void onSubscribe(Flow.Subscription s) {
                subscription = s;
                s.request(1);
            }

            @Override
            public void onNext(RequestOutput output) {
                events.add(new Output(output));
            }

            @Override
            public void onError(Throwable failure) {
                events.add(new End(failure));
            }

            @Override
            public void onComplete() {
                events.add(new End(null));
            }
        });
    }

    /** Waits for the next output or the end of the stream. */
    @Override
    public boolean hasNext() {
        if (next == null && !ended) {
            try {
                next = events.take();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new RequestAbortedException("interrupted while waiting for the next output of request "
                        + handle.requestId());
            }
        }
        if (next instanceof End end) {
            ended = true;
            next = null;
            if (end.failure() instanceof RuntimeException r) {
                throw r;
            }
            if (end.failure() != null) {
                throw new EngineException("request " + handle.requestId() + " failed: " + end.failure(),
                        end.failure());
            }
            return false;
        }
        return next != null;
    }

    @Override
    public RequestOutput next() {
        if (!hasNext()) {
            throw new NoSuchElementException("request " + handle.requestId() + " has no more outputs");
        }
        RequestOutput output = ((Output) next).output();
        next = null;
        subscription.request(1);
        return output;
    }

    /** Cancels the request if it is still running; the iterator then ends. */
    @Override
    public void close() {
        handle.cancel();
    }
}
