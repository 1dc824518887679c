package ai.kiln.server;

import ai.kiln.api.Engine;

/**
 * What {@link KilnServer#serve} sets up for the generation routes: the engine under the name clients
 * use, the tracking of its requests, and the spelling of its tokens.
 *
 * @param name     the model name requests must carry
 * @param engine   the engine generating
 * @param calls    admission and tracking of the engine requests in flight
 * @param logprobs renders log-probabilities with the model's token texts
 * @param texts    the model's token texts (echoed prompts given as token ids)
 * @param toolCalls how the model writes tool calls
 */
record ServedModel(String name, Engine engine, GenerationCalls calls, LogprobsJson logprobs, TokenTexts texts,
        ToolCallFormat toolCalls) {

    /** Refuses (404) a request for a model other than this one. */
    void checkRequested(String model) {
        if (!model.equals(name)) {
            throw ApiError.modelNotFound(model, name);
        }
    }
}
