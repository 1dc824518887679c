package ai.kiln.grammar;

/**
 * A schema, regular expression or choice list that cannot be compiled into a grammar; the message
 * names the problem and where it is (a JSON pointer into a schema, an offset into a pattern).
 */
public final class GrammarException extends IllegalArgumentException {

    public GrammarException(String message) {
        super(message);
    }
}
