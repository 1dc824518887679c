package ai.kiln.bench;

import ai.kiln.tokenizer.Tokenizer;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.JsonToken;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;

/**
 * The prompts of {@code kiln bench serve}, each seeded so that a run repeats.
 *
 * <ul>
 *   <li>{@code sharegpt-like}: random token ids, prompt and output lengths drawn from log-normal
 *       distributions shaped like ShareGPT's long-tailed lengths ({@link #SHAREGPT_LIKE_INPUT},
 *       {@link #SHAREGPT_LIKE_OUTPUT}); stated parameters, not a fit of ShareGPT.
 *   <li>{@code random}: random token ids, lengths uniform in {@code [len * (1 - r), len * (1 + r)]},
 *       as vLLM's random dataset.
 *   <li>{@code sharegpt}: a ShareGPT-format JSON file, as vLLM samples it: conversations shuffled,
 *       the first human turn is the prompt text, the token count of the first gpt turn after it is
 *       the output length; pairs with a prompt or output under 4 tokens, a prompt over 1,024 or a
 *       total over 2,048 tokens are skipped.
 * </ul>
 *
 * For an endpoint that takes text only (chat), {@link #asText} turns prompts of token ids into
 * text with the model's tokenizer.
 */
public final class ServingDatasets {

    /**
     * Lengths {@code round(exp(ln(median) + sigma * z))}, z standard normal, clamped to [min, max].
     */
    public record LogNormal(double median, double sigma, int min, int max) {

        public LogNormal {
            if (!(median > 0) || !(sigma >= 0) || min < 1 || max < min) {
                throw new IllegalArgumentException("a log-normal length needs median > 0, sigma >= 0 and 1 <= min <= max, got "
                        + median + ", " + sigma + ", [" + min + ", " + max + "]");
            }
        }

        int draw(SplittableRandom random) {
            long length = Math.round(Math.exp(Math.log(median) + sigma * random.nextGaussian()));
            return (int) Math.max(min, Math.min(max, length));
        }
    }

    /** Prompt lengths: median 170 tokens, sigma 0.8, within [4, 2048] (mean about 233). */
    public static final LogNormal SHAREGPT_LIKE_INPUT = new LogNormal(170, 0.8, 4, 2048);
    /** Output lengths: median 180 tokens, sigma 0.8, within [4, 1024] (mean about 242, 248 before clamping). */
    public static final LogNormal SHAREGPT_LIKE_OUTPUT = new LogNormal(180, 0.8, 4, 1024);

    /** vLLM's limits on ShareGPT pairs. */
    static final int SHAREGPT_MIN_LEN = 4;
    static final int SHAREGPT_MAX_PROMPT_LEN = 1024;
    static final int SHAREGPT_MAX_TOTAL_LEN = 2048;

    private ServingDatasets() {
    }

    /** {@code n} prompts of random token ids in [0, vocabSize) with log-normal lengths. */
    public static List<BenchPrompt> shareGptLike(int n, int vocabSize, LogNormal input, LogNormal output, long seed) {
        checkVocab(vocabSize);
        SplittableRandom random = new SplittableRandom(seed);
        List<BenchPrompt> prompts = new ArrayList<>(n);
        for (int i = 0; i < n; i++) {
            int promptLen = input.draw(random);
            int outputLen = output.draw(random);
            prompts.add(BenchPrompt.ofTokens(random.ints(promptLen, 0, vocabSize).toArray(), outputLen));
        }
        return prompts;
    }

    /** {@code n} prompts of random token ids, lengths uniform within {@code rangeRatio} of the given ones. */
    public static List<BenchPrompt> random(int n, int vocabSize, int inputLen, int outputLen, double rangeRatio, long seed) {
        checkVocab(vocabSize);
        if (!(rangeRatio >= 0 && rangeRatio < 1)) {
            throw new IllegalArgumentException("--random-range-ratio must be in [0, 1), got " + rangeRatio);
        }
        if (inputLen < 1 || outputLen < 1) {
            throw new IllegalArgumentException("--random-input-len and --random-output-len must be >= 1");
        }
        SplittableRandom random = new SplittableRandom(seed);
        List<BenchPrompt> prompts = new ArrayList<>(n);
        for (int i = 0; i < n; i++) {
            int promptLen = uniformAround(random, inputLen, rangeRatio);
            int outLen = uniformAround(random, outputLen, rangeRatio);
            prompts.add(BenchPrompt.ofTokens(random.ints(promptLen, 0, vocabSize).toArray(), outLen));
        }
        return prompts;
    }

    /**
     * vLLM's prefix-repetition prompts: {@code numPrefixes} random prefixes of {@code prefixLen}
     * token ids, each prompt one of them (in turn, then shuffled) followed by {@code suffixLen}
     * random ids of its own, {@code outputLen} tokens asked: a load that the prefix cache serves
     * (every prompt shares its first prefixLen tokens with n / numPrefixes others).
     */
    public static List<BenchPrompt> prefixRepetition(int n, int vocabSize, int prefixLen, int suffixLen, int numPrefixes,
            int outputLen, long seed) {
        checkVocab(vocabSize);
        if (prefixLen < 0 || suffixLen < 0 || prefixLen + suffixLen < 1) {
            throw new IllegalArgumentException("--prefix-repetition-prefix-len and --prefix-repetition-suffix-len"
                    + " must be >= 0 and not both 0, got " + prefixLen + " and " + suffixLen);
        }
        if (numPrefixes < 1 || outputLen < 1) {
            throw new IllegalArgumentException("--prefix-repetition-num-prefixes and --prefix-repetition-output-len"
                    + " must be >= 1, got " + numPrefixes + " and " + outputLen);
        }
        SplittableRandom random = new SplittableRandom(seed);
        int[][] prefixes = new int[numPrefixes][];
        for (int p = 0; p < numPrefixes; p++) {
            prefixes[p] = random.ints(prefixLen, 0, vocabSize).toArray();
        }
        List<BenchPrompt> prompts = new ArrayList<>(n);
        for (int i = 0; i < n; i++) {
            int[] ids = new int[prefixLen + suffixLen];
            System.arraycopy(prefixes[i % numPrefixes], 0, ids, 0, prefixLen);
            for (int j = prefixLen; j < ids.length; j++) {
                ids[j] = random.nextInt(vocabSize);
            }
            prompts.add(BenchPrompt.ofTokens(ids, outputLen));
        }
        // Shuffled so that prompts of one prefix do not all arrive together.
        for (int i = prompts.size() - 1; i > 0; i--) {
            int j = random.nextInt(i + 1);
            BenchPrompt t = prompts.get(i);
            prompts.set(i, prompts.get(j));
            prompts.set(j, t);
        }
        return prompts;
    }

    private static int uniformAround(SplittableRandom random, int length, double ratio) {
        int low = Math.max(1, (int) Math.floor(length * (1 - ratio)));
        int high = Math.max(low, (int) Math.ceil(length * (1 + ratio)));
        return random.nextInt(low, high + 1);
    }

    private static void checkVocab(int vocabSize) {
        if (vocabSize < 1) {
            throw new IllegalArgumentException("the vocabulary size must be >= 1, got " + vocabSize);
        }
    }

    /**
     * {@code n} prompts from a ShareGPT-format file ({@code [{"conversations": [{"from": "human",
     * "value": ...}, {"from": "gpt", "value": ...}, ...]}, ...]}). The prompt's length is counted as
     * the server will tokenize it (special tokens such as BOS added), the answer's without them.
     */
    public static List<BenchPrompt> shareGpt(Path file, Tokenizer tokenizer, int n, long seed) throws IOException {
        List<String[]> pairs = readShareGptPairs(file);
        SplittableRandom random = new SplittableRandom(seed);
        for (int i = pairs.size() - 1; i > 0; i--) {
            int j = random.nextInt(i + 1);
            String[] swap = pairs.get(i);
            pairs.set(i, pairs.get(j));
            pairs.set(j, swap);
        }
        List<BenchPrompt> prompts = new ArrayList<>(n);
        for (String[] pair : pairs) {
            if (prompts.size() == n) {
                break;
            }
            int promptLen = tokenizer.encode(pair[0], true).length;
            int outputLen = tokenizer.encode(pair[1], false).length;
            if (promptLen < SHAREGPT_MIN_LEN || outputLen < SHAREGPT_MIN_LEN || promptLen > SHAREGPT_MAX_PROMPT_LEN
                    || promptLen + outputLen > SHAREGPT_MAX_TOTAL_LEN) {
                continue;
            }
            prompts.add(BenchPrompt.ofText(pair[0], promptLen, outputLen));
        }
        if (prompts.size() < n) {
            throw new IllegalArgumentException(file + " has " + prompts.size() + " usable conversations (of "
                    + pairs.size() + " with a human and a gpt turn), fewer than the " + n + " prompts asked for");
        }
        return prompts;
    }

    /**
     * The prompts with token ids turned into text, as vLLM's random dataset makes its text: the ids
     * decoded, the text encoded again and cut to the ids' length where it came out longer (decoding
     * and encoding are no round trip: a lone byte of a character decodes to U+FFFD), and that
     * decoded (cut shorter where that text is still too long). The prompt's length is then counted from the text it sends, as the tokenizer encodes
     * it alone (a chat template adds its own tokens around it). Special tokens are left out, so that
     * no control token (an end of turn, say) lands inside a chat message. Text prompts pass as they are.
     */
    public static List<BenchPrompt> asText(List<BenchPrompt> prompts, Tokenizer tokenizer) {
        List<BenchPrompt> texts = new ArrayList<>(prompts.size());
        for (int i = 0; i < prompts.size(); i++) {
            BenchPrompt prompt = prompts.get(i);
            if (prompt.tokenIds() == null) {
                texts.add(prompt);
                continue;
            }
            int[] ids = prompt.tokenIds();
            String text = tokenizer.decode(ids, true);
            int[] encoded = tokenizer.encode(text, false);
            int[] again = encoded;
            // A cut through a character's bytes makes another U+FFFD, so the cut may need to go shorter.
            for (int keep = ids.length; again.length > ids.length; keep--) {
                text = tokenizer.decode(Arrays.copyOf(encoded, keep), true);
                again = tokenizer.encode(text, false);
            }
            if (again.length == 0) {
                throw new IllegalArgumentException("prompt " + i + "'s " + ids.length
                        + " token ids decode to no text (special tokens only); ask for longer prompts");
            }
            texts.add(BenchPrompt.ofText(text, again.length, prompt.outputLen()));
        }
        return texts;
    }

    /** (prompt, answer) of every conversation with a human turn followed by a gpt turn, in file order. */
    static List<String[]> readShareGptPairs(Path file) throws IOException {
        ObjectMapper json = new ObjectMapper();
        List<String[]> pairs = new ArrayList<>();
        // NOTE: streamed entry by entry, since ShareGPT dumps run to hundreds of megabytes.
        try (JsonParser parser = json.getFactory().createParser(Files.newInputStream(file))) {
            JsonToken first;
            try {
                first = parser.nextToken();
            } catch (JsonProcessingException e) {
                throw malformed(file, "not JSON: " + e.getOriginalMessage());
            }
            if (first != JsonToken.START_ARRAY) {
                throw malformed(file, "the top level must be an array of conversations");
            }
            int index = 0;
            while (true) {
                JsonNode entry;
                try {
                    if (parser.nextToken() == JsonToken.END_ARRAY) {
                        break;
                    }
                    entry = parser.readValueAsTree();
                } catch (JsonProcessingException e) {
                    throw malformed(file, "not JSON after entry " + index + ": " + e.getOriginalMessage());
                }
                if (entry == null) {
                    throw malformed(file, "the array is not closed");
                }
                JsonNode turns = entry.get("conversations");
                if (!entry.isObject() || turns == null || !turns.isArray()) {
                    throw malformed(file, "entry " + index + " has no \"conversations\" array");
                }
                String[] pair = firstExchange(turns);
                if (pair != null) {
                    pairs.add(pair);
                }
                index++;
            }
        }
        return pairs;
    }

    private static String[] firstExchange(JsonNode turns) {
        String prompt = null;
        for (JsonNode turn : turns) {
            String from = turn.path("from").asText("");
            JsonNode value = turn.get("value");
            if (value == null || !value.isTextual()) {
                continue;
            }
            if (prompt == null && (from.equals("human") || from.equals("user"))) {
                prompt = value.textValue();
            } else if (prompt != null && (from.equals("gpt") || from.equals("assistant"))) {
                return new String[] {prompt, value.textValue()};
            }
        }
        return null;
    }

    private static IllegalArgumentException malformed(Path file, String why) {
        return new IllegalArgumentException("malformed ShareGPT file " + file + ": " + why);
    }
}
