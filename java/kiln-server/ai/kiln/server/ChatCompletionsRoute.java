package ai.kiln.server;

import ai.kiln.api.GenerateRequest;
import ai.kiln.api.GenerateResult;
import ai.kiln.api.RequestOutput;
import ai.kiln.api.TokenLogprobs;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.util.List;

/**
 * {@code POST /v1/chat/completions}: the messages, rendered with the model's chat template, become
 * one engine request with {@code n} completions, answered as one JSON body or as server-sent events
 * (a first chunk per choice with the assistant role, content chunks, a last chunk per choice with
 * its finish reason).
 */
final class ChatCompletionsRoute implements GenerationRoute {

    static final String PATH = "/v1/chat/completions";

    private final SseStreams streams;

    ChatCompletionsRoute(SseStreams streams) {
        this.streams = streams;
    }

    @Override
    public void answer(Exchange exchange, JsonNode body, ServedModel model) {
        ChatRequest req = ChatRequest.parse(body);
        model.checkRequested(req.model());
        GenerateRequest request = new GenerateRequest(exchange.requestId, null, null, req.messages(), req.params(), true);
        GenerationCall call = model.calls().start(exchange, List.of(request), "messages");
        String id = "chatcmpl-" + exchange.requestId;
        long created = System.currentTimeMillis() / 1000;
        if (req.stream()) {
            stream(exchange, call, req, new ResponseEnvelope(id, "chat.completion.chunk", created, model.name()), model);
        } else {
            ResponseEnvelope envelope = new ResponseEnvelope(id, "chat.completion", created, model.name());
            call.respondWhenDone(results -> whole(exchange, results.get(0), req, envelope, model));
        }
    }

    private static void whole(Exchange exchange, GenerateResult r, ChatRequest req, ResponseEnvelope envelope,
            ServedModel model) {
        ObjectNode root = envelope.open();
        ArrayNode choices = root.putArray("choices");
        int completion = 0;
        for (GenerateResult.Completion c : r.completions()) {
            completion += c.tokenIds().length;
            ObjectNode choice = choices.addObject();
            choice.put("index", c.index());
            ObjectNode message = choice.putObject("message");
            message.put("role", "assistant");
            message.put("content", c.text());
            message.putNull("refusal");
            if (req.logprobs()) {
                choice.set("logprobs", model.logprobs().chatChoice(c.logprobs()));
            } else {
                choice.putNull("logprobs");
            }
            choice.put("finish_reason", c.finishReason().apiName());
        }
        Usage.report(exchange, root, r.promptTokenIds().length, completion);
        exchange.sendJson(200, root);
    }

    private void stream(Exchange exchange, GenerationCall call, ChatRequest req, ResponseEnvelope envelope,
            ServedModel model) {
        ChunkStream chunks = new ChunkStream(streams.open(exchange, call), req.includeUsage());
        int n = req.params().n();
        for (int i = 0; i < n; i++) {
            ObjectNode chunk = envelope.open();
            ObjectNode choice = chunk.putArray("choices").addObject();
            choice.put("index", i);
            ObjectNode delta = choice.putObject("delta");
            delta.put("role", "assistant");
            delta.put("content", "");
            choice.putNull("logprobs");
            choice.putNull("finish_reason");
            chunks.send(chunk);
        }
        // Per choice, the logprobs of tokens whose text is still held back; the listener is called
        // from one thread at a time (GenerationCall delivers in order, under its lock).
        HeldLogprobs held = new HeldLogprobs(n);
        call.subscribe(new GenerationCall.Listener() {
            @Override
            public void output(int promptIndex, RequestOutput out) {
                if (!out.text().isEmpty()) {
                    ObjectNode chunk = envelope.open();
                    ObjectNode choice = chunk.putArray("choices").addObject();
                    choice.put("index", out.index());
                    choice.putObject("delta").put("content", out.text());
                    List<TokenLogprobs> logprobs = held.release(out.index(), out.logprobs());
                    if (req.logprobs()) {
                        choice.set("logprobs", model.logprobs().chatChoice(logprobs));
                    } else {
                        choice.putNull("logprobs");
                    }
                    choice.putNull("finish_reason");
                    chunks.send(chunk);
                } else {
                    // No empty content chunk: the tokens' logprobs wait for the choice's next content or its end.
                    held.hold(out.index(), out.logprobs());
                }
                if (out.finished()) {
                    ObjectNode chunk = envelope.open();
                    ObjectNode choice = chunk.putArray("choices").addObject();
                    choice.put("index", out.index());
                    choice.putObject("delta");
                    // Tokens with no text of their own (an end-of-sequence token, text cut at a stop string) end here.
                    List<TokenLogprobs> rest = held.release(out.index(), null);
                    if (req.logprobs() && rest != null && !rest.isEmpty()) {
                        choice.set("logprobs", model.logprobs().chatChoice(rest));
                    } else {
                        choice.putNull("logprobs");
                    }
                    choice.put("finish_reason", out.finishReason().apiName());
                    chunks.send(chunk);
                }
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
}
