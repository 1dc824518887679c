/**
 * LangChain4j chat models that run a Kiln engine in the application's own JVM:
 * {@link ai.kiln.langchain4j.KilnChatModel} (blocking) and
 * {@link ai.kiln.langchain4j.KilnStreamingChatModel} (streaming), usable directly or under
 * LangChain4j's {@code AiServices}.
 *
 * <pre>{@code
 * try (Engine engine = Engine.create(Path.of("models/llama-3.2-1b"), EngineOptions.defaults())) {
 *     KilnChatModel model = KilnChatModel.builder().engine(engine).modelName("llama-3.2-1b").build();
 *     Assistant assistant = AiServices.create(Assistant.class, model);
 *     System.out.println(assistant.chat("Hello"));
 * }
 * }</pre>
 *
 * <p>What maps to what:
 * <ul>
 * <li>Messages: system, user (text parts, joined) and AI (text) messages become the
 *     {@code {"role", "content"}} maps the model's chat template renders (roles system, user,
 *     assistant; a user's name is passed as {@code name}).</li>
 * <li>Parameters: temperature, topP, topK, frequencyPenalty, presencePenalty, maxOutputTokens
 *     (unset: up to the context length) and stopSequences become Kiln's {@code SamplingParams};
 *     unset ones keep Kiln's defaults. Defaults set on the builder are merged under each
 *     request's parameters by LangChain4j's own {@code chat}, as for every provider.</li>
 * <li>Responses: the answer's text, {@code TokenUsage} (the prompt's tokens after the template,
 *     and the generated tokens, a final end-of-sequence token included), the finish reason (STOP
 *     for an end-of-sequence token or a stop string, LENGTH for the budget or the context), the
 *     engine request id, and the model name.</li>
 *
 * <li>Structured output: responseFormat JSON constrains the answer to a JSON object, or to
 *     JSON its schema accepts (LangChain4j's schema elements written as the JSON schema Kiln's
 *     grammar compiles).</li>
 * <li>Tools ({@link KilnChatModel}): tool specifications reach the chat template as its
 *     {@code tools} variable; the calls the model writes, in the format the template's markers
 *     name, come back as tool execution requests (finish reason TOOL_EXECUTION); AI messages with
 *     calls and tool results in the history reach the template as Kiln's server passes them;
 *     toolChoice REQUIRED makes the answer exactly one call, its arguments matching the tool's
 *     parameters, by a grammar.</li>
 * </ul>
 *
 * <p>Not supported, and refused with an
 * {@link dev.langchain4j.exception.UnsupportedFeatureException} rather than ignored: tools on
 * the streaming model, and non-text content (images, audio, video, PDF).
 */
package ai.kiln.langchain4j;
