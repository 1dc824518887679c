package ai.kiln.server;

import ai.kiln.api.TokenLogprobs;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.util.List;

/** The engine's log-probabilities in the two shapes of OpenAI's API: the legacy completions one and the chat one. */
final class LogprobsJson {

    private final TokenTexts texts;

    LogprobsJson(TokenTexts texts) {
        this.texts = texts;
    }

    /**
     * The completions shape: tokens, token_logprobs, top_logprobs and text_offset. {@code offset[0]}
     * is where the first token's text starts in the choice's text, and is moved past the last
     * token's, so that a stream's chunks carry on where the one before ended.
     */
    ObjectNode completions(List<TokenLogprobs> logprobs, int[] offset) {
        ObjectNode node = Exchange.JSON.createObjectNode();
        ArrayNode tokens = node.putArray("tokens");
        ArrayNode tokenLogprobs = node.putArray("token_logprobs");
        ArrayNode top = node.putArray("top_logprobs");
        ArrayNode textOffset = node.putArray("text_offset");
        if (logprobs != null) {
            for (TokenLogprobs lp : logprobs) {
                String token = texts.token(lp.tokenId());
                tokens.add(token);
                tokenLogprobs.add(lp.logprob());
                // NOTE: keyed by text, as OpenAI's shape is; of tokens with the same text the chosen
                // one, then the most likely, keeps the key.
                ObjectNode alternatives = top.addObject();
                alternatives.put(token, lp.logprob());
                for (TokenLogprobs.Candidate c : lp.top()) {
                    String text = texts.token(c.tokenId());
                    if (!alternatives.has(text)) {
                        alternatives.put(text, c.logprob());
                    }
                }
                textOffset.add(offset[0]);
                offset[0] += token.length();
            }
        }
        return node;
    }

    /**
     * The chat shape: one entry per token with token, logprob, bytes and top_logprobs. As
     * OpenAI's, {@code bytes} are the token's own bytes, raw, while {@code token} is its text
     * decoded alone (U+FFFD for a token that is only part of a character), so that a client joins
     * the bytes of consecutive tokens to read characters split between them.
     */
    ArrayNode chat(List<TokenLogprobs> logprobs) {
        ArrayNode content = Exchange.JSON.createArrayNode();
        if (logprobs == null) {
            return content;
        }
        for (TokenLogprobs lp : logprobs) {
            ObjectNode entry = content.addObject();
            tokenEntry(entry, lp.tokenId(), lp.logprob());
            ArrayNode top = entry.putArray("top_logprobs");
            for (TokenLogprobs.Candidate c : lp.top()) {
                tokenEntry(top.addObject(), c.tokenId(), c.logprob());
            }
        }
        return content;
    }

    /** The chat shape's {@code logprobs} object of a choice: its content entries, and no refusal. */
    ObjectNode chatChoice(List<TokenLogprobs> logprobs) {
        ObjectNode node = Exchange.JSON.createObjectNode();
        node.set("content", chat(logprobs));
        node.putNull("refusal");
        return node;
    }

    private void tokenEntry(ObjectNode entry, int tokenId, float logprob) {
        String token = texts.token(tokenId);
        entry.put("token", token);
        entry.put("logprob", logprob);
        ArrayNode bytes = entry.putArray("bytes");
        for (byte b : texts.bytes(tokenId)) {
            bytes.add(b & 0xff);
        }
    }
}
