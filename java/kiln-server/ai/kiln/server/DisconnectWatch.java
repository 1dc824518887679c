package ai.kiln.server;

import java.io.IOException;
import java.nio.ByteBuffer;
import org.eclipse.jetty.http.HttpHeader;
import org.eclipse.jetty.http.HttpHeaderValue;
import org.eclipse.jetty.io.AbstractEndPoint;
import org.eclipse.jetty.io.EndPoint;
import org.eclipse.jetty.util.BufferUtil;
import org.eclipse.jetty.util.Callback;

/**
 * Notices that the client of a non-streamed request has gone while its answer is being generated.
 * NOTE: Jetty reads an HTTP/1.1 connection only while a handler reads the body, so a client that
 * closes its socket during a long generation would be noticed only when the answer is written,
 * after all the work. The watch asks the connection's endpoint to call back when the socket turns
 * readable; end of stream or a read error means the client has gone. The watch must be stopped
 * before the answer is written: Jetty aborts a connection still read-interested when its
 * response completes.
 */
final class DisconnectWatch implements Callback {

    private static final Exception STOPPED = new Exception("watch stopped", null, false, false) { };

    private final Exchange exchange;
    private final AbstractEndPoint endPoint;
    private final Runnable onGone;
    private boolean stopped;                 // guarded by this

    private DisconnectWatch(Exchange exchange, AbstractEndPoint endPoint, Runnable onGone) {
        this.exchange = exchange;
        this.endPoint = endPoint;
        this.onGone = onGone;
    }

    /** Watches the connection of {@code exchange}, whose body has been read; {@code onGone} runs once if the client goes. */
    static DisconnectWatch start(Exchange exchange, Runnable onGone) {
        EndPoint endPoint = exchange.request.getConnectionMetaData().getConnection().getEndPoint();
        DisconnectWatch watch = new DisconnectWatch(exchange, endPoint instanceof AbstractEndPoint a ? a : null, onGone);
        synchronized (watch) {
            // Something else reading the connection (or one that is not a socket): nothing to watch.
            if (watch.endPoint == null || !watch.endPoint.tryFillInterested(watch)) {
                watch.stopped = true;
            }
        }
        return watch;
    }

    /** Ends the watch; call before writing the answer. */
    synchronized void stop() {
        if (stopped) {
            return;
        }
        stopped = true;
        endPoint.getFillInterest().onFail(STOPPED);
    }

    @Override
    public synchronized void succeeded() {
        if (stopped) {
            return;
        }
        int filled;
        try {
            ByteBuffer probe = BufferUtil.allocate(1);
            filled = endPoint.fill(probe);
        } catch (IOException e) {
            filled = -1;
        }
        if (filled < 0) {
            stopped = true;
            onGone.run();
        } else if (filled > 0) {
            // NOTE: data while the answer is being generated is a pipelined next request (rare),
            // now lost to Jetty's parser: the watch ends, and the connection closes after this
            // answer so that the client sends that request again.
            stopped = true;
            exchange.response.getHeaders().put(HttpHeader.CONNECTION, HttpHeaderValue.CLOSE.asString());
        } else if (!endPoint.tryFillInterested(this)) {
            stopped = true;
        }
    }

    @Override
    public synchronized void failed(Throwable x) {
        if (stopped || x == STOPPED) {
            return;
        }
        // The endpoint closed or failed (an idle timeout is reported to the request's own listeners).
        if (!endPoint.isOpen()) {
            stopped = true;
            onGone.run();
        }
    }
}
