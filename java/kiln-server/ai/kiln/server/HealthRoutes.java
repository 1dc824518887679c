package ai.kiln.server;

import java.util.Map;

/**
 * The probes: {@code GET /health} answers 200 whenever the process answers at all (liveness), and
 * {@code GET /ready} answers 200 only while a model is served and no drain has begun (readiness).
 */
final class HealthRoutes {

    private final KilnServer server;

    HealthRoutes(KilnServer server) {
        this.server = server;
    }

    Route health() {
        return exchange -> exchange.sendJson(200, Map.of("status", "ok"));
    }

    Route ready() {
        return exchange -> {
            KilnServer.State state = server.state();
            if (state == KilnServer.State.READY) {
                exchange.sendJson(200, Map.of("status", "ready", "model", server.modelName()));
            } else {
                exchange.sendError(ApiError.notReady(state));
            }
        };
    }
}
