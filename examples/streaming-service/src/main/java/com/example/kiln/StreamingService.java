package com.example.kiln;

import ai.kiln.api.Engine;
import ai.kiln.api.EngineOptions;
import ai.kiln.api.GenerateRequest;
import ai.kiln.api.GenerateResult;
import ai.kiln.api.OutputIterator;
import ai.kiln.api.RequestHandle;
import ai.kiln.api.SamplingParams;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

/**
 * Loads a model once and answers four chat requests from four threads at the same time, each
 * streaming its reply as it is generated; the engine batches them together.
 *
 * <pre>
 * mvn -q compile exec:java -Dexec.args="path/to/model-directory"
 * </pre>
 */
public final class StreamingService {

    /** One streamed reply: the text as it came in pieces, and the engine's result. */
    public record Reply(String question, String streamedText, int pieces, GenerateResult result) {
    }

    private final Engine engine;

    public StreamingService(Engine engine) {
        this.engine = engine;
    }

    /** Streams one reply on the calling thread. */
    public Reply ask(String question, SamplingParams params) throws Exception {
        GenerateRequest request = GenerateRequest.ofChat(List.of(Map.of("role", "user", "content", question)), params)
                .withStream(true);
        RequestHandle handle = engine.submit(request);
        StringBuilder text = new StringBuilder();
        int pieces = 0;
        try (OutputIterator outputs = handle.iterator()) {
            while (outputs.hasNext()) {
                text.append(outputs.next().text());
                pieces++;
            }
        }
        return new Reply(question, text.toString(), pieces, handle.result().get());
    }

    /** Asks every question on its own thread at once. */
    public List<Reply> askAll(List<String> questions, SamplingParams params) throws Exception {
        ExecutorService threads = Executors.newFixedThreadPool(questions.size());
        try {
            List<Future<Reply>> replies = new ArrayList<>();
            for (String question : questions) {
                replies.add(threads.submit(() -> ask(question, params)));
            }
            List<Reply> out = new ArrayList<>();
            for (Future<Reply> reply : replies) {
                out.add(reply.get());
            }
            return out;
        } finally {
            threads.shutdown();
        }
    }

    public static void main(String[] args) throws Exception {
        if (args.length != 1) {
            System.err.println("usage: StreamingService <model directory>");
            System.exit(2);
        }
        EngineOptions options = EngineOptions.builder().device("auto").build();
        try (Engine engine = Engine.create(Path.of(args[0]), options)) {
            System.out.println("model " + engine.modelName() + " on " + engine.deviceDescription());
            SamplingParams params = SamplingParams.builder().temperature(0.7).topP(0.9).maxTokens(48).build();
            List<String> questions = List.of("What is a kiln?", "Name three colours.", "Count to five.",
                    "Say hello in French.");
            for (Reply reply : new StreamingService(engine).askAll(questions, params)) {
                System.out.printf("%s%n  -> %s%n  (%d tokens in %d pieces, %s)%n", reply.question(),
                        reply.streamedText().strip(), reply.result().numGeneratedTokens(), reply.pieces(),
                        reply.result().finishReason());
            }
        }
    }
}
