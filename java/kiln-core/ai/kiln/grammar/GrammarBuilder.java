package ai.kiln.grammar;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.BitSet;
import java.util.List;

/**
 * Builds a {@link Grammar} from rules written as automata with empty moves (Thompson's
 * construction): each {@link Rule} has a start and an end state, and fragments are chained
 * through the states they return. {@link #build} removes the empty moves, drops the states that
 * cannot lead to an end and the calls of rules that match nothing, numbers the states of all rules
 * together and refuses left recursion.
 */
public final class GrammarBuilder {

    /** The most states all rules may have, so that a schema cannot make the compiler run away. */
    public static final int MAX_STATES = 200_000;

    private final List<Rule> rules = new ArrayList<>();
    private int totalStates;

    /** A new rule, with its start and end states. */
    public Rule rule(String name) {
        Rule r = new Rule(name, rules.size());
        rules.add(r);
        return r;
    }

    /** One rule's automaton, states numbered within the rule. */
    public final class Rule {
        final String name;
        final int index;
        private int numStates;
        private int[] edges = new int[64]; // [numEdges * 4]: kind, from, a, b (see the add methods)
        private int numEdges;
        private final int start;
        private final int end;

        private static final int EPSILON = 0;
        private static final int BYTES = 1;  // a: lo << 8 | hi, b: to
        private static final int CALL = 2;   // a: callee rule, b: to

        private Rule(String name, int index) {
            this.name = name;
            this.index = index;
            this.start = state();
            this.end = state();
        }

        public int start() {
            return start;
        }

        public int end() {
            return end;
        }

        /** A new state. */
        public int state() {
            if (++totalStates > MAX_STATES) {
                throw new GrammarException("the grammar is too large (more than " + MAX_STATES
                        + " automaton states); simplify the schema or pattern");
            }
            return numStates++;
        }

        private void add(int kind, int from, int a, int b) {
            if (numEdges * 4 == edges.length) {
                edges = Arrays.copyOf(edges, edges.length * 2);
            }
            edges[numEdges * 4] = kind;
            edges[numEdges * 4 + 1] = from;
            edges[numEdges * 4 + 2] = a;
            edges[numEdges * 4 + 3] = b;
            numEdges++;
        }

        public void epsilon(int from, int to) {
            add(EPSILON, from, 0, to);
        }

        /** An edge taking one byte in [lo, hi] (0..255). */
        public void bytes(int from, int lo, int hi, int to) {
            if (lo < 0 || hi > 255 || lo > hi) {
                throw new IllegalArgumentException("byte range [" + lo + ", " + hi + "]");
            }
            add(BYTES, from, lo << 8 | hi, to);
        }

        /** An edge that runs {@code callee} and goes on at {@code to} once it ends. */
        public void call(int from, Rule callee, int to) {
            add(CALL, from, callee.index, to);
        }

        /** The bytes in order from {@code at}; returns the state after them. */
        public int literal(int at, byte[] bytes) {
            int s = at;
            for (byte b : bytes) {
                int next = state();
                bytes(s, b & 0xFF, b & 0xFF, next);
                s = next;
            }
            return s;
        }

        /** A run of byte ranges from {@code at}, one byte each: ranges [2k] .. [2k + 1]; returns the state after. */
        public int byteRanges(int at, int[] ranges) {
            int s = at;
            for (int k = 0; k < ranges.length; k += 2) {
                int next = state();
                bytes(s, ranges[k], ranges[k + 1], next);
                s = next;
            }
            return s;
        }
    }

    /** The grammar whose sentences are those of {@code root}. */
    public Grammar build(Rule root) {
        int numRules = rules.size();
        // Per rule, after removing empty moves: accepting flags and edge lists, local numbering.
        boolean[][] accepting = new boolean[numRules][];
        int[][][] byteEdges = new int[numRules][][]; // [rule][state] -> lo, hi, to triples
        int[][][] callEdges = new int[numRules][][]; // [rule][state] -> callee, to pairs
        for (Rule r : rules) {
            removeEpsilons(r, accepting, byteEdges, callEdges);
        }
        boolean[] productive = productiveRules(accepting, byteEdges, callEdges);
        if (!productive[root.index]) {
            throw new GrammarException("the grammar matches no text (a schema with no finite value?)");
        }
        // Useful states: reachable from the rule's start and able to reach an accepting state.
        int[][] globalId = new int[numRules][];
        int next = 0;
        for (Rule r : rules) {
            int n = r.numStates;
            globalId[r.index] = new int[n];
            Arrays.fill(globalId[r.index], -1);
            if (!productive[r.index]) {
                continue;
            }
            BitSet useful = coReachable(r.index, accepting, byteEdges, callEdges, productive);
            BitSet reached = reachable(r.index, r.start, byteEdges, callEdges, productive, useful);
            // The start first, so that a rule's start state is its lowest id.
            globalId[r.index][r.start] = next++;
            for (int s = reached.nextSetBit(0); s >= 0; s = reached.nextSetBit(s + 1)) {
                if (s != r.start) {
                    globalId[r.index][s] = next++;
                }
            }
        }
        int numStates = next;
        boolean[] acc = new boolean[numStates];
        boolean[] inRoot = new boolean[numStates];
        int[] byteStart = new int[numStates + 1];
        int[] callStartOff = new int[numStates + 1];
        IntList lo = new IntList();
        IntList hi = new IntList();
        IntList to = new IntList();
        IntList callee = new IntList();
        IntList ret = new IntList();
        int[] order = new int[numStates * 2]; // global id -> rule, local state
        for (Rule r : rules) {
            for (int s = 0; s < r.numStates; s++) {
                int g = globalId[r.index][s];
                if (g >= 0) {
                    order[2 * g] = r.index;
                    order[2 * g + 1] = s;
                }
            }
        }
        for (int g = 0; g < numStates; g++) {
            int ri = order[2 * g];
            int s = order[2 * g + 1];
            acc[g] = accepting[ri][s];
            inRoot[g] = ri == root.index;
            byteStart[g] = lo.size;
            int[] be = byteEdges[ri][s];
            for (int k = 0; k < be.length; k += 3) {
                int t = globalId[ri][be[k + 2]];
                if (t >= 0 && !hasByteEdge(lo, hi, to, byteStart[g], be[k], be[k + 1], t)) {
                    lo.add(be[k]);
                    hi.add(be[k + 1]);
                    to.add(t);
                }
            }
            callStartOff[g] = callee.size;
            int[] ce = callEdges[ri][s];
            for (int k = 0; k < ce.length; k += 2) {
                int t = globalId[ri][ce[k + 1]];
                if (ce[k] == root.index) {
                    throw new IllegalArgumentException("rule " + rules.get(ri).name + " calls the root rule");
                }
                if (t >= 0 && productive[ce[k]]) {
                    callee.add(globalId[ce[k]][rules.get(ce[k]).start]);
                    ret.add(t);
                }
            }
        }
        byteStart[numStates] = lo.size;
        callStartOff[numStates] = callee.size;
        Grammar g = new Grammar(globalId[root.index][root.start], numRules, acc, byteStart, lo.toArray(), hi.toArray(),
                to.toArray(), callStartOff, callee.toArray(), ret.toArray(), inRoot);
        g.checkNoLeftRecursion();
        return g;
    }

    private static boolean hasByteEdge(IntList lo, IntList hi, IntList to, int from, int l, int h, int t) {
        for (int e = from; e < lo.size; e++) {
            if (lo.get(e) == l && hi.get(e) == h && to.get(e) == t) {
                return true;
            }
        }
        return false;
    }

    private static void removeEpsilons(Rule r, boolean[][] accepting, int[][][] byteEdges, int[][][] callEdges) {
        int n = r.numStates;
        IntList[] eps = new IntList[n];
        IntList[] bytes = new IntList[n];
        IntList[] calls = new IntList[n];
        for (int s = 0; s < n; s++) {
            eps[s] = new IntList();
            bytes[s] = new IntList();
            calls[s] = new IntList();
        }
        for (int e = 0; e < r.numEdges; e++) {
            int kind = r.edges[4 * e];
            int from = r.edges[4 * e + 1];
            int a = r.edges[4 * e + 2];
            int b = r.edges[4 * e + 3];
            switch (kind) {
                case Rule.EPSILON -> eps[from].add(b);
                case Rule.BYTES -> {
                    bytes[from].add(a >>> 8);
                    bytes[from].add(a & 0xFF);
                    bytes[from].add(b);
                }
                default -> {
                    calls[from].add(a);
                    calls[from].add(b);
                }
            }
        }
        accepting[r.index] = new boolean[n];
        byteEdges[r.index] = new int[n][];
        callEdges[r.index] = new int[n][];
        BitSet closure = new BitSet(n);
        ArrayDeque<Integer> queue = new ArrayDeque<>();
        for (int s = 0; s < n; s++) {
            closure.clear();
            closure.set(s);
            queue.add(s);
            while (!queue.isEmpty()) {
                int c = queue.poll();
                for (int k = 0; k < eps[c].size; k++) {
                    int t = eps[c].get(k);
                    if (!closure.get(t)) {
                        closure.set(t);
                        queue.add(t);
                    }
                }
            }
            IntList be = new IntList();
            IntList ce = new IntList();
            for (int c = closure.nextSetBit(0); c >= 0; c = closure.nextSetBit(c + 1)) {
                be.addAll(bytes[c]);
                ce.addAll(calls[c]);
            }
            accepting[r.index][s] = closure.get(r.end);
            byteEdges[r.index][s] = be.toArray();
            callEdges[r.index][s] = ce.toArray();
        }
    }

    /** Rules whose start can reach an accepting state through bytes and calls of productive rules (a fixed point). */
    private boolean[] productiveRules(boolean[][] accepting, int[][][] byteEdges, int[][][] callEdges) {
        boolean[] productive = new boolean[rules.size()];
        boolean changed = true;
        while (changed) {
            changed = false;
            for (Rule r : rules) {
                if (!productive[r.index]
                        && coReachable(r.index, accepting, byteEdges, callEdges, productive).get(r.start)) {
                    productive[r.index] = true;
                    changed = true;
                }
            }
        }
        return productive;
    }

    /** States of a rule that can reach one of its accepting states. */
    private BitSet coReachable(int ri, boolean[][] accepting, int[][][] byteEdges, int[][][] callEdges,
            boolean[] productive) {
        int n = accepting[ri].length;
        BitSet good = new BitSet(n);
        for (int s = 0; s < n; s++) {
            if (accepting[ri][s]) {
                good.set(s);
            }
        }
        boolean changed = true;
        while (changed) {
            changed = false;
            for (int s = 0; s < n; s++) {
                if (good.get(s)) {
                    continue;
                }
                int[] be = byteEdges[ri][s];
                boolean ok = false;
                for (int k = 0; k < be.length && !ok; k += 3) {
                    ok = good.get(be[k + 2]);
                }
                int[] ce = callEdges[ri][s];
                for (int k = 0; k < ce.length && !ok; k += 2) {
                    ok = productive[ce[k]] && good.get(ce[k + 1]);
                }
                if (ok) {
                    good.set(s);
                    changed = true;
                }
            }
        }
        return good;
    }

    private static BitSet reachable(int ri, int start, int[][][] byteEdges, int[][][] callEdges, boolean[] productive,
            BitSet useful) {
        BitSet seen = new BitSet();
        ArrayDeque<Integer> queue = new ArrayDeque<>();
        seen.set(start);
        queue.add(start);
        while (!queue.isEmpty()) {
            int s = queue.poll();
            int[] be = byteEdges[ri][s];
            for (int k = 0; k < be.length; k += 3) {
                int t = be[k + 2];
                if (useful.get(t) && !seen.get(t)) {
                    seen.set(t);
                    queue.add(t);
                }
            }
            int[] ce = callEdges[ri][s];
            for (int k = 0; k < ce.length; k += 2) {
                int t = ce[k + 1];
                if (productive[ce[k]] && useful.get(t) && !seen.get(t)) {
                    seen.set(t);
                    queue.add(t);
                }
            }
        }
        return seen;
    }

    /** A growable int array. */
    static final class IntList {
        int[] a = new int[8];
        int size;

        void add(int v) {
            if (size == a.length) {
                a = Arrays.copyOf(a, size * 2);
            }
            a[size++] = v;
        }

        void addAll(IntList o) {
            for (int i = 0; i < o.size; i++) {
                add(o.a[i]);
            }
        }

        int get(int i) {
            return a[i];
        }

        int[] toArray() {
            return Arrays.copyOf(a, size);
        }
    }
}
