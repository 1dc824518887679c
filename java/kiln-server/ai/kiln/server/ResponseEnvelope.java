package ai.kiln.server;

import com.fasterxml.jackson.databind.node.ObjectNode;

/**
 * The fields every completion response and chunk of one request starts with.
 *
 * @param id      the response's id, the same in every chunk of a stream
 * @param object  what the object is: "text_completion", "chat.completion" or "chat.completion.chunk"
 * @param created when the request arrived, in seconds since the epoch
 * @param model   the served model's name
 */
record ResponseEnvelope(String id, String object, long created, String model) {

    /** A new response object holding id, object, created, model and a null system_fingerprint. */
    ObjectNode open() {
        ObjectNode root = Exchange.JSON.createObjectNode();
        root.put("id", id);
        root.put("object", object);
        root.put("created", created);
        root.put("model", model);
        root.putNull("system_fingerprint");
        return root;
    }
}
