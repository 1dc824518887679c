package ai.kiln.server;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.eclipse.jetty.server.Request;

/**
 * {@code GET /v1/models} (the list: the served model, or none while it loads) and
 * {@code GET /v1/models/{id}} (its card, or 404 for any other id).
 */
final class ModelsRoute implements Route {

    static final String LIST_PATH = "/v1/models";
    static final String CARD_PREFIX = "/v1/models/";
    /** The cards' route as metrics name it: one label for every id. */
    static final String CARD_ROUTE = "/v1/models/{id}";

    private final KilnServer server;
    /** The cards' {@code created}: when the server started, as the model has no date of its own. */
    private final long createdEpochSeconds = System.currentTimeMillis() / 1000;

    ModelsRoute(KilnServer server) {
        this.server = server;
    }

    @Override
    public void answer(Exchange exchange) {
        String path = Request.getPathInContext(exchange.request);
        if (path.equals(LIST_PATH)) {
            list(exchange);
        } else {
            card(exchange, path.substring(CARD_PREFIX.length()));
        }
    }

    private void list(Exchange exchange) {
        ObjectNode root = Exchange.JSON.createObjectNode();
        root.put("object", "list");
        ArrayNode data = root.putArray("data");
        ServedModel served = server.served();
        if (served != null) {
            data.add(card(served));
        }
        exchange.sendJson(200, root);
    }

    private void card(Exchange exchange, String id) {
        ServedModel served = server.served();
        if (served == null || !id.equals(served.name())) {
            throw ApiError.modelNotFound(id, String.valueOf(server.modelName()));
        }
        exchange.sendJson(200, card(served));
    }

    private ObjectNode card(ServedModel served) {
        ObjectNode card = Exchange.JSON.createObjectNode();
        card.put("id", served.name());
        card.put("object", "model");
        card.put("created", createdEpochSeconds);
        card.put("owned_by", "kiln");
        card.put("max_model_len", served.engine().maxModelLen());
        return card;
    }
}
