package ai.kiln.engine;

import java.util.List;
import java.util.Map;
import java.util.OptionalInt;

/** What the engine needs of a tokenizer: the seam between the engine and ai.kiln.tokenizer. */
interface TextCodec {

    int[] encode(String text, boolean addSpecialTokens);

    /** A decoder that turns a stream of ids into text, one stable piece at a time. */
    Decoder newDecoder(boolean skipSpecialTokens);

    OptionalInt eosTokenId();

    /** Ids [0, vocabSize) have tokens. */
    int vocabSize();

    /** The bytes a token stands for (a byte-level token's raw bytes); empty for none. */
    byte[] tokenBytes(int id);

    /** Whether an id is a special token (never part of structured output). */
    boolean isSpecialToken(int id);

    boolean hasChatTemplate();

    String applyChatTemplate(List<Map<String, Object>> messages, boolean addGenerationPrompt);

    /** As {@link #applyChatTemplate(List, boolean)}, with further template variables (e.g. {@code tools}). */
    String applyChatTemplate(List<Map<String, Object>> messages, boolean addGenerationPrompt,
            Map<String, Object> variables);

    /** Incremental detokenization of one completion. */
    interface Decoder {
        /** Text that became stable with this token (possibly empty). */
        String push(int id);

        /** Whatever is still pending, at the end of the completion. */
        String flush();
    }
}
