package ai.kiln.server;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import ai.kiln.api.TokenLogprobs;
import ai.kiln.tokenizer.Tokenizer;
import com.fasterxml.jackson.databind.JsonNode;
import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * Chat log-probabilities' {@code bytes} are the token's own bytes, as OpenAI gives them: a token
 * that is one byte of a character lists that byte (where its {@code token} text can only show
 * U+FFFD), so that the bytes of a choice's tokens joined are the bytes of its text.
 */
class LogprobsBytesTest {

    static int[] ints(JsonNode bytes) {
        int[] out = new int[bytes.size()];
        for (int i = 0; i < out.length; i++) {
            out[i] = bytes.get(i).asInt();
        }
        return out;
    }

    @Test
    void aTokenThatIsOneByteOfACharacterListsThatByte() throws Exception {
        Tokenizer tokenizer = Tokenizer.load(ServerHarness.FIXTURE.dir());
        // In the byte-level alphabet "ý" stands for the byte 0xFD; "Ġthe" for " the".
        int fd = tokenizer.tokenId("\u00fd").getAsInt();
        int the = tokenizer.tokenId("Ġthe").getAsInt();
        LogprobsJson json = new LogprobsJson(new TokenTexts(tokenizer));
        JsonNode content = json.chat(List.of(new TokenLogprobs(fd, -0.5f, 1,
                List.of(new TokenLogprobs.Candidate(fd, -0.5f), new TokenLogprobs.Candidate(the, -1.5f)))));
        JsonNode entry = content.get(0);
        assertEquals("\uFFFD", entry.get("token").asText());
        assertArrayEquals(new int[] {0xFD}, ints(entry.get("bytes")));
        assertArrayEquals(new int[] {0xFD}, ints(entry.at("/top_logprobs/0/bytes")));
        assertEquals(" the", entry.at("/top_logprobs/1/token").asText());
        assertArrayEquals(new int[] {' ', 't', 'h', 'e'}, ints(entry.at("/top_logprobs/1/bytes")));
    }

    @Test
    void withoutATokenizerTheBytesAreThoseOfTheTokensName() {
        JsonNode entry = new LogprobsJson(new TokenTexts(null)).chat(List.of(new TokenLogprobs(7, -0.1f, 1, List.of())))
                .get(0);
        assertEquals("token_id:7", entry.get("token").asText());
        assertArrayEquals("token_id:7".chars().toArray(), ints(entry.get("bytes")));
    }

    @Test
    void aChoicesTokenBytesJoinedAreItsText() throws Exception {
        try (ServerHarness harness = ServerHarness.start()) {
            boolean sawPartialCharacter = false;
            for (int seed = 0; seed < 8; seed++) {
                String body = "{\"model\": \"llama3-gqa\", \"messages\": [{\"role\": \"user\", \"content\": \"Hi\"}],"
                        + " \"max_tokens\": 32, \"temperature\": 1, \"seed\": " + seed + ", \"logprobs\": true,"
                        // Every token's text in the content: none ends it, none is skipped.
                        + " \"ignore_eos\": true, \"skip_special_tokens\": false}";
                var response = harness.post("/v1/chat/completions", body);
                assertEquals(200, response.statusCode(), response.body());
                JsonNode choice = ServerHarness.json(response.body()).at("/choices/0");
                ByteArrayOutputStream joined = new ByteArrayOutputStream();
                for (JsonNode token : choice.at("/logprobs/content")) {
                    for (int b : ints(token.get("bytes"))) {
                        joined.write(b);
                    }
                    sawPartialCharacter |= token.get("token").asText().equals("\uFFFD");
                }
                // The content shows a character cut short by the end of generation as U+FFFD, as
                // the joined bytes read as UTF-8 do.
                assertEquals(choice.at("/message/content").asText(),
                        new String(joined.toByteArray(), StandardCharsets.UTF_8), "seed " + seed);
            }
            assertEquals(true, sawPartialCharacter, "no generated token was part of a character");
        }
    }
}
