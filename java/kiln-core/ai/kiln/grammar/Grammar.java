package ai.kiln.grammar;

import java.util.Arrays;

/**
 * A context-free grammar over bytes, as automata that call one another: each rule is an automaton
 * whose edges either consume one byte of a range or call another rule (continuing at a return
 * state once the callee accepts). States are numbered across all rules; a rule is entered at its
 * start state and may end at any accepting state. Built by {@link GrammarBuilder}, which removes
 * the builder's empty moves, dead states and left recursion, so that every state here can reach
 * an accepting one and a rule's call chain without input is finite.
 *
 * <p>A parse in progress is a set of {@link StackNode stacks} of states (the top is where the
 * innermost rule is, those below are return states), advanced byte by byte ({@link #advance}).
 */
public final class Grammar {

    private final int rootStart;
    private final int numRules;
    private final boolean[] accepting;   // [numStates] whether the state's rule may end here
    private final int[] byteEdgeStart;   // [numStates + 1] offsets into the byte edges
    private final int[] byteLo;          // [numByteEdges] each edge's byte range [lo, hi] (0..255) ...
    private final int[] byteHi;          // [numByteEdges]
    private final int[] byteTo;          // [numByteEdges] ... and target state
    private final int[] callEdgeStart;   // [numStates + 1] offsets into the call edges
    private final int[] callStart;       // [numCallEdges] the callee's start state
    private final int[] callReturn;      // [numCallEdges] where the caller goes on after the callee ends
    private final boolean[] inRoot;      // [numStates] whether the state is the root rule's (always a stack's bottom)

    Grammar(int rootStart, int numRules, boolean[] accepting, int[] byteEdgeStart, int[] byteLo, int[] byteHi,
            int[] byteTo, int[] callEdgeStart, int[] callStart, int[] callReturn, boolean[] inRoot) {
        this.rootStart = rootStart;
        this.numRules = numRules;
        this.accepting = accepting;
        this.byteEdgeStart = byteEdgeStart;
        this.byteLo = byteLo;
        this.byteHi = byteHi;
        this.byteTo = byteTo;
        this.callEdgeStart = callEdgeStart;
        this.callStart = callStart;
        this.callReturn = callReturn;
        this.inRoot = inRoot;
    }

    /** Whether a state belongs to the root rule, which nothing calls: its frame is always a stack's bottom. */
    boolean inRoot(int state) {
        return inRoot[state];
    }

    public int numStates() {
        return accepting.length;
    }

    /** Whether a state consumes input (it has byte edges): the states a stack's top can rest on. */
    public boolean consumesBytes(int state) {
        return byteEdgeStart[state + 1] > byteEdgeStart[state];
    }

    /** The parse before any input: the root rule's start, expanded. */
    public ParseState initialState() {
        Expansion e = new Expansion();
        expand(new StackNode(rootStart, null), e, 0);
        return e.toState();
    }

    /** The parse after one more byte (0..255); {@link ParseState#isDead()} when no stack takes it. */
    public ParseState advance(ParseState state, int b) {
        Expansion e = new Expansion();
        for (StackNode top : state.live()) {
            step(top, b, e);
        }
        return e.toState();
    }

    /** Advances every stack of {@code from} by byte {@code b} into {@code out}. */
    void step(StackNode top, int b, Expansion out) {
        int s = top.state;
        for (int e = byteEdgeStart[s], end = byteEdgeStart[s + 1]; e < end; e++) {
            if (b >= byteLo[e] && b <= byteHi[e]) {
                expand(new StackNode(byteTo[e], top.parent), out, 0);
            }
        }
    }

    /**
     * Adds the stacks {@code node} stands for once its top's calls are entered and its finished
     * rules returned from: those whose top consumes bytes are live; a stack that returns past its
     * bottom either completes the parse (no parent) or, for a walk relative to a state, escapes
     * it ({@link StackNode#BOTTOM}).
     */
    void expand(StackNode node, Expansion out, int pushes) {
        if (!out.visited.add(node)) {
            return; // e.g. a loop over a rule that can match nothing returns to where it began
        }
        int s = node.state;
        if (consumesBytes(s)) {
            out.live.add(node);
        }
        for (int e = callEdgeStart[s], end = callEdgeStart[s + 1]; e < end; e++) {
            if (pushes > numRules) {
                throw new GrammarException("the grammar is left-recursive: a rule can call itself before any input");
            }
            expand(new StackNode(callStart[e], new StackNode(callReturn[e], node.parent)), out, pushes + 1);
        }
        if (accepting[s]) {
            if (node.parent == null) {
                out.complete = true;
            } else if (node.parent == StackNode.BOTTOM) {
                out.escaped = true;
            } else {
                expand(node.parent, out, Math.max(0, pushes - 1));
            }
        }
    }

    /** Refuses left recursion: expands every state with calls, which throws past a call chain of numRules. */
    void checkNoLeftRecursion() {
        for (int s = 0; s < numStates(); s++) {
            if (callEdgeStart[s + 1] > callEdgeStart[s]) {
                expand(new StackNode(s, StackNode.BOTTOM), new Expansion(), 0);
            }
        }
    }

    @Override
    public String toString() {
        return "Grammar[" + numStates() + " states, " + byteTo.length + " byte edges, " + callStart.length
                + " call edges, " + numRules + " rules]";
    }

    /** The stacks one expansion round reaches. */
    static final class Expansion {
        final java.util.LinkedHashSet<StackNode> live = new java.util.LinkedHashSet<>();
        final java.util.HashSet<StackNode> visited = new java.util.HashSet<>();
        boolean complete;
        boolean escaped;

        ParseState toState() {
            return new ParseState(live.toArray(new StackNode[0]), complete);
        }
    }

    /** Whether two grammars have the same automata (for tests of the builder). */
    boolean sameAutomata(Grammar o) {
        return rootStart == o.rootStart && Arrays.equals(accepting, o.accepting)
                && Arrays.equals(byteEdgeStart, o.byteEdgeStart) && Arrays.equals(byteTo, o.byteTo)
                && Arrays.equals(callStart, o.callStart);
    }
}
