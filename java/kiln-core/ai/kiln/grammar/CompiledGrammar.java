package ai.kiln.grammar;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.BitSet;
import java.util.List;
import java.util.concurrent.atomic.AtomicReferenceArray;
import java.util.stream.IntStream;

/**
 * A grammar bound to a vocabulary, with a token mask for every state a stack's top can rest on
 * (xgrammar's adaptive token mask cache). For a top state s the vocabulary is walked once, in trie
 * order, from s alone: a token s's rule takes whole (or takes and then ends with) is accepted
 * whatever lies below on the stack; one that no path takes is rejected; the rest, whose bytes
 * run past the end of s's rule, depend on the callers and are checked at run time against the
 * real stacks ({@link #fillMask}). States of the root rule have nothing below them, so their
 * masks are exact. Rules end on a closing byte wherever the compilers can arrange it (strings on
 * '"', objects on '}', arrays on ']'), so that few tokens are left to check at run time.
 *
 * <p>Immutable once built; one instance serves every sequence of every request with the same grammar.
 */
public final class CompiledGrammar {

    private final Grammar grammar;
    private final TokenVocabulary vocab;
    private final StateMask[] masks; // [numStates] null for states that consume no bytes
    private final int[] allTokenWords; // [maskWords] every id with bytes
    private final long maskBytes;
    // [numStates][256] transitions of one-frame walk stacks, filled while the masks are computed
    // (a row per state on its first use); dropped afterwards.
    private AtomicReferenceArray<Transition[]> singleFrame;

    /**
     * A top state's tokens: those accepted (or, with {@code complement}, all tokens with bytes but
     * these), and those to check at run time.
     *
     * @param ids        [count] sorted ids
     * @param complement whether ids lists the tokens not accepted (chosen when shorter)
     * @param uncertain  [count] ids to check against the real stacks
     */
    record StateMask(int[] ids, boolean complement, int[] uncertain) {
    }

    public CompiledGrammar(Grammar grammar, TokenVocabulary vocab) {
        this.grammar = grammar;
        this.vocab = vocab;
        this.allTokenWords = new int[vocab.maskWords()];
        for (int i = 0; i < vocab.numSorted(); i++) {
            int id = vocab.sortedId(i);
            allTokenWords[id >>> 5] |= 1 << (id & 31);
        }
        masks = new StateMask[grammar.numStates()];
        singleFrame = new AtomicReferenceArray<>(grammar.numStates());
        // NOTE: the states' walks are independent (the grammar and vocabulary are read only).
        IntStream.range(0, grammar.numStates()).parallel().filter(grammar::consumesBytes)
                .forEach(s -> masks[s] = computeMask(s));
        singleFrame = null; // needed only while the masks are computed
        long ints = 0;
        for (StateMask m : masks) {
            ints += m == null ? 0 : m.ids().length + m.uncertain().length;
        }
        maskBytes = 4 * ints;
    }

    public Grammar grammar() {
        return grammar;
    }

    public TokenVocabulary vocabulary() {
        return vocab;
    }

    /** A new matcher at the grammar's start. */
    public GrammarMatcher newMatcher(boolean allowEnd) {
        return new GrammarMatcher(this, allowEnd);
    }

    /** Bytes the precomputed masks hold (their id lists), to bound a cache of compiled grammars by. */
    public long maskBytes() {
        return maskBytes;
    }

    /** How many ids the precomputed masks leave to check at run time, summed over the states (a measure of cost). */
    public long numUncertain() {
        long n = 0;
        for (StateMask m : masks) {
            n += m == null ? 0 : m.uncertain().length;
        }
        return n;
    }

    private StateMask computeMask(int state) {
        int n = vocab.numSorted();
        int maxLength = vocab.maxLength();
        StackNode[][] levels = new StackNode[maxLength + 1][]; // [depth] live stacks after depth bytes of the prefix
        boolean[] escapedAt = new boolean[maxLength + 1];   // [depth] the rule may end right after depth bytes
        boolean[] escapedUpTo = new boolean[maxLength + 1]; // [depth] ... after at most depth bytes
        Grammar.Expansion first = new Grammar.Expansion();
        // A root-rule state has nothing below it: ending the rule completes the parse.
        grammar.expand(new StackNode(state, grammar.inRoot(state) ? null : StackNode.BOTTOM), first, 0);
        levels[0] = first.live.toArray(new StackNode[0]);
        escapedAt[0] = first.escaped || first.complete;
        escapedUpTo[0] = first.escaped;
        GrammarBuilder.IntList accepted = new GrammarBuilder.IntList();
        GrammarBuilder.IntList uncertain = new GrammarBuilder.IntList();
        int valid = 0; // levels[0 ..= valid] belong to the current token's prefix
        for (int i = 0; i < n; i++) {
            int id = vocab.sortedId(i);
            byte[] t = vocab.bytes(id);
            int d = Math.min(valid, vocab.commonPrefix(i));
            while (d < t.length && levels[d].length > 0) {
                Transition next = advance(levels[d], t[d] & 0xFF);
                levels[d + 1] = next.live();
                escapedAt[d + 1] = next.escaped() || next.complete();
                escapedUpTo[d + 1] = escapedUpTo[d] || next.escaped();
                d++;
            }
            valid = d;
            if (d == t.length) {
                if (levels[d].length > 0 || escapedAt[d]) {
                    accepted.add(id);
                } else if (escapedUpTo[d - 1]) {
                    uncertain.add(id);
                }
                continue;
            }
            // Nothing lives after d bytes: every later token with this d-byte prefix shares the verdict.
            int end = prefixEnd(i, d);
            if (escapedUpTo[d]) {
                for (int j = i; j < end; j++) {
                    uncertain.add(vocab.sortedId(j));
                }
            }
            i = end - 1;
        }
        // NOTE: the walk meets ids in token order; a bit set gives them back in id order without a sort.
        BitSet in = new BitSet(vocab.size());
        for (int k = 0; k < accepted.size; k++) {
            in.set(accepted.get(k));
        }
        BitSet unsure = new BitSet(vocab.size());
        for (int k = 0; k < uncertain.size; k++) {
            unsure.set(uncertain.get(k));
        }
        int[] unc = unsure.stream().toArray();
        if (accepted.size * 2 > n) {
            BitSet out = new BitSet(vocab.size());
            for (int w = 0; w < allTokenWords.length; w++) {
                for (int bits = allTokenWords[w]; bits != 0; bits &= bits - 1) {
                    out.set(w * 32 + Integer.numberOfTrailingZeros(bits));
                }
            }
            out.andNot(in);
            return new StateMask(out.stream().toArray(), true, unc);
        }
        return new StateMask(in.stream().toArray(), false, unc);
    }

    /**
     * Where a walk's stacks go on one byte.
     *
     * @param live     [stacks] distinct
     * @param escaped  whether a stack returned past the walk's bottom (the start state's rule ended)
     * @param complete whether the root rule ended
     */
    record Transition(StackNode[] live, boolean escaped, boolean complete) {
    }

    /**
     * The stacks of a walk after one more byte. A stack of one frame above the walk's bottom (the
     * common case: the walk has not entered a call) goes where its state alone says, so its
     * transitions are kept, shared by the walks of all states.
     */
    private Transition advance(StackNode[] level, int b) {
        if (level.length == 1 && isSingleFrame(level[0])) {
            int state = level[0].state;
            Transition[] row = singleFrame.get(state);
            if (row == null) {
                singleFrame.compareAndSet(state, null, new Transition[256]);
                row = singleFrame.get(state);
            }
            // NOTE: two walks may compute the same entry at once; both results are equal and immutable.
            Transition known = row[b];
            if (known == null) {
                known = stepAll(level, b);
                row[b] = known;
            }
            return known;
        }
        return stepAll(level, b);
    }

    private static boolean isSingleFrame(StackNode top) {
        return top.parent == null || top.parent == StackNode.BOTTOM;
    }

    private Transition stepAll(StackNode[] level, int b) {
        Grammar.Expansion e = new Grammar.Expansion();
        for (StackNode top : level) {
            grammar.step(top, b, e);
        }
        return new Transition(e.live.toArray(new StackNode[0]), e.escaped, e.complete);
    }

    /** The first sorted index after i whose token does not start with token i's first d bytes. */
    private int prefixEnd(int i, int d) {
        byte[] prefix = vocab.bytes(vocab.sortedId(i));
        int lo = i + 1;
        int hi = vocab.numSorted();
        while (lo < hi) {
            int mid = (lo + hi) >>> 1;
            byte[] t = vocab.bytes(vocab.sortedId(mid));
            if (t.length >= d && Arrays.equals(t, 0, d, prefix, 0, d)) {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        return lo;
    }

    /**
     * Writes the mask of the tokens that may follow {@code state} into words [offset, offset +
     * maskWords): bit id % 32 of word id / 32 set for each allowed id; the end-of-sequence ids
     * where the parse is complete and {@code allowEnd}.
     */
    void fillMask(ParseState state, int[] words, int offset, boolean allowEnd) {
        int numWords = vocab.maskWords();
        Arrays.fill(words, offset, offset + numWords, 0);
        List<int[]> toCheck = new ArrayList<>();
        BitSet seenStates = new BitSet();
        for (StackNode top : state.live()) {
            if (seenStates.get(top.state)) {
                continue;
            }
            seenStates.set(top.state);
            StateMask m = masks[top.state];
            if (m.complement()) {
                int[] ids = m.ids();
                int k = 0;
                for (int w = 0; w < numWords; w++) {
                    int bits = allTokenWords[w];
                    while (k < ids.length && (ids[k] >>> 5) == w) {
                        bits &= ~(1 << (ids[k] & 31));
                        k++;
                    }
                    words[offset + w] |= bits;
                }
            } else {
                for (int id : m.ids()) {
                    words[offset + (id >>> 5)] |= 1 << (id & 31);
                }
            }
            if (m.uncertain().length > 0) {
                toCheck.add(m.uncertain());
            }
        }
        for (int[] ids : toCheck) {
            for (int id : ids) {
                int w = offset + (id >>> 5);
                int bit = 1 << (id & 31);
                if ((words[w] & bit) == 0 && accepts(state, vocab.bytes(id))) {
                    words[w] |= bit;
                }
            }
        }
        if (allowEnd && state.complete()) {
            for (int id : vocab.endIds()) {
                words[offset + (id >>> 5)] |= 1 << (id & 31);
            }
        }
    }

    /** Whether the parse takes these bytes (it is then alive or complete). */
    boolean accepts(ParseState state, byte[] bytes) {
        ParseState s = state;
        for (int i = 0; i < bytes.length; i++) {
            if (s.live().length == 0) {
                return false; // complete (or dead) with bytes left
            }
            s = grammar.advance(s, bytes[i] & 0xFF);
        }
        return !s.isDead();
    }
}
