package ai.kiln.engine;

import ai.kiln.api.EngineException;
import ai.kiln.tokenizer.IncrementalDecoder;
import ai.kiln.tokenizer.Tokenizer;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.OptionalInt;

/** The model directory's {@link Tokenizer} as a {@link TextCodec}. */
final class TokenizerCodec implements TextCodec {

    private final Tokenizer tokenizer;

    TokenizerCodec(Tokenizer tokenizer) {
        this.tokenizer = tokenizer;
    }

    Tokenizer tokenizer() {
        return tokenizer;
    }

    /** The tokenizer of the model directory, or null when it has no tokenizer.json. */
    static TokenizerCodec loadIfPresent(Path modelDir) {
        if (!Files.isRegularFile(modelDir.resolve("tokenizer.json"))) {
            return null;
        }
        try {
            return new TokenizerCodec(Tokenizer.load(modelDir));
        } catch (IOException e) {
            throw new EngineException("cannot load the tokenizer of " + modelDir + ": " + e.getMessage(), e);
        }
    }

    @Override
    public int[] encode(String text, boolean addSpecialTokens) {
        return tokenizer.encode(text, addSpecialTokens);
    }

    @Override
    public Decoder newDecoder(boolean skipSpecialTokens) {
        IncrementalDecoder decoder = tokenizer.newIncrementalDecoder(skipSpecialTokens);
        return new Decoder() {
            @Override
            public String push(int id) {
                return decoder.push(id);
            }

            @Override
            public String flush() {
                return decoder.flush();
            }
        };
    }

    @Override
    public OptionalInt eosTokenId() {
        return tokenizer.eosTokenId();
    }

    @Override
    public int vocabSize() {
        return tokenizer.vocabSize();
    }

    @Override
    public byte[] tokenBytes(int id) {
        return tokenizer.tokenBytes(id);
    }

    @Override
    public boolean isSpecialToken(int id) {
        return tokenizer.isSpecialToken(id);
    }

    @Override
    public boolean hasChatTemplate() {
        return tokenizer.hasChatTemplate();
    }

    @Override
    public String applyChatTemplate(List<Map<String, Object>> messages, boolean addGenerationPrompt) {
        return tokenizer.applyChatTemplate(messages, addGenerationPrompt);
    }

    @Override
    public String applyChatTemplate(List<Map<String, Object>> messages, boolean addGenerationPrompt,
            Map<String, Object> variables) {
        return tokenizer.applyChatTemplate(messages, addGenerationPrompt, variables);
    }
}
