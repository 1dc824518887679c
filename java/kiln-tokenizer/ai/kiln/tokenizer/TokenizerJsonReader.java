package ai.kiln.tokenizer;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Reads a Hugging Face tokenizer.json into Kiln's pipeline components. Every component type and
 * option that would change the output is either implemented or rejected with an
 * {@link UnsupportedComponentException}; options that only affect offsets, padding or truncation
 * (which Kiln does not report or apply) are ignored.
 */
final class TokenizerJsonReader {
    /** Everything tokenizer.json defines. */
    record Pipeline(Normalizer normalizer, PreTokenizer preTokenizer, boolean byteLevelWords, BpeModel model,
                    AddedVocabulary addedVocabulary, List<AddedToken> addedTokens, PostProcessor postProcessor,
                    TokenDecoder decoder) {
    }

    private final JsonFields fields;
    /**
     * One past the largest token id accepted. Hugging Face allows gaps between ids, but the id
     * tables are arrays indexed by id, so an id far past any real vocabulary (the largest have
     * about 2^18 tokens) is refused instead of sizing them by it.
     */
    static final int ID_LIMIT = 1 << 24;

    private TokenizerJsonReader(Path file) {
        this.fields = new JsonFields(file);
    }

    static JsonNode readJson(Path file) throws IOException {
        try (java.io.InputStream in = Files.newInputStream(file)) {
            return new ObjectMapper().readTree(in);
        } catch (NoSuchFileException e) {
            throw new TokenizerLoadException(file, "file not found", e);
        } catch (JsonProcessingException e) {
            throw new TokenizerLoadException(file, "malformed JSON: " + e.getOriginalMessage()
                    + (e.getLocation() == null ? "" : " at line " + e.getLocation().getLineNr()
                    + ", column " + e.getLocation().getColumnNr()), e);
        }
    }

    static Pipeline read(Path file) throws IOException {
        JsonNode root = readJson(file);
        if (root == null || !root.isObject()) {
            throw new TokenizerLoadException(file, "expected a JSON object at the top level");
        }
        return new TokenizerJsonReader(file).pipeline(root);
    }

    private Pipeline pipeline(JsonNode root) throws IOException {
        JsonNode normalizerNode = JsonFields.optional(root, "normalizer");
        Normalizer normalizer = normalizerNode == null ? null : normalizer(normalizerNode, "normalizer");

        JsonNode preTokenizerNode = JsonFields.optional(root, "pre_tokenizer");
        PreTokenizer preTokenizer = null;
        boolean byteLevelWords = false;
        if (preTokenizerNode != null) {
            List<JsonNode> flattened = new ArrayList<>();
            flattenPreTokenizers(preTokenizerNode, flattened);
            List<PreTokenizer> stages = new ArrayList<>();
            for (int i = 0; i < flattened.size(); i++) {
                boolean last = i == flattened.size() - 1;
                PreTokenizer stage = preTokenizer(flattened.get(i), "pre_tokenizer", !last);
                if (last && stage instanceof PreTokenizer.ByteLevel byteLevel) {
                    // The last ByteLevel's byte mapping happens in the model, after cache lookup.
                    byteLevelWords = true;
                    if (!byteLevel.addPrefixSpace() && !byteLevel.useRegex()) {
                        continue; // nothing left for it to do here
                    }
                }
                stages.add(stage);
            }
            if (!stages.isEmpty()) {
                preTokenizer = stages.size() == 1 ? stages.get(0) : new PreTokenizer.Sequence(stages);
            }
        }

        BpeModel model = model(fields.requireObject(root, "model", "model"));
        List<AddedToken> addedTokens = addedTokens(root, model);
        AddedVocabulary addedVocabulary = new AddedVocabulary(addedTokens, normalizer);

        JsonNode postProcessorNode = JsonFields.optional(root, "post_processor");
        PostProcessor postProcessor = postProcessorNode == null ? null
                : postProcessor(postProcessorNode, "post_processor", model, addedVocabulary);
        JsonNode decoderNode = JsonFields.optional(root, "decoder");
        TokenDecoder decoder = decoderNode == null ? new TokenDecoder.JoinWithSpaces() : decoder(decoderNode, "decoder");
        return new Pipeline(normalizer, preTokenizer, byteLevelWords, model, addedVocabulary, addedTokens,
                postProcessor, decoder);
    }

    private String typeOf(JsonNode node, String path) throws TokenizerLoadException {
        if (!node.isObject()) {
            throw fields.problem(path, "must be an object");
        }
        return fields.requireText(node, "type", path + ".type");
    }

    private UnsupportedComponentException unsupported(String component, String detail) {
        return new UnsupportedComponentException(fields.file(), component, detail);
    }

    // ---- normalizers ----

    private Normalizer normalizer(JsonNode node, String path) throws TokenizerLoadException {
        String type = typeOf(node, path);
        switch (type) {
            case "NFC":
                return new Normalizer.Unicode(java.text.Normalizer.Form.NFC);
            case "NFD":
                return new Normalizer.Unicode(java.text.Normalizer.Form.NFD);
            case "NFKC":
                return new Normalizer.Unicode(java.text.Normalizer.Form.NFKC);
            case "NFKD":
                return new Normalizer.Unicode(java.text.Normalizer.Form.NFKD);
            case "Lowercase":
                return new Normalizer.Lowercase();
            case "StripAccents":
                return new Normalizer.StripAccents();
            case "Strip":
                return new Normalizer.Strip(fields.optionalBoolean(node, "strip_left", path + ".strip_left", true),
                        fields.optionalBoolean(node, "strip_right", path + ".strip_right", true));
            case "Replace":
                return new Normalizer.Replace(pattern(node, path),
                        fields.requireText(node, "content", path + ".content"));
            case "Prepend":
                return new Normalizer.Prepend(fields.requireText(node, "prepend", path + ".prepend"));
            case "Sequence": {
                JsonNode list = fields.requireArray(node, "normalizers", path + ".normalizers");
                List<Normalizer> normalizers = new ArrayList<>();
                for (int i = 0; i < list.size(); i++) {
                    normalizers.add(normalizer(list.get(i), path + ".normalizers[" + i + "]"));
                }
                return new Normalizer.Sequence(normalizers);
            }
            default:
                throw unsupported("normalizer", "type '" + type + "' at " + path
                        + " (supported: NFC, NFD, NFKC, NFKD, Lowercase, Strip, StripAccents, Replace, Prepend, Sequence)");
        }
    }

    private TextPattern pattern(JsonNode node, String path) throws TokenizerLoadException {
        JsonNode patternNode = fields.requireObject(node, "pattern", path + ".pattern");
        String literal = fields.optionalText(patternNode, "String", path + ".pattern.String");
        if (literal != null) {
            if (literal.isEmpty()) {
                throw fields.problem(path + ".pattern.String", "must not be empty");
            }
            return new TextPattern.Literal(literal);
        }
        String regex = fields.optionalText(patternNode, "Regex", path + ".pattern.Regex");
        if (regex == null) {
            throw fields.problem(path + ".pattern", "must hold \"String\" or \"Regex\"");
        }
        try {
            return TextPattern.Regex.of(regex);
        } catch (IllegalArgumentException e) {
            throw unsupported("regex", e.getMessage() + " (at " + path + ")");
        }
    }

    // ---- pre-tokenizers ----

    private void flattenPreTokenizers(JsonNode node, List<JsonNode> out) throws TokenizerLoadException {
        if ("Sequence".equals(typeOf(node, "pre_tokenizer"))) {
            for (JsonNode child : fields.requireArray(node, "pretokenizers", "pre_tokenizer.pretokenizers")) {
                flattenPreTokenizers(child, out);
            }
        } else {
            out.add(node);
        }
    }

    private PreTokenizer preTokenizer(JsonNode node, String path, boolean mapBytes) throws TokenizerLoadException {
        String type = typeOf(node, path);
        switch (type) {
            case "Split": {
                String behaviorName = fields.requireText(node, "behavior", path + ".behavior");
                SplitBehavior behavior = SplitBehavior.fromJsonName(behaviorName);
                if (behavior == null) {
                    throw fields.problem(path + ".behavior", "has unknown value '" + behaviorName + "'");
                }
                return new PreTokenizer.Split(pattern(node, path), behavior,
                        fields.optionalBoolean(node, "invert", path + ".invert", false));
            }
            case "ByteLevel":
                return new PreTokenizer.ByteLevel(
                        fields.optionalBoolean(node, "add_prefix_space", path + ".add_prefix_space", true),
                        fields.optionalBoolean(node, "use_regex", path + ".use_regex", true), mapBytes);
            case "Metaspace":
                return metaspacePreTokenizer(node, path);
            case "Digits":
                return PreTokenizer.CharacterSplit.digits(
                        fields.optionalBoolean(node, "individual_digits", path + ".individual_digits", false));
            case "WhitespaceSplit":
                return PreTokenizer.CharacterSplit.whitespaceSplit();
            case "Whitespace":
                return new PreTokenizer.Whitespace();
            case "Punctuation": {
                String behaviorName = fields.optionalText(node, "behavior", path + ".behavior");
                SplitBehavior behavior = behaviorName == null ? SplitBehavior.ISOLATED : SplitBehavior.fromJsonName(behaviorName);
                if (behavior == null) {
                    throw fields.problem(path + ".behavior", "has unknown value '" + behaviorName + "'");
                }
                return PreTokenizer.CharacterSplit.punctuation(behavior);
            }
            default:
                throw unsupported("pre-tokenizer", "type '" + type + "' at " + path
                        + " (supported: Split, ByteLevel, Metaspace, Digits, Whitespace, WhitespaceSplit, Punctuation, Sequence)");
        }
    }

    private PreTokenizer.Metaspace.PrependScheme prependScheme(JsonNode node, String path) throws TokenizerLoadException {
        String scheme = fields.optionalText(node, "prepend_scheme", path + ".prepend_scheme");
        if (scheme == null) {
            // Files written before prepend_scheme existed say add_prefix_space instead.
            return fields.optionalBoolean(node, "add_prefix_space", path + ".add_prefix_space", true)
                    ? PreTokenizer.Metaspace.PrependScheme.ALWAYS : PreTokenizer.Metaspace.PrependScheme.NEVER;
        }
        switch (scheme) {
            case "always":
                return PreTokenizer.Metaspace.PrependScheme.ALWAYS;
            case "first":
                return PreTokenizer.Metaspace.PrependScheme.FIRST;
            case "never":
                return PreTokenizer.Metaspace.PrependScheme.NEVER;
            default:
                throw fields.problem(path + ".prepend_scheme", "has unknown value '" + scheme + "'");
        }
    }

    private PreTokenizer metaspacePreTokenizer(JsonNode node, String path) throws TokenizerLoadException {
        return new PreTokenizer.Metaspace(fields.requireCharacter(node, "replacement", path + ".replacement"),
                prependScheme(node, path), fields.optionalBoolean(node, "split", path + ".split", true));
    }

    // ---- model ----

    /** A token id in [0, {@link #ID_LIMIT}). */
    private int tokenId(JsonNode node, String path) throws TokenizerLoadException {
        int id = fields.asInt(node, path);
        if (id < 0 || id >= ID_LIMIT) {
            throw fields.problem(path, "is " + id + ", outside the supported token ids [0, " + ID_LIMIT + ")");
        }
        return id;
    }

    private BpeModel model(JsonNode node) throws TokenizerLoadException {
        String type = fields.optionalText(node, "type", "model.type");
        if (type == null && node.has("merges")) {
            type = "BPE"; // files from before the "type" field was written
        }
        if (!"BPE".equals(type)) {
            throw unsupported("model", "type '" + type + "' (only BPE is supported)");
        }
        JsonNode dropout = JsonFields.optional(node, "dropout");
        if (dropout != null && dropout.asDouble() != 0.0) {
            throw unsupported("model", "BPE dropout " + dropout.asText() + " (random, so no reference output to match)");
        }
        JsonNode vocabNode = fields.requireObject(node, "vocab", "model.vocab");
        Map<String, Integer> vocab = new HashMap<>(vocabNode.size() * 2);
        Map<Integer, String> tokenOfId = new HashMap<>(vocabNode.size() * 2);
        Iterator<Map.Entry<String, JsonNode>> entries = vocabNode.fields();
        while (entries.hasNext()) {
            Map.Entry<String, JsonNode> entry = entries.next();
            String path = "model.vocab[\"" + entry.getKey() + "\"]";
            int id = tokenId(entry.getValue(), path);
            String sameId = tokenOfId.putIfAbsent(id, entry.getKey());
            if (sameId != null) {
                throw fields.problem(path, "is " + id + ", the id of model.vocab[\"" + sameId + "\"] too (ids must be unique)");
            }
            vocab.put(entry.getKey(), id);
        }
        String prefix = fields.optionalText(node, "continuing_subword_prefix", "model.continuing_subword_prefix");
        String suffix = fields.optionalText(node, "end_of_word_suffix", "model.end_of_word_suffix");
        JsonNode mergesNode = fields.requireArray(node, "merges", "model.merges");
        MergeTable merges = new MergeTable(mergesNode.size());
        int prefixLength = prefix == null ? 0 : prefix.length();
        for (int rank = 0; rank < mergesNode.size(); rank++) {
            JsonNode merge = mergesNode.get(rank);
            String path = "model.merges[" + rank + "]";
            String left;
            String right;
            if (merge.isTextual()) {
                String[] parts = merge.textValue().split(" ", -1);
                if (parts.length != 2) {
                    throw fields.problem(path, "must be two tokens separated by one space, not '" + merge.textValue() + "'");
                }
                left = parts[0];
                right = parts[1];
            } else if (merge.isArray() && merge.size() == 2 && merge.get(0).isTextual() && merge.get(1).isTextual()) {
                left = merge.get(0).textValue();
                right = merge.get(1).textValue();
            } else {
                throw fields.problem(path, "must be a string \"a b\" or an array [\"a\", \"b\"]");
            }
            if (right.length() < prefixLength) {
                throw fields.problem(path, "has a right side shorter than the continuing_subword_prefix");
            }
            String mergedToken = left + right.substring(prefixLength);
            Integer leftId = vocab.get(left);
            Integer rightId = vocab.get(right);
            Integer mergedId = vocab.get(mergedToken);
            if (leftId == null || rightId == null || mergedId == null) {
                String missing = leftId == null ? left : rightId == null ? right : mergedToken;
                throw fields.problem(path, "uses '" + missing + "', which is not in model.vocab");
            }
            merges.put(leftId, rightId, rank, mergedId);
        }
        return new BpeModel(vocab, merges, new BpeModel.Options(
                fields.optionalText(node, "unk_token", "model.unk_token"),
                fields.optionalBoolean(node, "fuse_unk", "model.fuse_unk", false),
                fields.optionalBoolean(node, "byte_fallback", "model.byte_fallback", false),
                prefix, suffix,
                fields.optionalBoolean(node, "ignore_merges", "model.ignore_merges", false)));
    }

    // ---- added tokens ----

    /** Ids are assigned as Hugging Face does when it loads the file, one token at a time. */
    private List<AddedToken> addedTokens(JsonNode root, BpeModel model) throws TokenizerLoadException {
        JsonNode list = JsonFields.optional(root, "added_tokens");
        if (list == null) {
            return List.of();
        }
        if (!list.isArray()) {
            throw fields.problem("added_tokens", "must be an array");
        }
        Map<String, AddedToken> byContent = new LinkedHashMap<>();
        Map<Integer, String> contentOfId = new HashMap<>();
        int maxAddedId = -1;
        for (int i = 0; i < list.size(); i++) {
            JsonNode node = list.get(i);
            String path = "added_tokens[" + i + "]";
            if (!node.isObject()) {
                throw fields.problem(path, "must be an object");
            }
            String content = fields.requireText(node, "content", path + ".content");
            boolean special = fields.optionalBoolean(node, "special", path + ".special", false);
            // Validated; the id actually used is computed below.
            JsonNode idNode = JsonFields.optional(node, "id");
            if (idNode == null) {
                throw fields.problem(path + ".id", "is missing");
            }
            int fileId = tokenId(idNode, path + ".id");
            if (content.isEmpty() || byContent.containsKey(content)) {
                continue;
            }
            String sameId = contentOfId.putIfAbsent(fileId, content);
            if (sameId != null) {
                throw fields.problem(path + ".id", "is " + fileId + ", the id of added token '" + sameId
                        + "' too (ids must be unique)");
            }
            Integer existing = model.tokenToId(content);
            int id;
            if (existing != null) {
                id = existing;
            } else if (maxAddedId < 0) {
                id = model.vocabSize();
            } else {
                id = maxAddedId >= model.vocabSize() || model.vocabSize() == 0 ? maxAddedId + 1 : model.vocabSize();
            }
            maxAddedId = Math.max(maxAddedId, id);
            byContent.put(content, new AddedToken(id, content, special,
                    fields.optionalBoolean(node, "single_word", path + ".single_word", false),
                    fields.optionalBoolean(node, "lstrip", path + ".lstrip", false),
                    fields.optionalBoolean(node, "rstrip", path + ".rstrip", false),
                    fields.optionalBoolean(node, "normalized", path + ".normalized", true)));
        }
        return List.copyOf(byContent.values());
    }

    // ---- post-processors ----

    private PostProcessor postProcessor(JsonNode node, String path, BpeModel model, AddedVocabulary added)
            throws TokenizerLoadException {
        String type = typeOf(node, path);
        switch (type) {
            case "ByteLevel":
                return new PostProcessor.ByteLevelOffsets();
            case "TemplateProcessing":
                return templateProcessing(node, path);
            case "RobertaProcessing":
            case "BertProcessing": {
                int[] cls = {tokenPairId(node, "cls", path)};
                int[] sep = {tokenPairId(node, "sep", path)};
                return new PostProcessor.Template(List.of(cls, PostProcessor.Template.SEQUENCE, sep));
            }
            case "Sequence": {
                JsonNode list = fields.requireArray(node, "processors", path + ".processors");
                List<PostProcessor> processors = new ArrayList<>();
                for (int i = 0; i < list.size(); i++) {
                    processors.add(postProcessor(list.get(i), path + ".processors[" + i + "]", model, added));
                }
                return new PostProcessor.Sequence(processors);
            }
            default:
                throw unsupported("post-processor", "type '" + type + "' at " + path
                        + " (supported: TemplateProcessing, ByteLevel, RobertaProcessing, BertProcessing, Sequence)");
        }
    }

    /** Reads {@code "cls": ["<s>", 0]}. */
    private int tokenPairId(JsonNode node, String field, String path) throws TokenizerLoadException {
        JsonNode pair = fields.requireArray(node, field, path + "." + field);
        if (pair.size() != 2 || !pair.get(0).isTextual()) {
            throw fields.problem(path + "." + field, "must be [token, id]");
        }
        return tokenId(pair.get(1), path + "." + field + "[1]");
    }

    private PostProcessor templateProcessing(JsonNode node, String path) throws TokenizerLoadException {
        JsonNode specialTokens = JsonFields.optional(node, "special_tokens");
        Map<String, int[]> specialIds = new HashMap<>();
        if (specialTokens != null) {
            Iterator<Map.Entry<String, JsonNode>> entries = specialTokens.fields();
            while (entries.hasNext()) {
                Map.Entry<String, JsonNode> entry = entries.next();
                String entryPath = path + ".special_tokens[\"" + entry.getKey() + "\"]";
                JsonNode idsNode = fields.requireArray(entry.getValue(), "ids", entryPath + ".ids");
                int[] ids = new int[idsNode.size()];
                for (int i = 0; i < ids.length; i++) {
                    ids[i] = tokenId(idsNode.get(i), entryPath + ".ids[" + i + "]");
                }
                specialIds.put(entry.getKey(), ids);
            }
        }
        JsonNode single = JsonFields.optional(node, "single");
        if (single == null) {
            throw fields.problem(path + ".single", "is missing");
        }
        List<int[]> pieces = new ArrayList<>();
        if (single.isTextual()) {
            // The string form "<s> $A </s>", as the Python constructor accepts.
            for (String piece : single.textValue().trim().split("\\s+")) {
                String name = piece.contains(":") ? piece.substring(0, piece.lastIndexOf(':')) : piece;
                if (name.equals("$") || name.equals("$A") || name.equals("$0")) {
                    pieces.add(PostProcessor.Template.SEQUENCE);
                } else {
                    pieces.add(specialIdsOf(specialIds, name, path));
                }
            }
        } else if (single.isArray()) {
            for (int i = 0; i < single.size(); i++) {
                JsonNode piece = single.get(i);
                String piecePath = path + ".single[" + i + "]";
                JsonNode special = JsonFields.optional(piece, "SpecialToken");
                JsonNode sequence = JsonFields.optional(piece, "Sequence");
                if (special != null) {
                    pieces.add(specialIdsOf(specialIds, fields.requireText(special, "id", piecePath + ".SpecialToken.id"), path));
                } else if (sequence != null) {
                    String id = fields.requireText(sequence, "id", piecePath + ".Sequence.id");
                    if (!id.equals("A")) {
                        throw fields.problem(piecePath + ".Sequence.id", "must be \"A\" in a single-sequence template");
                    }
                    pieces.add(PostProcessor.Template.SEQUENCE);
                } else {
                    throw fields.problem(piecePath, "must hold \"SpecialToken\" or \"Sequence\"");
                }
            }
        } else {
            throw fields.problem(path + ".single", "must be an array or a string");
        }
        return new PostProcessor.Template(pieces);
    }

    private int[] specialIdsOf(Map<String, int[]> specialIds, String name, String path) throws TokenizerLoadException {
        int[] ids = specialIds.get(name);
        if (ids == null) {
            throw fields.problem(path + ".special_tokens", "has no entry for '" + name + "' used by the template");
        }
        return ids;
    }

    // ---- decoders ----

    private TokenDecoder decoder(JsonNode node, String path) throws TokenizerLoadException {
        String type = typeOf(node, path);
        switch (type) {
            case "ByteLevel":
                return new TokenDecoder.ByteLevel();
            case "Replace":
                return new TokenDecoder.Replace(pattern(node, path), fields.requireText(node, "content", path + ".content"));
            case "ByteFallback":
                return new TokenDecoder.ByteFallback();
            case "Fuse":
                return new TokenDecoder.Fuse();
            case "Strip": {
                int start = fields.requireInt(node, "start", path + ".start");
                int stop = fields.requireInt(node, "stop", path + ".stop");
                if (start < 0 || stop < 0) {
                    throw fields.problem(path, "has a negative start or stop");
                }
                return new TokenDecoder.Strip(fields.requireCharacter(node, "content", path + ".content"), start, stop);
            }
            case "Metaspace":
                return new TokenDecoder.Metaspace(fields.requireCharacter(node, "replacement", path + ".replacement"),
                        prependScheme(node, path) != PreTokenizer.Metaspace.PrependScheme.NEVER);
            case "Sequence": {
                JsonNode list = fields.requireArray(node, "decoders", path + ".decoders");
                List<TokenDecoder> decoders = new ArrayList<>();
                for (int i = 0; i < list.size(); i++) {
                    decoders.add(decoder(list.get(i), path + ".decoders[" + i + "]"));
                }
                return new TokenDecoder.Sequence(decoders);
            }
            default:
                throw unsupported("decoder", "type '" + type + "' at " + path
                        + " (supported: ByteLevel, Replace, ByteFallback, Fuse, Strip, Metaspace, Sequence)");
        }
    }
}
