package ai.kiln.server;

/** {@code GET /metrics}: the server's and the engine's metrics in Prometheus' text format. */
final class MetricsRoute implements Route {

    private final ServerMetrics metrics;

    MetricsRoute(ServerMetrics metrics) {
        this.metrics = metrics;
    }

    @Override
    public void answer(Exchange exchange) {
        exchange.send(200, metrics.contentType(), metrics.scrape());
    }
}
