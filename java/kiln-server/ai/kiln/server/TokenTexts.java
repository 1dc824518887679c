package ai.kiln.server;

import ai.kiln.tokenizer.Tokenizer;
import java.nio.charset.StandardCharsets;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * The text of the served model's tokens, special tokens included: log-probability listings name
 * each token (and give its bytes), and an echoed prompt given as token ids is shown as text. A
 * model without a tokenizer has no texts, so tokens are named by id and echoed prompts are empty.
 */
final class TokenTexts {

    private final Tokenizer tokenizer;          // null: the model has no tokenizer.json
    /** NOTE: the same few thousand tokens come up in every listing; decoding each once is enough. */
    private final Map<Integer, String> byId = new ConcurrentHashMap<>();
    private final Map<Integer, byte[]> bytesById = new ConcurrentHashMap<>();

    TokenTexts(Tokenizer tokenizer) {
        this.tokenizer = tokenizer;
    }

    /** The text of one token. */
    String token(int id) {
        if (tokenizer == null) {
            return "token_id:" + id;
        }
        return byId.computeIfAbsent(id, i -> tokenizer.decode(new int[] {i}, false));
    }

    /**
     * The bytes of one token ({@link Tokenizer#tokenBytes}): raw, so a token that is one byte of
     * a character is that byte where its {@link #token text} shows U+FFFD. Shared: not to be changed.
     */
    byte[] bytes(int id) {
        if (tokenizer == null) {
            return token(id).getBytes(StandardCharsets.UTF_8);
        }
        return bytesById.computeIfAbsent(id, tokenizer::tokenBytes);
    }

    /** The text of a sequence of tokens. */
    String decode(int[] ids) {
        return tokenizer == null ? "" : tokenizer.decode(ids, false);
    }
}
