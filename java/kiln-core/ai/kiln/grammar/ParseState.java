package ai.kiln.grammar;

/**
 * Where a parse is: its live stacks (each top rests on a state that consumes bytes) and whether
 * the input so far is a complete sentence of the grammar. No live stack and not complete: the
 * input left the grammar (dead); no live stack and complete: nothing may follow (terminated).
 *
 * @param live     [stacks] distinct stacks, in the order they were reached; not to be changed
 * @param complete whether the root rule can end here
 */
public record ParseState(StackNode[] live, boolean complete) {

    public boolean isDead() {
        return live.length == 0 && !complete;
    }

    /** Complete with nothing that may follow. */
    public boolean isTerminated() {
        return live.length == 0 && complete;
    }
}
