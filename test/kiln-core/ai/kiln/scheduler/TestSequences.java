package ai.kiln.scheduler;

import ai.kiln.api.SamplingParams;
import ai.kiln.sampling.SequenceSampling;
import java.util.stream.IntStream;

/** Sequences for scheduler tests. */
final class TestSequences {

    private TestSequences() {
    }

    static Sequence seq(long id, int[] prompt, SamplingParams params, Sequence parent) {
        int[] stops = params.stopTokenIds().stream().mapToInt(Integer::intValue).toArray();
        int index = parent == null ? 0 : (int) (id - parent.id());
        return new Sequence(id, "r" + (parent == null ? id : parent.id()), index, prompt, params.maxTokens(), stops,
                new SequenceSampling(ai.kiln.engine.ApiMapping.samplerSettings(params), id, stops), parent, null);
    }

    static Sequence seq(long id, int[] prompt, int maxTokens) {
        return seq(id, prompt, SamplingParams.greedy(maxTokens), null);
    }

    static int[] range(int from, int to) {
        return IntStream.range(from, to).toArray();
    }
}
