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
 * share the result. The least recently used are dropped past {@link #CAPACITY}. Thread-safe:
 * submissions compile on their callers' threads, outside the lock.
 */
final class GrammarCache {

    /** The most compiled grammars kept. */
    static final int CAPACITY = 64;

    private final Supplier<TokenVocabulary> vocabularySource;
    private TokenVocabulary vocabulary; // guarded by this; built on the first constrained request
    private final Map<StructuredOutput, CompiledGrammar> compiled = new LinkedHashMap<>(16, 0.75f, true) {
        @Override
        protected boolean removeEldestEntry(Map.Entry<StructuredOutput, CompiledGrammar> eldest) {
            return size() > CAPACITY;
        }
    };

    GrammarCache(Supplier<TokenVocabulary> vocabularySource) {
        this.vocabularySource = vocabularySource;
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
            compiled.putIfAbsent(constraint, fresh);
            return compiled.get(constraint);
        }
    }

    /** How many grammars are kept (for tests). */
    synchronized int size() {
        return compiled.size();
    }
}
