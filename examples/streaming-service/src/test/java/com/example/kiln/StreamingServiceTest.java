package com.example.kiln;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.kiln.api.Engine;
import ai.kiln.api.EngineOptions;
import ai.kiln.api.GenerateRequest;
import ai.kiln.api.SamplingParams;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** The service against Kiln's tiny test model (random weights: the text is noise, but it repeats). */
class StreamingServiceTest {

    static final Path MODEL = Path.of("../../test/resources/fixtures/llama3-gqa");

    @Test
    void fourThreadsStreamTheirRepliesAtOnce() throws Exception {
        assertTrue(Files.isDirectory(MODEL), "the test model at " + MODEL.toAbsolutePath());
        EngineOptions options = EngineOptions.builder().device("cpu").threads(2).kvCacheBytes(16L << 20).build();
        try (Engine engine = Engine.create(MODEL, options)) {
            SamplingParams greedy = SamplingParams.builder().temperature(0).maxTokens(12).ignoreEos(true).build();
            List<String> questions = List.of("one", "two", "three", "four");
            List<StreamingService.Reply> replies = new StreamingService(engine).askAll(questions, greedy);
            assertEquals(4, replies.size());
            for (StreamingService.Reply reply : replies) {
                // What streamed is the result, token for token; and it is what one request alone gets.
                assertEquals(reply.result().text(), reply.streamedText());
                assertEquals(12, reply.result().numGeneratedTokens());
                assertTrue(reply.pieces() >= 2, "streamed in pieces, not at the end: " + reply.pieces());
                String alone = engine.generate(GenerateRequest.ofChat(
                        List.of(Map.of("role", "user", "content", reply.question())), greedy)).text();
                assertEquals(alone, reply.streamedText(), reply.question());
            }
        }
    }
}
