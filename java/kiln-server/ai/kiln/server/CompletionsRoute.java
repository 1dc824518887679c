package ai.kiln.server;

import ai.kiln.api.GenerateRequest;
import ai.kiln.api.GenerateResult;
import ai.kiln.api.RequestOutput;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.util.ArrayList;
import java.util.List;

/**
 * {@code POST /v1/completions}: each prompt becomes one engine request (its {@code n} completions
 * sharing it), answered as one JSON body or as server-sent events. Choice {@code p * n + i} is
 * completion {@code i} of prompt {@code p}.
 */
final class CompletionsRoute implements GenerationRoute {

    static final String PATH = "/v1/completions";

    private final SseStreams streams;

    CompletionsRoute(SseStreams streams) {
        this.streams = streams;
    }

    @Override
    public void answer(Exchange exchange, JsonNode body, ServedModel model) {
        CompletionRequest req = CompletionRequest.parse(body);
        model.checkRequested(req.model());
        if (req.echo() && req.logprobs() != null) {
            throw ApiError.invalid("'echo' together with 'logprobs' is not supported (prompt log-probabilities are"
                    + " not computed).", "echo", "unsupported_parameter");
        }
        List<GenerateRequest> requests = new ArrayList<>();
        for (int i = 0; i < req.prompts().size(); i++) {
            CompletionRequest.Prompt p = req.prompts().get(i);
            String id = exchange.requestId + (req.prompts().size() > 1 ? "-" + i : "");
            requests.add(new GenerateRequest(id, p.text(), p.tokenIds(), null, req.params(), true));
        }
        GenerationCall call = model.calls().start(exchange, requests, "prompt");
        ResponseEnvelope envelope = new ResponseEnvelope("cmpl-" + exchange.requestId, "text_completion",
                System.currentTimeMillis() / 1000, model.name());
        if (req.stream()) {
            stream(exchange, call, req, envelope, model);
        } else {
            call.respondWhenDone(results -> whole(exchange, results, req, envelope, model));
        }
    }

    private static void whole(Exchange exchange, List<GenerateResult> results, CompletionRequest req,
            ResponseEnvelope envelope, ServedModel model) {
        int n = req.params().n();
        ObjectNode root = envelope.open();
        ArrayNode choices = root.putArray("choices");
        int prompt = 0;
        int completion = 0;
        for (int p = 0; p < results.size(); p++) {
            GenerateResult r = results.get(p);
            prompt += r.promptTokenIds().length;
            String echo = req.echo() ? promptText(req.prompts().get(p), r.promptTokenIds(), model) : "";
            for (GenerateResult.Completion c : r.completions()) {
                completion += c.tokenIds().length;
                ObjectNode choice = choices.addObject();
                choice.put("index", p * n + c.index());
                choice.put("text", echo + c.text());
                if (req.logprobs() != null) {
                    choice.set("logprobs", model.logprobs().completions(c.logprobs(), new int[] {0}));
                } else {
                    choice.putNull("logprobs");
                }
                choice.put("finish_reason", c.finishReason().apiName());
            }
        }
        Usage.report(exchange, root, prompt, completion);
        exchange.sendJson(200, root);
    }

    private void stream(Exchange exchange, GenerationCall call, CompletionRequest req,
            ResponseEnvelope envelope, ServedModel model) {
        ChunkStream chunks = new ChunkStream(streams.open(exchange, call), req.includeUsage());
        int n = req.params().n();
        // Per choice: whether its prompt has been echoed, where its next token's text starts, and
        // the logprobs of tokens whose text is still held back. The listener is called from one
        // thread at a time (GenerationCall delivers in order, under its lock).
        boolean[] echoed = new boolean[call.prompts() * n];
        int[] textOffset = new int[call.prompts() * n];
        HeldLogprobs held = new HeldLogprobs(call.prompts() * n);
        call.subscribe(new GenerationCall.Listener() {
            @Override
            public void output(int promptIndex, RequestOutput out) {
                int index = promptIndex * n + out.index();
                String text = out.text();
                if (req.echo() && !echoed[index]) {
                    echoed[index] = true;
                    text = promptText(req.prompts().get(promptIndex), call.handle(promptIndex).promptTokenIds(), model)
                            + text;
                }
                // No empty chunk mid-stream: the tokens' logprobs wait for the choice's next text or its end.
                // NOTE: a model without a tokenizer has no text to hold back: each token still gets
                // its (empty) chunk, so that such a stream shows its progress, as vLLM's does.
                if (text.isEmpty() && !out.finished() && model.engine().hasTokenizer()) {
                    held.hold(index, out.logprobs());
                    return;
                }
                ObjectNode chunk = envelope.open();
                ObjectNode choice = chunk.putArray("choices").addObject();
                choice.put("index", index);
                choice.put("text", text);
                if (req.logprobs() != null) {
                    int[] offset = {textOffset[index]};
                    choice.set("logprobs", model.logprobs().completions(held.release(index, out.logprobs()), offset));
                    textOffset[index] = offset[0];
                } else {
                    choice.putNull("logprobs");
                }
                choice.put("finish_reason", out.finished() ? out.finishReason().apiName() : null);
                chunks.send(chunk);
            }

            @Override
            public void finished() {
                chunks.finish(envelope.open(), call);
            }

            @Override
            public void failed(Throwable failure) {
                chunks.fail(failure);
            }
        });
    }

    /** The prompt as echoed: its text, or its token ids decoded. */
    private static String promptText(CompletionRequest.Prompt prompt, int[] promptTokenIds, ServedModel model) {
        return prompt.text() != null ? prompt.text() : model.texts().decode(promptTokenIds);
    }
}
