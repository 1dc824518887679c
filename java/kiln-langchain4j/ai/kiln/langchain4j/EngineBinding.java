package ai.kiln.langchain4j;

import ai.kiln.api.Engine;
import ai.kiln.api.GenerateRequest;
import ai.kiln.api.RequestHandle;
import dev.langchain4j.exception.InvalidRequestException;
import java.util.UUID;

/**
 * The engine a model runs on, the model name it answers to, and whether the model owns the
 * engine (created it from a model directory, so closing the model closes the engine).
 */
record EngineBinding(Engine engine, String modelName, boolean owned) {

    /**
     * Queues a request on the engine. The engine refuses a request it can never serve (a prompt
     * longer than the context, a template that cannot render the messages) with an
     * {@link IllegalArgumentException}; that becomes LangChain4j's {@link InvalidRequestException},
     * which callers (and AiServices) treat as "do not retry as is". A closed engine's
     * {@link IllegalStateException} passes through unchanged: it is the application's state, not
     * the request, that is wrong.
     */
    RequestHandle submit(GenerateRequest request) {
        try {
            return engine.submit(request);
        } catch (IllegalArgumentException e) {
            throw new InvalidRequestException("the Kiln engine refused the request for model '" + modelName + "': "
                    + e.getMessage(), e);
        }
    }

    /**
     * The format the model writes tool calls in: the one its chat template's markers name, as
     * Kiln's server picks it by default.
     */
    ai.kiln.api.ToolCallFormat toolCalling() {
        return ai.kiln.api.ToolCallFormat.ofTemplate(engine.hasTokenizer() ? engine.tokenizer().chatTemplateText() : null);
    }

    /** A request id unique across engines and restarts, so that logs and response ids never collide. */
    static String newRequestId() {
        return "kiln-" + UUID.randomUUID();
    }

    /** Closes the engine if the model created it; an engine given to the builder stays open. */
    void closeIfOwned() {
        if (owned) {
            engine.close();
        }
    }
}
