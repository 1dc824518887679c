package ai.kiln.grammar;

/**
 * One stack of a parse, as an immutable linked list from its top: the top's state is where the
 * innermost rule is; each state below is where its caller goes on once the rule above returns.
 * Stacks share their lower parts, and equal stacks are equal values, so a set of them dedupes.
 */
public final class StackNode {

    /** The bottom of a walk relative to one state: returning to it escapes the state's rule. */
    static final StackNode BOTTOM = new StackNode(-1, null);

    final int state;
    final StackNode parent; // null: the root rule's frame
    private final int hash;
    final int depth;

    StackNode(int state, StackNode parent) {
        this.state = state;
        this.parent = parent;
        this.hash = 31 * (parent == null ? 17 : parent.hash) + state;
        this.depth = parent == null ? 1 : parent.depth + 1;
    }

    /** The top's state. */
    public int state() {
        return state;
    }

    @Override
    public int hashCode() {
        return hash;
    }

    @Override
    public boolean equals(Object o) {
        if (this == o) {
            return true;
        }
        if (!(o instanceof StackNode other)) {
            return false;
        }
        StackNode a = this;
        StackNode b = other;
        while (a != null && b != null) {
            if (a == b) {
                return true;
            }
            if (a.state != b.state || a.hash != b.hash || a.depth != b.depth) {
                return false;
            }
            a = a.parent;
            b = b.parent;
        }
        return a == b;
    }
}
