package ai.kiln.server;

/**
 * One entry of the server's routing table: the answer to a request whose path, method and
 * authorization the routing already checked.
 */
interface Route {

    /**
     * Answers {@code exchange}, at once or later from another thread. An {@link ApiError} thrown
     * here is the answer; any other exception is answered as a 500.
     */
    void answer(Exchange exchange);
}
