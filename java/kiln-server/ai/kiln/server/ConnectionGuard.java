package ai.kiln.server;

import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicInteger;
import org.eclipse.jetty.http.HttpParser;
import org.eclipse.jetty.io.Connection;
import org.eclipse.jetty.io.EndPoint;
import org.eclipse.jetty.io.IdleTimeout;
import org.eclipse.jetty.server.ServerConnector;
import org.eclipse.jetty.server.internal.HttpConnection;
import org.eclipse.jetty.util.thread.Scheduler;

/**
 * Keeps slow and idle clients from holding the server's connections. At
 * {@link KilnServer.ConnectionLimits#maxConnections()} open connections the one idle longest among
 * those still waiting for or sending a request is closed (one being answered never is), while
 * Jetty's {@code ConnectionLimit} holds new ones in the listen backlog until there is room. A
 * request whose line and headers are not complete within the header timeout has its connection
 * closed. Request bodies being read register a {@link Deadline}. One sweep on Jetty's scheduler
 * checks both every {@link #SWEEP_MILLIS} ms.
 */
final class ConnectionGuard implements Connection.Listener {

    static final long SWEEP_MILLIS = 100;

    /** A limit in time on something in progress. */
    interface Deadline {
        /** Checks the limit at {@code nowNanos} and acts on it; true once it needs no more checks. */
        boolean check(long nowNanos);
    }

    /** When the headers of a connection's request (its {@code requestIndex}-th) were first seen arriving. */
    private record HeaderClock(long requestIndex, long sinceNanos) { }

    private final ServerConnector connector;
    private final int maxConnections;
    private final long headerTimeoutNanos;
    private final AtomicInteger open = new AtomicInteger();
    private final Map<EndPoint, HeaderClock> headerClocks = new ConcurrentHashMap<>();
    private final Set<Deadline> deadlines = ConcurrentHashMap.newKeySet();
    private volatile Scheduler.Task sweep;
    private volatile boolean stopped;

    ConnectionGuard(ServerConnector connector, KilnServer.ConnectionLimits limits) {
        this.connector = connector;
        this.maxConnections = limits.maxConnections();
        this.headerTimeoutNanos = limits.headerTimeout().toNanos();
    }

    /** Starts the sweeps; Jetty's scheduler must be running (the server started). */
    void start() {
        schedule();
    }

    void stop() {
        stopped = true;
        Scheduler.Task task = sweep;
        if (task != null) {
            task.cancel();
        }
    }

    void watch(Deadline deadline) {
        deadlines.add(deadline);
    }

    int openConnections() {
        return open.get();
    }

    @Override
    public void onOpened(Connection connection) {
        if (open.incrementAndGet() >= maxConnections) {
            closeIdlest(connection.getEndPoint());
        }
    }

    @Override
    public void onClosed(Connection connection) {
        open.decrementAndGet();
        headerClocks.remove(connection.getEndPoint());
    }

    /** A connection idle for less than this is never the one closed at the cap. */
    static final long MIN_IDLE_MILLIS = 100;

    /**
     * Closes the connection idle longest among those not being answered, other than {@code spare}.
     * NOTE: a connection being answered may be idle for long (a non-streamed generation writes
     * nothing until it ends); it is never the one closed.
     */
    private void closeIdlest(EndPoint spare) {
        EndPoint idlest = null;
        long longest = -1;
        for (EndPoint endPoint : connector.getConnectedEndPoints()) {
            if (endPoint == spare || !endPoint.isOpen() || !(endPoint.getConnection() instanceof HttpConnection http)
                    || !awaitingRequest(http.getParser())) {
                continue;
            }
            long idle = endPoint instanceof IdleTimeout t ? t.getIdleFor() : 0;
            // NOTE: a request that has just arrived is not idle yet, only not parsed yet.
            if (idle < MIN_IDLE_MILLIS) {
                continue;
            }
            if (idle > longest) {
                longest = idle;
                idlest = endPoint;
            }
        }
        if (idlest != null) {
            idlest.close(new TimeoutException("closed at the connection limit of " + maxConnections
                    + " after " + longest + " ms idle"));
        }
    }

    /** Between requests, or a request still arriving (line, headers or body). */
    private static boolean awaitingRequest(HttpParser parser) {
        return parser.isStart() || parser.inHeaderState() || parser.inContentState();
    }

    private void schedule() {
        if (!stopped) {
            sweep = connector.getScheduler().schedule(this::sweep, SWEEP_MILLIS, TimeUnit.MILLISECONDS);
        }
    }

    private void sweep() {
        try {
            long now = System.nanoTime();
            for (EndPoint endPoint : connector.getConnectedEndPoints()) {
                if (endPoint.getConnection() instanceof HttpConnection http) {
                    checkHeaders(endPoint, http, now);
                }
            }
            // A clock whose connection closed while this sweep looked at it (its onClosed ran first).
            headerClocks.keySet().removeIf(endPoint -> !endPoint.isOpen());
            deadlines.removeIf(d -> d.check(now));
            // NOTE: at the cap the connector accepts no one, so no onOpened comes to make room: a
            // cap reached while every connection was being answered is relieved here, once some
            // of them wait idle for their next request.
            if (open.get() >= maxConnections) {
                closeIdlest(null);
            }
        } finally {
            schedule();
        }
    }

    private void checkHeaders(EndPoint endPoint, HttpConnection http, long now) {
        HttpParser parser = http.getParser();
        // NOTE: START is also where a kept-alive connection waits between requests (bounded by the
        // idle timeout); the clock runs from the request line's first byte.
        if (parser.isStart() || !parser.inHeaderState()) {
            if (!headerClocks.isEmpty()) {
                headerClocks.remove(endPoint);
            }
            return;
        }
        long requestIndex = http.getMessagesIn();
        HeaderClock clock = headerClocks.compute(endPoint,
                (e, c) -> c != null && c.requestIndex() == requestIndex ? c : new HeaderClock(requestIndex, now));
        if (now - clock.sinceNanos() > headerTimeoutNanos) {
            headerClocks.remove(endPoint);
            endPoint.close(new TimeoutException("request headers not complete within "
                    + TimeUnit.NANOSECONDS.toMillis(headerTimeoutNanos) + " ms"));
        }
    }
}
