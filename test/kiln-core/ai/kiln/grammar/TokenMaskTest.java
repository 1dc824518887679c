package ai.kiln.grammar;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.kiln.testing.Fixtures;
import ai.kiln.tokenizer.Tokenizer;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * The token masks of {@link CompiledGrammar} (precomputed per state, the rest checked against the
 * stacks) against the plain definition, on random walks through several grammars: an id is
 * allowed exactly when its bytes keep the output a prefix of a sentence, and an end-of-sequence id
 * exactly where the output is complete. Over the llama3-gqa fixture's byte-level BPE vocabulary,
 * with multi-byte tokens that cross the ends of rules (", "}, ]}) added.
 */
class TokenMaskTest {

    static final int END = 3; // an end-of-sequence id of the test vocabulary

    static TokenVocabulary vocabulary() throws IOException {
        Tokenizer tokenizer = Tokenizer.load(Fixtures.named("llama3-gqa").dir());
        List<byte[]> tokens = new ArrayList<>();
        for (int id = 0; id < tokenizer.vocabSize(); id++) {
            tokens.add(tokenizer.isSpecialToken(id) ? null : tokenizer.tokenBytes(id));
        }
        for (String extra : List.of("\",", "\"}", "\"]", "\":", "\": ", "]}", "}]", "},", "}}", "1,", "0}", "e+",
                "\\\"", "\\u00", "true}", "null,", "\", \"", ".5", "-0", "{\"", "[{", "\"a\"", "é\"")) {
            tokens.add(extra.getBytes(StandardCharsets.UTF_8));
        }
        tokens.add(null); // an id past the tokenizer: never allowed
        tokens.set(END, null);
        return new TokenVocabulary(tokens.toArray(new byte[0][]), new int[] {END});
    }

    static final List<Grammar> GRAMMARS = List.of(
            Grammars.jsonObject(),
            Grammars.jsonSchema("""
                    {"type": "object", "properties": {"name": {"type": "string", "maxLength": 4},
                     "tags": {"type": "array", "items": {"enum": ["a", "bc"]}, "maxItems": 2},
                     "n": {"type": ["integer", "null"]}}, "required": ["name"]}"""),
            Grammars.jsonSchema("""
                    {"$defs": {"t": {"type": "object", "properties": {"k": {"type": "array", "items": {"$ref": "#/$defs/t"}}},
                     "required": ["k"], "additionalProperties": false}}, "$ref": "#/$defs/t"}"""),
            Grammars.regex("[a-c]+(x|yz)?[0-9]{1,3}"),
            Grammars.choice(List.of("yes", "no", "maybe so")));

    @Test
    void masksAllowExactlyTheTokensThatKeepTheOutputAPrefix() throws IOException {
        TokenVocabulary vocab = vocabulary();
        Random random = new Random(19);
        int checkedSteps = 0;
        for (Grammar grammar : GRAMMARS) {
            CompiledGrammar compiled = new CompiledGrammar(grammar, vocab);
            for (int walk = 0; walk < 8; walk++) {
                GrammarMatcher matcher = compiled.newMatcher(true);
                ParseState state = grammar.initialState();
                for (int step = 0; step < 40 && !matcher.isTerminated(); step++) {
                    int[] words = new int[vocab.maskWords()];
                    matcher.fillMask(words, 0);
                    List<Integer> allowed = new ArrayList<>();
                    ParseState here = state;
                    for (int i = 0; i < vocab.size(); i++) {
                        int id = i;
                        boolean expected = id == END ? here.complete()
                                : vocab.bytes(id).length > 0 && compiled.accepts(here, vocab.bytes(id));
                        boolean got = (words[id >>> 5] >>> (id & 31) & 1) != 0;
                        assertEquals(expected, got, () -> "id " + id + " (" + new String(vocab.bytes(id),
                                StandardCharsets.UTF_8) + ") in " + grammar);
                        if (got) {
                            allowed.add(id);
                        }
                    }
                    assertFalse(allowed.isEmpty(), "a live parse always has a way on");
                    checkedSteps++;
                    int token = allowed.get(random.nextInt(allowed.size()));
                    matcher.accept(token);
                    if (token != END) {
                        for (byte b : vocab.bytes(token)) {
                            state = grammar.advance(state, b & 0xFF);
                        }
                    }
                    assertFalse(matcher.isFailed());
                }
            }
        }
        assertTrue(checkedSteps > 300, "steps checked: " + checkedSteps);
    }

    @Test
    void endOfSequenceIsAllowedOnlyWhereTheOutputIsComplete() throws IOException {
        TokenVocabulary vocab = vocabulary();
        CompiledGrammar compiled = new CompiledGrammar(Grammars.regex("ab+"), vocab);
        GrammarMatcher m = compiled.newMatcher(true);
        int[] words = new int[vocab.maskWords()];
        assertTrue(m.acceptText("a".getBytes(StandardCharsets.UTF_8)));
        m.fillMask(words, 0);
        assertEquals(0, words[END >>> 5] >>> (END & 31) & 1, "after 'a' the output is not complete");
        assertTrue(m.acceptText("b".getBytes(StandardCharsets.UTF_8)));
        m.fillMask(words, 0);
        assertEquals(1, words[END >>> 5] >>> (END & 31) & 1, "after 'ab' it is");
        assertFalse(m.isTerminated(), "more b's may follow");
        m.accept(END);
        assertTrue(m.isTerminated());
        GrammarMatcher noEnd = compiled.newMatcher(false);
        assertTrue(noEnd.acceptText("ab".getBytes(StandardCharsets.UTF_8)));
        noEnd.fillMask(words, 0);
        assertEquals(0, words[END >>> 5] >>> (END & 31) & 1, "with ignore_eos the end id never comes");
    }

    @Test
    void anOutputWithNothingToFollowIsTerminated() throws IOException {
        CompiledGrammar compiled = new CompiledGrammar(Grammars.choice(List.of("no")), vocabulary());
        GrammarMatcher m = compiled.newMatcher(true);
        assertFalse(m.isTerminated());
        assertTrue(m.acceptText("no".getBytes(StandardCharsets.UTF_8)));
        assertTrue(m.isTerminated());
        assertFalse(m.acceptText("!".getBytes(StandardCharsets.UTF_8)));
    }

    @Test
    void mostTokensOfAJsonSchemaAreDecidedInAdvance() throws IOException {
        TokenVocabulary vocab = vocabulary();
        CompiledGrammar compiled = new CompiledGrammar(GRAMMARS.get(1), vocab);
        long states = 0;
        for (int s = 0; s < compiled.grammar().numStates(); s++) {
            states += compiled.grammar().consumesBytes(s) ? 1 : 0;
        }
        // Only tokens that run past a string's closing quote are left to the run-time check.
        assertTrue(compiled.numUncertain() < states * vocab.size() / 20,
                compiled.numUncertain() + " uncertain over " + states + " states");
    }
}
