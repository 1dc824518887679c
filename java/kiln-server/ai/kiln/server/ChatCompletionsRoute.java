package ai.kiln.server;

import ai.kiln.api.GenerateRequest;
import ai.kiln.api.FinishReason;
import ai.kiln.api.GenerateResult;
import ai.kiln.api.RequestOutput;
import ai.kiln.api.SamplingParams;
import ai.kiln.api.TokenLogprobs;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.util.List;

/**
 * {@code POST /v1/chat/completions}: the messages, rendered with the model's chat template, become
 * one engine request with {@code n} completions, answered as one JSON body or as server-sent events
 * (a first chunk per choice with the assistant role, content chunks, a last chunk per choice with
 * its finish reason). With tools offered, tool calls in the output become {@code tool_calls}
 * ({@link ToolCallFormat}, streamed by {@link ToolCallStream}); tool_choice "required" or a named
 * function constrains the output to one call with the format's grammar.
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
        ChatTools tools = req.tools();
        ToolCallFormat format = model.toolCalls();
        SamplingParams params = req.params();
        if (tools.forced()) {
            params = params.toBuilder().structuredOutput(format.forcedCall(tools.callable())).build();
        } else if (tools.parsesCalls() && format == ToolCallFormat.MISTRAL) {
            // NOTE: Mistral's [TOOL_CALLS] is a control token, which skip_special_tokens would drop
            // from the text before it is read for calls (vLLM's mistral parser does the same).
            params = params.toBuilder().skipSpecialTokens(false).build();
        }
        GenerateRequest request = new GenerateRequest(exchange.requestId, null, null, req.messages(), params, true,
                tools.templateVariables());
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
            ToolCallFormat.Parsed parsed = readCalls(req.tools(), model.toolCalls(), c.text());
            message.put("content", parsed.content());
            message.putNull("refusal");
            if (!parsed.calls().isEmpty()) {
                ArrayNode calls = message.putArray("tool_calls");
                for (ToolCallFormat.ToolCall call : parsed.calls()) {
                    ObjectNode t = calls.addObject();
                    t.put("id", call.id());
                    t.put("type", "function");
                    ObjectNode function = t.putObject("function");
                    function.put("name", call.name());
                    function.put("arguments", call.arguments());
                }
            }
            if (req.logprobs()) {
                choice.set("logprobs", model.logprobs().chatChoice(c.logprobs()));
            } else {
                choice.putNull("logprobs");
            }
            choice.put("finish_reason", finishReason(c.finishReason(), parsed));
        }
        Usage.report(exchange, root, r.promptTokenIds().length, completion);
        exchange.sendJson(200, root);
    }

    /** The output's calls, when the request offered tools; else the whole text as content. */
    static ToolCallFormat.Parsed readCalls(ChatTools tools, ToolCallFormat format, String text) {
        if (!tools.parsesCalls()) {
            return new ToolCallFormat.Parsed(text, List.of());
        }
        return tools.forced() ? format.parseForced(text) : format.parse(text);
    }

    /** "tool_calls" for an output that ended (not cut short) with calls, as OpenAI's. */
    private static String finishReason(FinishReason reason, ToolCallFormat.Parsed parsed) {
        return reason == FinishReason.STOP && !parsed.calls().isEmpty() ? "tool_calls" : reason.apiName();
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
        // Per choice, with tools: content and calls as ToolCallStream lets them out (a call's tokens'
        // logprobs go with the next content or the choice's last chunk).
        ChatTools tools = req.tools();
        ToolCallStream[] toolText = new ToolCallStream[n];
        call.subscribe(new GenerationCall.Listener() {
            {
                for (int i = 0; i < n; i++) {
                    int index = i;
                    toolText[i] = !tools.parsesCalls() ? null
                            : new ToolCallStream(model.toolCalls(), tools.forced(), new ToolCallStream.Sink() {
                                @Override
                                public void content(String text) {
                                    sendContent(index, text, held.release(index, null));
                                }

                                @Override
                                public void callHead(int callIndex, String id, String name) {
                                    sendCallDelta(index, callIndex, id, name, null);
                                }

                                @Override
                                public void callArguments(int callIndex, String fragment) {
                                    sendCallDelta(index, callIndex, null, null, fragment);
                                }
                            });
                }
            }

            @Override
            public void output(int promptIndex, RequestOutput out) {
                int index = out.index();
                if (toolText[index] != null) {
                    held.hold(index, out.logprobs());
                    toolText[index].push(out.text());
                } else if (!out.text().isEmpty()) {
                    sendContent(index, out.text(), held.release(index, out.logprobs()));
                } else {
                    // No empty content chunk: the tokens' logprobs wait for the choice's next content or its end.
                    held.hold(index, out.logprobs());
                }
                if (out.finished()) {
                    boolean called = toolText[index] != null && toolText[index].finish();
                    ObjectNode chunk = envelope.open();
                    ObjectNode choice = chunk.putArray("choices").addObject();
                    choice.put("index", index);
                    choice.putObject("delta");
                    // Tokens with no text of their own (an end-of-sequence token, text cut at a stop string) end here.
                    List<TokenLogprobs> rest = held.release(index, null);
                    if (req.logprobs() && rest != null && !rest.isEmpty()) {
                        choice.set("logprobs", model.logprobs().chatChoice(rest));
                    } else {
                        choice.putNull("logprobs");
                    }
                    choice.put("finish_reason", called && out.finishReason() == FinishReason.STOP ? "tool_calls"
                            : out.finishReason().apiName());
                    chunks.send(chunk);
                }
            }

            private void sendContent(int index, String content, List<TokenLogprobs> logprobs) {
                ObjectNode chunk = envelope.open();
                ObjectNode choice = chunk.putArray("choices").addObject();
                choice.put("index", index);
                choice.putObject("delta").put("content", content);
                if (req.logprobs() && logprobs != null) {
                    choice.set("logprobs", model.logprobs().chatChoice(logprobs));
                } else {
                    choice.putNull("logprobs");
                }
                choice.putNull("finish_reason");
                chunks.send(chunk);
            }

            /**
             * One tool_calls delta, as OpenAI streams a call: the head (id, type, name, empty
             * arguments) once, then fragments of the arguments.
             */
            private void sendCallDelta(int index, int callIndex, String id, String name, String arguments) {
                ObjectNode chunk = envelope.open();
                ObjectNode choice = chunk.putArray("choices").addObject();
                choice.put("index", index);
                ObjectNode call = choice.putObject("delta").putArray("tool_calls").addObject();
                call.put("index", callIndex);
                if (id != null) {
                    call.put("id", id);
                    call.put("type", "function");
                    call.putObject("function").put("name", name).put("arguments", "");
                } else {
                    call.putObject("function").put("arguments", arguments);
                }
                choice.putNull("logprobs");
                choice.putNull("finish_reason");
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
}
