package ai.kiln.server;

/**
 * What stands before a {@link GenerationRoute}: the server must be ready (else 503, counted by the
 * state that refused it), and the body must arrive in full (within the body limits) and be strict
 * JSON before the route sees it.
 */
final class GenerationGate implements Route {

    private final KilnServer server;
    private final BodyReader bodies;
    private final ServerMetrics metrics;
    private final GenerationRoute route;

    GenerationGate(KilnServer server, BodyReader bodies, ServerMetrics metrics, GenerationRoute route) {
        this.server = server;
        this.bodies = bodies;
        this.metrics = metrics;
        this.route = route;
    }

    @Override
    public void answer(Exchange exchange) {
        KilnServer.State state = server.state();
        ServedModel model = server.served();
        if (state != KilnServer.State.READY || model == null) {
            metrics.rejected.labelValues(state.name().toLowerCase()).inc();
            throw ApiError.notReady(state);
        }
        bodies.read(exchange, bytes -> exchange.answering(
                () -> route.answer(exchange, RequestJson.parse(bytes), model)));
    }
}
