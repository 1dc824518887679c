package ai.kiln.engine;

import ai.kiln.api.StructuredOutput;
import ai.kiln.grammar.CompiledGrammar;
import ai.kiln.grammar.TokenVocabulary;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.function.Supplier;

/**
 * The engine's compiled structured-output grammars, by their constraint's value (the schema's or
 * pattern's text): a constraint compiles once, with its token masks, and requests that repeat it
 * share the result. The least recently used are dropped past {@link #CAPACITY} grammars or {@link
 * #MAX_MASK_BYTES} of masks (a grammar in use stays alive with its sequences; only the cache
 * forgets it). Thread-safe: submissions compile on their callers' threads, outside the lock.
 */
final class GrammarCache {

    /** The most compiled grammars kept. */
    static final int CAPACITY = 64;
    /** The most mask bytes kept (a schema over a 128k vocabulary takes from under 1 MB to tens of MB). */
    static final long MAX_MASK_BYTES = 256L << 20;

    private final Supplier<TokenVocabulary> vocabularySource;
    private final int capacity;
    private final long maxMaskBytes;
    private TokenVocabulary vocabulary; // guarded by this; built on the first constrained request
    private final Map<StructuredOutput, CompiledGrammar> compiled = new LinkedHashMap<>(16, 0.75f, true);
    private long maskBytes; // guarded by this: summed over compiled

    GrammarCache(Supplier<TokenVocabulary> vocabularySource) {
        this(vocabularySource, CAPACITY, MAX_MASK_BYTES);
    }

    GrammarCache(Supplier<TokenVocabulary> vocabularySource, int capacity, long maxMaskBytes) {
        this.vocabularySource = vocabularySource;
        this.capacity = capacity;
        this.maxMaskBytes = maxMaskBytes;
    }

    /** The constraint compiled over the model's vocabulary; throws a GrammarException naming the problem. */
    CompiledGrammar get(StructuredOutput constraint) {
        TokenVocabulary vocab;
        synchronized (this) {
            CompiledGrammar known = compiled.get(constraint);
            if (known != null) {
                return known;
            }
            if (vocabulary == null) {
                vocabulary = vocabularySource.get();
            }
            vocab = vocabulary;
        }
        CompiledGrammar fresh = new CompiledGrammar(ApiMapping.grammar(constraint), vocab);
        synchronized (this) {
            CompiledGrammar known = compiled.get(constraint);
            if (known != null) {
                return known; // another submission compiled it meanwhile
            }
            compiled.put(constraint, fresh);
            maskBytes += fresh.maskBytes();
            // The least recently used first; the fresh one stays even alone over the budget.
            var eldest = compiled.entrySet().iterator();
            while ((compiled.size() > capacity || maskBytes > maxMaskBytes) && compiled.size() > 1) {
                CompiledGrammar dropped = eldest.next().getValue();
                eldest.remove();
                maskBytes -= dropped.maskBytes();
            }
            return fresh;
        }
    }

    /** How many grammars are kept (for tests). */
    synchronized int size() {
        return compiled.size();
    }

    /** Whether a constraint's grammar is kept (for tests). */
    synchronized boolean holds(StructuredOutput constraint) {
        return compiled.containsKey(constraint);
    }
}
