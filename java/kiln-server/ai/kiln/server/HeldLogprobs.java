package ai.kiln.server;

import ai.kiln.api.TokenLogprobs;
import java.util.ArrayList;
import java.util.List;

/**
 * Per choice of a stream, the log-probabilities of tokens whose text has not been sent yet. A
 * token that ends inside a UTF-8 character, or whose text is held back for a stop string that
 * may follow, gets no chunk of its own (an empty chunk mid-stream carries nothing to show); its log-probabilities go out with the next chunk of its choice, as
 * OpenAI lists several tokens in one chunk when they make up its text together. Used from one
 * thread at a time: a call's outputs reach its listener in order, under the call's lock.
 */
final class HeldLogprobs {

    private final List<List<TokenLogprobs>> held;

    HeldLogprobs(int choices) {
        held = new ArrayList<>(choices);
        for (int i = 0; i < choices; i++) {
            held.add(new ArrayList<>());
        }
    }

    /** Keeps {@code logprobs} (null when none were asked for) until the choice's next chunk. */
    void hold(int choice, List<TokenLogprobs> logprobs) {
        if (logprobs != null) {
            held.get(choice).addAll(logprobs);
        }
    }

    /** What was held for the choice followed by {@code logprobs}, for the chunk about to be sent; the choice then holds none. */
    List<TokenLogprobs> release(int choice, List<TokenLogprobs> logprobs) {
        List<TokenLogprobs> earlier = held.get(choice);
        if (earlier.isEmpty()) {
            return logprobs;
        }
        List<TokenLogprobs> all = new ArrayList<>(earlier);
        if (logprobs != null) {
            all.addAll(logprobs);
        }
        earlier.clear();
        return all;
    }
}
