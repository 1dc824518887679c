package ai.kiln.tokenizer;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.BitSet;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.OptionalInt;

/**
 * A Hugging Face tokenizer (tokenizer.json, plus tokenizer_config.json for the special tokens and
 * the chat template) reimplemented in Java to produce exactly the ids and text of the reference
 * {@code tokenizers} library. Supports byte-level BPE (GPT-2, Llama 3, Qwen 2/3) and
 * SentencePiece-style BPE with byte fallback (Llama 2, Mistral, TinyLlama). Immutable and safe to
 * share between threads.
 */
public final class Tokenizer {
    private final Path tokenizerFile;
    private final TokenizerJsonReader.Pipeline pipeline;
    private final TokenizerConfig config;
    private final int vocabSize;
    private final OptionalInt bosTokenId;
    private final OptionalInt eosTokenId;
    /** For a byte-level decoder, each id's bytes, so that decoding (one-shot or streamed) is a copy and a UTF-8 pass. */
    private final byte[][] byteLevelTokenBytes;
    /** For a byte-level decoder, the ids that skipping special tokens drops (a lookup, not two map searches a token). */
    private final BitSet byteLevelSpecialIds;
    private volatile ChatTemplate chatTemplate;

    private Tokenizer(Path tokenizerFile, TokenizerJsonReader.Pipeline pipeline, TokenizerConfig config)
            throws TokenizerLoadException {
        this.tokenizerFile = tokenizerFile;
        this.pipeline = pipeline;
        this.config = config;
        java.util.Set<String> contents = new java.util.HashSet<>();
        for (AddedToken token : pipeline.addedTokens()) {
            if (pipeline.model().tokenToId(token.content()) == null) {
                contents.add(token.content());
            }
        }
        this.vocabSize = pipeline.model().vocabSize() + contents.size();
        this.bosTokenId = specialTokenId(config.bosToken(), "bos_token");
        this.eosTokenId = specialTokenId(config.eosToken(), "eos_token");
        if (pipeline.decoder() instanceof TokenDecoder.ByteLevel) {
            int maxId = pipeline.model().idLimit() - 1;
            for (AddedToken token : pipeline.addedTokens()) {
                maxId = Math.max(maxId, token.id());
            }
            byteLevelTokenBytes = new byte[maxId + 1][];
            byteLevelSpecialIds = new BitSet(maxId + 1);
            for (int id = 0; id <= maxId; id++) {
                String token = tokenString(id);
                byteLevelTokenBytes[id] = token == null ? null : ByteLevelAlphabet.tokenBytes(token);
                byteLevelSpecialIds.set(id, isSpecial(id));
            }
        } else {
            byteLevelTokenBytes = null;
            byteLevelSpecialIds = null;
        }
    }

    private OptionalInt specialTokenId(String token, String field) throws TokenizerLoadException {
        if (token == null) {
            return OptionalInt.empty();
        }
        OptionalInt id = tokenId(token);
        if (id.isEmpty()) {
            throw new TokenizerLoadException(tokenizerFile.resolveSibling("tokenizer_config.json"),
                    field + " '" + token + "' is not in the vocabulary of " + tokenizerFile.getFileName());
        }
        return id;
    }

    /**
     * Loads {@code modelDir/tokenizer.json}, and {@code tokenizer_config.json} and
     * {@code chat_template.jinja} when present.
     *
     * @throws TokenizerLoadException         malformed JSON or a missing or invalid field (names the file)
     * @throws UnsupportedComponentException  a component or option Kiln does not implement
     */
    public static Tokenizer load(Path modelDir) throws IOException {
        Objects.requireNonNull(modelDir, "modelDir");
        Path tokenizerFile = modelDir.resolve("tokenizer.json");
        if (!Files.isRegularFile(tokenizerFile)) {
            throw new TokenizerLoadException(tokenizerFile, "file not found (a Hugging Face tokenizer.json is required)");
        }
        return new Tokenizer(tokenizerFile, TokenizerJsonReader.read(tokenizerFile), TokenizerConfig.load(modelDir));
    }

    TokenDecoder decoder() {
        return pipeline.decoder();
    }

    /**
     * Encodes text to ids, as Hugging Face's {@code Tokenizer.encode(text, add_special_tokens)}:
     * added tokens are matched first, then normalization, pre-tokenization and the model run on
     * the text between them, and with {@code addSpecialTokens} the post-processor adds its tokens
     * (for example BOS).
     *
     * @throws IllegalArgumentException if the text holds a lone surrogate (the reference refuses
     *                                  such text too: it cannot be UTF-8)
     */
    public int[] encode(String text, boolean addSpecialTokens) {
        Objects.requireNonNull(text, "text");
        int surrogate = Utf8.indexOfLoneSurrogate(text);
        if (surrogate >= 0) {
            throw new IllegalArgumentException(String.format(
                    "text has a lone surrogate U+%04X at index %d; it is not valid Unicode and cannot be tokenized",
                    (int) text.charAt(surrogate), surrogate));
        }
        IntList ids = new IntList(text.length() / 3 + 8);
        BpeModel.Scratch scratch = new BpeModel.Scratch();
        PreTokenizer.WordSink modelSink = (t, start, end, atInputStart) ->
                pipeline.model().tokenize(t, start, end, pipeline.byteLevelWords(), ids, scratch);
        List<AddedVocabulary.Segment> raw = new ArrayList<>();
        pipeline.addedVocabulary().splitRaw(text, raw);
        List<AddedVocabulary.Segment> pieces = new ArrayList<>();
        for (AddedVocabulary.Segment segment : raw) {
            if (segment.tokenId() >= 0) {
                ids.add(segment.tokenId());
                continue;
            }
            String normalized = pipeline.normalizer() == null ? segment.text() : pipeline.normalizer().normalize(segment.text());
            pieces.clear();
            pipeline.addedVocabulary().splitNormalized(normalized, segment.atInputStart(), pieces);
            for (AddedVocabulary.Segment piece : pieces) {
                if (piece.tokenId() >= 0) {
                    ids.add(piece.tokenId());
                } else if (pipeline.preTokenizer() == null) {
                    modelSink.accept(piece.text(), 0, piece.text().length(), piece.atInputStart());
                } else {
                    pipeline.preTokenizer().split(piece.text(), piece.atInputStart(), modelSink);
                }
            }
        }
        int[] result = ids.toArray();
        if (addSpecialTokens && pipeline.postProcessor() != null) {
            result = pipeline.postProcessor().addSpecialTokens(result);
        }
        return result;
    }

    /**
     * Decodes ids to text, as Hugging Face's {@code Tokenizer.decode(ids, skip_special_tokens)}:
     * ids outside the vocabulary are ignored, special added tokens are dropped when asked, and
     * the decoder joins the rest (invalid UTF-8 becomes U+FFFD).
     */
    public String decode(int[] ids, boolean skipSpecialTokens) {
        Objects.requireNonNull(ids, "ids");
        if (byteLevelTokenBytes != null) {
            int length = 0;
            for (int id : ids) {
                byte[] bytes = decodableBytes(id, skipSpecialTokens);
                length += bytes == null ? 0 : bytes.length;
            }
            byte[] all = new byte[length];
            int at = 0;
            for (int id : ids) {
                byte[] bytes = decodableBytes(id, skipSpecialTokens);
                if (bytes != null) {
                    System.arraycopy(bytes, 0, all, at, bytes.length);
                    at += bytes.length;
                }
            }
            return Utf8.decodeLossy(all, length);
        }
        List<String> tokens = new ArrayList<>(ids.length);
        for (int id : ids) {
            String token = decodableToken(id, skipSpecialTokens);
            if (token != null) {
                tokens.add(token);
            }
        }
        return String.join("", pipeline.decoder().decodeChain(tokens));
    }

    /** True when the decoder is byte-level alone: each id then decodes through {@link #decodableBytes}. */
    boolean decodesByteLevel() {
        return byteLevelTokenBytes != null;
    }

    /**
     * A byte-level decoder's bytes for an id: null when unknown, or special and skipped. The
     * tokenizer's own array: not to be changed.
     */
    byte[] decodableBytes(int id, boolean skipSpecialTokens) {
        if (id < 0 || id >= byteLevelTokenBytes.length) {
            return null;
        }
        if (skipSpecialTokens && byteLevelSpecialIds.get(id)) {
            return null;
        }
        return byteLevelTokenBytes[id];
    }

    /** The token decoding sees for an id: null when unknown, or special and skipped. */
    String decodableToken(int id, boolean skipSpecialTokens) {
        String token = tokenString(id);
        if (token == null || (skipSpecialTokens && isSpecial(id))) {
            return null;
        }
        return token;
    }

    /** Whether an id is a special added token (what {@code skip_special_tokens} leaves out of the text). */
    public boolean isSpecialToken(int id) {
        return isSpecial(id);
    }

    private boolean isSpecial(int id) {
        AddedToken added = pipeline.addedVocabulary().byId(id);
        if (added == null) {
            // Hugging Face compares token text, so a model token spelled like a special one counts too.
            String modelToken = pipeline.model().idToToken(id);
            added = modelToken == null ? null : pipeline.addedVocabulary().byContent(modelToken);
        }
        return added != null && added.special();
    }

    /** The token string of an id as decoding sees it (added tokens first, as Hugging Face's id_to_token). */
    private String tokenString(int id) {
        String added = pipeline.addedVocabulary().decodedForm(id);
        return added != null ? added : pipeline.model().idToToken(id);
    }

    /**
     * The bytes one token stands for: what {@link #decode} of this id alone gives, before bytes
     * that are not well-formed UTF-8 are shown as U+FFFD. A byte-level token maps back through
     * the ByteLevel alphabet ("ý" is the byte 0xFD, "Ġthe" the bytes of " the"), a byte-fallback
     * token {@code <0xFD>} is its byte, and any other token is the UTF-8 of its decoded text.
     * Tokens that are only part of a character so keep their bytes, and the bytes of a sequence
     * of byte-level tokens joined are the bytes of its text. Special tokens are not skipped; an
     * id outside the vocabulary has no bytes, as {@link #decode} ignores it.
     *
     * @return a new array, the caller's own
     */
    public byte[] tokenBytes(int id) {
        if (byteLevelTokenBytes != null) {
            byte[] bytes = id >= 0 && id < byteLevelTokenBytes.length ? byteLevelTokenBytes[id] : null;
            return bytes == null ? new byte[0] : bytes.clone();
        }
        String token = tokenString(id);
        if (token == null) {
            return new byte[0];
        }
        String decoded = decode(new int[] {id}, false);
        byte[] raw = rawBytes(token);
        // NOTE: the raw bytes stand for the token only where the decoder's other stages leave them
        // alone (a Strip after ByteFallback empties "<0x20>", for one); else the decoded text is the truth.
        if (raw != null && Utf8.decodeLossy(raw, raw.length).equals(decoded)) {
            return raw;
        }
        return Utf8.encode(decoded);
    }

    /** The bytes a token maps to in a ByteFallback or ByteLevel stage of the decoder, or null where none applies. */
    private byte[] rawBytes(String token) {
        if (decoderHas(pipeline.decoder(), TokenDecoder.ByteFallback.class)) {
            int b = TokenDecoder.ByteFallback.byteOfToken(token);
            if (b >= 0) {
                return new byte[] {(byte) b};
            }
        }
        if (decoderHas(pipeline.decoder(), TokenDecoder.ByteLevel.class)) {
            return ByteLevelAlphabet.tokenBytes(token);
        }
        return null;
    }

    private static boolean decoderHas(TokenDecoder decoder, Class<? extends TokenDecoder> kind) {
        if (kind.isInstance(decoder)) {
            return true;
        }
        if (decoder instanceof TokenDecoder.Sequence sequence) {
            for (TokenDecoder member : sequence.decoders()) {
                if (decoderHas(member, kind)) {
                    return true;
                }
            }
        }
        return false;
    }

    /** A decoder for streaming generated ids; see {@link IncrementalDecoder}. */
    public IncrementalDecoder newIncrementalDecoder(boolean skipSpecialTokens) {
        return new IncrementalDecoder(this, skipSpecialTokens);
    }

    /** Number of distinct tokens: the model's vocabulary plus added tokens not in it (Hugging Face's get_vocab_size(True)). */
    public int vocabSize() {
        return vocabSize;
    }

    /** The id of tokenizer_config.json's bos_token, if it names one. */
    public OptionalInt bosTokenId() {
        return bosTokenId;
    }

    /** The id of tokenizer_config.json's eos_token, if it names one. */
    public OptionalInt eosTokenId() {
        return eosTokenId;
    }

    /** The id of a token given in its vocabulary form (e.g. {@code "Ġthe"}, {@code "▁the"}, {@code "<|eot_id|>"}). */
    public OptionalInt tokenId(String token) {
        Objects.requireNonNull(token, "token");
        AddedToken added = pipeline.addedVocabulary().byContent(token);
        if (added != null) {
            return OptionalInt.of(added.id());
        }
        Integer id = pipeline.model().tokenToId(token);
        return id == null ? OptionalInt.empty() : OptionalInt.of(id);
    }

    /**
     * The vocabulary form of a token (e.g. "Ġthe"), not its decoded text.
     *
     * @throws IllegalArgumentException if no token has this id
     */
    public String tokenText(int id) {
        String token = tokenString(id);
        if (token == null) {
            throw new IllegalArgumentException("no token has id " + id + " in " + tokenizerFile);
        }
        return token;
    }

    /** Whether tokenizer_config.json or chat_template.jinja provides a chat template. */
    public boolean hasChatTemplate() {
        return config.chatTemplate() != null;
    }

    /** The chat template's Jinja source as the model gives it, or null when it has none. */
    public String chatTemplateText() {
        return config.chatTemplate();
    }

    /**
     * Renders the chat template as transformers' {@code apply_chat_template(messages,
     * tokenize=False, add_generation_prompt=...)} does.
     *
     * @param messages OpenAI-style messages: maps with "role", "content" and optionally more
     *                 (values: strings, numbers, booleans, lists and maps)
     * @throws IllegalStateException    if the model has no chat template
     * @throws IllegalArgumentException if the template fails or calls raise_exception
     */
    public String applyChatTemplate(List<Map<String, Object>> messages, boolean addGenerationPrompt) {
        return applyChatTemplate(messages, addGenerationPrompt, Map.of());
    }

    /**
     * As {@link #applyChatTemplate(List, boolean)}, with extra template variables such as
     * {@code tools} (a list of JSON-schema function descriptions) or {@code enable_thinking}.
     */
    public String applyChatTemplate(List<Map<String, Object>> messages, boolean addGenerationPrompt,
                                    Map<String, Object> extraVariables) {
        Objects.requireNonNull(messages, "messages");
        Objects.requireNonNull(extraVariables, "extraVariables");
        return chatTemplate().render(messages, addGenerationPrompt, extraVariables);
    }

    private ChatTemplate chatTemplate() {
        ChatTemplate template = chatTemplate;
        if (template == null) {
            if (config.chatTemplate() == null) {
                throw new IllegalStateException("the model at " + tokenizerFile.getParent()
                        + " has no chat template (neither tokenizer_config.json's chat_template nor chat_template.jinja);"
                        + " chat prompts cannot be built for it");
            }
            synchronized (this) {
                if (chatTemplate == null) {
                    chatTemplate = new ChatTemplate(config.chatTemplate(), config.chatTemplateSource(), config);
                }
                template = chatTemplate;
            }
        }
        return template;
    }
}
