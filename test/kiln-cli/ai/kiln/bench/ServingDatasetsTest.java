package ai.kiln.bench;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.kiln.testing.Fixtures;
import ai.kiln.tokenizer.Tokenizer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Set;
import java.util.stream.Collectors;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The prompts of {@code kiln bench serve}: seeded, within their bounds, and ShareGPT files read as vLLM reads them. */
class ServingDatasetsTest {

    static final String FOX = "Tell me about the quick brown fox and the lazy dog, please.";
    static final String FOX_ANSWER = "The quick brown fox jumps over the lazy dog, as it always does in these sentences.";
    static final String POEM = "Write a short poem about the sea at night.";
    static final String POEM_ANSWER = "The sea at night is dark and deep, where silver waves roll in their sleep.";
    static final String LATE = "Which turn is the prompt when the assistant speaks first?";
    static final String LATE_ANSWER = "The first human turn is the prompt, and the next assistant turn is the answer.";

    static final String SHAREGPT = """
            [
              {"id": "a", "conversations": [{"from": "human", "value": "%s"}, {"from": "gpt", "value": "%s"},
                                            {"from": "human", "value": "and then?"}]},
              {"id": "b", "conversations": [{"from": "system", "value": "You are terse."},
                                            {"from": "human", "value": "%s"}, {"from": "gpt", "value": "%s"}]},
              {"id": "c", "conversations": [{"from": "human", "value": "No answer follows this one."}]},
              {"id": "d", "conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Yo"}]},
              {"id": "e", "conversations": [{"from": "gpt", "value": "Hello, how can I help?"},
                                            {"from": "human", "value": "%s"}, {"from": "gpt", "value": "%s"}]}
            ]
            """.formatted(FOX, FOX_ANSWER, POEM, POEM_ANSWER, LATE, LATE_ANSWER);

    @TempDir
    Path dir;

    Path write(String name, String text) throws Exception {
        Path file = dir.resolve(name);
        Files.writeString(file, text);
        return file;
    }

    @Test
    void shareGptFilePromptsAreFirstHumanTurnsAndOutputLengthsTheAnswersTokens() throws Exception {
        Tokenizer tokenizer = Tokenizer.load(Fixtures.named("llama3-gqa").dir());
        Path file = write("sharegpt.json", SHAREGPT);
        List<BenchPrompt> prompts = ServingDatasets.shareGpt(file, tokenizer, 3, 1);
        assertEquals(Set.of(FOX, POEM, LATE), prompts.stream().map(BenchPrompt::text).collect(Collectors.toSet()));
        for (BenchPrompt p : prompts) {
            String answer = p.text().equals(FOX) ? FOX_ANSWER : p.text().equals(POEM) ? POEM_ANSWER : LATE_ANSWER;
            assertEquals(tokenizer.encode(p.text(), true).length, p.promptLen());
            assertEquals(tokenizer.encode(answer, false).length, p.outputLen());
        }
        // "Hi" / "Yo" is under 4 tokens and skipped, so only three are usable.
        IllegalArgumentException tooFew = assertThrows(IllegalArgumentException.class,
                () -> ServingDatasets.shareGpt(file, tokenizer, 4, 1));
        assertTrue(tooFew.getMessage().contains("3 usable conversations (of 4"), tooFew.getMessage());
        // Seeded shuffle: the same seed, the same order.
        assertEquals(prompts.stream().map(BenchPrompt::text).toList(),
                ServingDatasets.shareGpt(file, tokenizer, 3, 1).stream().map(BenchPrompt::text).toList());
    }

    @Test
    void malformedShareGptFilesAreReportedWithWhatIsWrong() throws Exception {
        Tokenizer tokenizer = Tokenizer.load(Fixtures.named("llama3-gqa").dir());
        for (String[] c : new String[][] {
                {"this is not json", "not JSON"},
                {"{\"conversations\": []}", "the top level must be an array"},
                {"[{\"id\": 1}]", "entry 0 has no \"conversations\" array"},
                {"[{\"conversations\": []}, 7]", "entry 1 has no \"conversations\" array"},
                {"[{\"conversations\": []}, {\"conv", "not JSON after entry 1"}}) {
            Path file = write("bad.json", c[0]);
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> ServingDatasets.shareGpt(file, tokenizer, 1, 0), c[0]);
            assertTrue(e.getMessage().startsWith("malformed ShareGPT file " + file) && e.getMessage().contains(c[1]),
                    e.getMessage());
        }
    }

    @Test
    void shareGptLikeIsSeededAndWithinItsClamps() {
        List<BenchPrompt> a = ServingDatasets.shareGptLike(200, 1000, ServingDatasets.SHAREGPT_LIKE_INPUT,
                ServingDatasets.SHAREGPT_LIKE_OUTPUT, 42);
        List<BenchPrompt> b = ServingDatasets.shareGptLike(200, 1000, ServingDatasets.SHAREGPT_LIKE_INPUT,
                ServingDatasets.SHAREGPT_LIKE_OUTPUT, 42);
        for (int i = 0; i < a.size(); i++) {
            assertArrayEquals(a.get(i).tokenIds(), b.get(i).tokenIds());
            assertEquals(a.get(i).outputLen(), b.get(i).outputLen());
            assertEquals(a.get(i).tokenIds().length, a.get(i).promptLen());
            assertTrue(a.get(i).promptLen() >= 4 && a.get(i).promptLen() <= 2048);
            assertTrue(a.get(i).outputLen() >= 4 && a.get(i).outputLen() <= 1024);
            assertTrue(Arrays.stream(a.get(i).tokenIds()).allMatch(id -> id >= 0 && id < 1000));
        }
        List<BenchPrompt> other = ServingDatasets.shareGptLike(1, 1000, ServingDatasets.SHAREGPT_LIKE_INPUT,
                ServingDatasets.SHAREGPT_LIKE_OUTPUT, 43);
        assertTrue(!Arrays.equals(a.get(0).tokenIds(), other.get(0).tokenIds()), "another seed, other prompts");
    }

    @Test
    void shareGptLikeMediansAndMeansAreThoseStated() {
        List<BenchPrompt> prompts = ServingDatasets.shareGptLike(20_001, 16, ServingDatasets.SHAREGPT_LIKE_INPUT,
                ServingDatasets.SHAREGPT_LIKE_OUTPUT, 7);
        int[] in = prompts.stream().mapToInt(BenchPrompt::promptLen).sorted().toArray();
        int[] out = prompts.stream().mapToInt(BenchPrompt::outputLen).sorted().toArray();
        // Over 20,001 draws with sigma 0.8 the sample median's and mean's standard errors are about
        // 0.7%, so 5% is beyond 7 of them: a false alarm far less likely than 1e-6. The output's
        // mean is about 242 once clamped at 1,024.
        assertEquals(170, in[in.length / 2], 170 * 0.05);
        assertEquals(180, out[out.length / 2], 180 * 0.05);
        assertEquals(233, Arrays.stream(in).average().orElseThrow(), 233 * 0.05);
        assertEquals(242, Arrays.stream(out).average().orElseThrow(), 242 * 0.05);
    }

    @Test
    void randomLengthsStayWithinTheRange() {
        for (BenchPrompt p : ServingDatasets.random(500, 50, 100, 20, 0.5, 3)) {
            assertTrue(p.promptLen() >= 50 && p.promptLen() <= 150, Integer.toString(p.promptLen()));
            assertTrue(p.outputLen() >= 10 && p.outputLen() <= 30, Integer.toString(p.outputLen()));
        }
        for (BenchPrompt p : ServingDatasets.random(10, 50, 100, 20, 0, 3)) {
            assertEquals(100, p.promptLen());
            assertEquals(20, p.outputLen());
        }
    }

    @Test
    void arrivalsAreAllAtOnceOrAPoissonProcess() {
        assertArrayEquals(new long[5], ServingBenchmark.arrivals(5, Double.POSITIVE_INFINITY, 1));
        long[] at = ServingBenchmark.arrivals(20_000, 50, 1);
        assertEquals(0, at[0]);
        for (int i = 1; i < at.length; i++) {
            assertTrue(at[i] >= at[i - 1]);
        }
        // Mean gap 1 / 50 s; over 19,999 exponential gaps the standard error is 0.7%.
        assertEquals(0.02, at[at.length - 1] / 1e9 / (at.length - 1), 0.02 * 0.04);
        assertArrayEquals(at, ServingBenchmark.arrivals(20_000, 50, 1));
    }

    /**
     * Gamma gaps of shape B have mean 1 / rate and coefficient of variation 1 / sqrt(B): over 20,000
     * seeded gaps the mean's standard error is below 1.6% and the coefficient's below 3% at every
     * shape here, so 6% and 8% bounds are far outside chance (and the draws repeat exactly).
     */
    @Test
    void burstinessShapesTheGapsAsAGammaDistribution() {
        double rate = 50;
        for (double burstiness : new double[] {0.25, 0.5, 2, 4}) {
            long[] at = ServingBenchmark.arrivals(20_001, rate, burstiness, 7);
            double[] gaps = new double[at.length - 1];
            double sum = 0;
            for (int i = 0; i < gaps.length; i++) {
                gaps[i] = (at[i + 1] - at[i]) / 1e9;
                assertTrue(gaps[i] >= 0);
                sum += gaps[i];
            }
            double mean = sum / gaps.length;
            double squares = 0;
            for (double g : gaps) {
                squares += (g - mean) * (g - mean);
            }
            double cv = Math.sqrt(squares / gaps.length) / mean;
            assertEquals(1 / rate, mean, 0.06 / rate, "burstiness " + burstiness);
            assertEquals(1 / Math.sqrt(burstiness), cv, 0.08 / Math.sqrt(burstiness), "burstiness " + burstiness);
            assertArrayEquals(at, ServingBenchmark.arrivals(20_001, rate, burstiness, 7));
        }
        // Burstiness 1 is the Poisson process itself.
        assertArrayEquals(ServingBenchmark.arrivals(100, rate, 7), ServingBenchmark.arrivals(100, rate, 1.0, 7));
        assertThrows(IllegalArgumentException.class, () -> ServingBenchmark.arrivals(3, rate, 0, 7));
    }
    /**
     * For chat, token ids become text: the text as long as it counts, never longer than the ids
     * asked for, no special token in it; lengths asked for output and text prompts pass unchanged.
     */
    @Test
    void tokenIdPromptsDecodeToTextOfTheLengthTheyCount() throws Exception {
        Tokenizer tokenizer = Tokenizer.load(Fixtures.named("llama3-gqa").dir());
        // The whole vocabulary, its five special tokens (507-511) included.
        List<BenchPrompt> ids = ServingDatasets.random(40, 512, 48, 8, 0.5, 5);
        List<BenchPrompt> mixed = new java.util.ArrayList<>(ids);
        BenchPrompt fox = BenchPrompt.ofText(FOX, 14, 9);
        mixed.add(fox);
        List<BenchPrompt> texts = ServingDatasets.asText(mixed, tokenizer);
        assertEquals(41, texts.size());
        assertTrue(texts.get(40) == fox, "a text prompt passes as it is");
        long asked = 0;
        long counted = 0;
        for (int i = 0; i < ids.size(); i++) {
            BenchPrompt text = texts.get(i);
            assertTrue(text.tokenIds() == null && !text.text().isEmpty(), text.toString());
            assertEquals(tokenizer.encode(text.text(), false).length, text.promptLen(), text.text());
            assertTrue(text.promptLen() <= ids.get(i).promptLen(), text.promptLen() + " > " + ids.get(i).promptLen());
            assertEquals(ids.get(i).outputLen(), text.outputLen());
            assertTrue(!text.text().contains("<|"), "no special token: " + text.text());
            asked += ids.get(i).promptLen();
            counted += text.promptLen();
        }
        // Merges and lone bytes shorten some texts, but most of the length asked for survives.
        assertTrue(counted > asked / 2, counted + " of " + asked);
        assertEquals(texts.subList(0, 40).stream().map(BenchPrompt::text).toList(),
                ServingDatasets.asText(ids, tokenizer).stream().map(BenchPrompt::text).toList(), "decoding repeats");
    }

    /** Each prompt is one of the shared prefixes and its own suffix; every prefix is used n / k times. */
    @Test
    void prefixRepetitionPromptsShareTheirPrefixes() {
        List<BenchPrompt> prompts = ServingDatasets.prefixRepetition(30, 1000, 16, 5, 3, 7, 4);
        assertEquals(30, prompts.size());
        java.util.Map<String, Integer> uses = new java.util.HashMap<>();
        java.util.Set<String> suffixes = new java.util.HashSet<>();
        for (BenchPrompt p : prompts) {
            assertEquals(21, p.promptLen());
            assertEquals(7, p.outputLen());
            int[] ids = p.tokenIds();
            for (int id : ids) {
                assertTrue(id >= 0 && id < 1000);
            }
            uses.merge(java.util.Arrays.toString(java.util.Arrays.copyOf(ids, 16)), 1, Integer::sum);
            suffixes.add(java.util.Arrays.toString(java.util.Arrays.copyOfRange(ids, 16, 21)));
        }
        assertEquals(java.util.List.of(10, 10, 10), uses.values().stream().sorted().toList());
        assertEquals(30, suffixes.size(), "every prompt has a suffix of its own");
        // Shuffled: unshuffled, prompt i and prompt i + 3 would always share a prefix.
        boolean inTurn = true;
        for (int i = 0; i + 3 < prompts.size(); i++) {
            inTurn &= java.util.Arrays.equals(java.util.Arrays.copyOf(prompts.get(i).tokenIds(), 16),
                    java.util.Arrays.copyOf(prompts.get(i + 3).tokenIds(), 16));
        }
        assertTrue(!inTurn, "the prompts are shuffled");
        assertArrayEquals(prompts.get(5).tokenIds(),
                ServingDatasets.prefixRepetition(30, 1000, 16, 5, 3, 7, 4).get(5).tokenIds());
        assertThrows(IllegalArgumentException.class, () -> ServingDatasets.prefixRepetition(3, 10, 0, 0, 1, 4, 1));
        assertThrows(IllegalArgumentException.class, () -> ServingDatasets.prefixRepetition(3, 10, 4, 4, 0, 4, 1));
    }
}
