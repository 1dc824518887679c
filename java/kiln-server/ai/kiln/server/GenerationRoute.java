package ai.kiln.server;

import com.fasterxml.jackson.databind.JsonNode;

/** A route that generates: it answers a JSON body with the served model ({@link GenerationGate} lets it in). */
interface GenerationRoute {

    /**
     * Answers the request whose body is {@code body} (any JSON value, not yet checked) with
     * {@code model}; an {@link ApiError} thrown here is the answer.
     */
    void answer(Exchange exchange, JsonNode body, ServedModel model);
}
