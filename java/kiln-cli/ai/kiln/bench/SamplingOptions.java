package ai.kiln.bench;

import ai.kiln.api.SamplingParams;
import com.fasterxml.jackson.databind.node.ObjectNode;
import picocli.CommandLine.Option;

/**
 * The sampling flags {@code kiln bench} and {@code kiln bench serve} share. Temperature 0 (greedy)
 * unless told; top-p, top-k and min-p stay at the engine's (or the server's) defaults unless given.
 * {@code --sampling-seed S} gives request {@code i} the seed {@code S + i}, so that a run repeats;
 * without it the engine picks the seeds.
 */
public final class SamplingOptions {

    @Option(names = "--temperature", paramLabel = "T", defaultValue = "0",
            description = "0: greedy (default: ${DEFAULT-VALUE})")
    double temperature;

    @Option(names = "--top-p", paramLabel = "P", description = "nucleus sampling mass (default: off, 1)")
    Double topP;

    @Option(names = "--top-k", paramLabel = "K", description = "keep the k most likely tokens (default: off)")
    Integer topK;

    @Option(names = "--min-p", paramLabel = "P",
            description = "drop tokens below min-p times the most likely one's probability (default: off)")
    Double minP;

    @Option(names = "--sampling-seed", paramLabel = "S",
            description = "request i gets seed S + i (default: none, the engine picks)")
    Long samplingSeed;

    public SamplingOptions() {
    }

    /** Options as the flags would set them; null: the flag not given. */
    public SamplingOptions(double temperature, Double topP, Integer topK, Double minP, Long samplingSeed) {
        this.temperature = temperature;
        this.topP = topP;
        this.topK = topK;
        this.minP = minP;
        this.samplingSeed = samplingSeed;
    }

    /** Greedy, as {@code kiln bench} ran before these flags existed. */
    public static SamplingOptions greedy() {
        return new SamplingOptions(0, null, null, null, null);
    }

    /** The seed of request {@code index}, or null when the engine should pick one. */
    public Long seedFor(int index) {
        return samplingSeed == null ? null : samplingSeed + index;
    }

    /** These options on top of {@code builder}, for request {@code index}. */
    public SamplingParams.Builder applyTo(SamplingParams.Builder builder, int index) {
        builder.temperature(temperature).seed(seedFor(index));
        if (topP != null) {
            builder.topP(topP);
        }
        if (topK != null) {
            builder.topK(topK);
        }
        if (minP != null) {
            builder.minP(minP);
        }
        return builder;
    }

    /** Rejects values the engine would reject, naming the field, before any request is sent. */
    public void validate() {
        applyTo(SamplingParams.builder(), 0).build();
    }

    /** The request fields of an OpenAI completions body; fields whose flag was not given are left to the server. */
    public void putRequestFields(ObjectNode body, int index) {
        body.put("temperature", temperature);
        if (topP != null) {
            body.put("top_p", topP);
        }
        if (topK != null) {
            body.put("top_k", topK);
        }
        if (minP != null) {
            body.put("min_p", minP);
        }
        Long seed = seedFor(index);
        if (seed != null) {
            body.put("seed", seed);
        }
    }

    /** The sampling in words, for a heading: "greedy", or the temperature and the flags given. */
    public String describe() {
        if (temperature == 0) {
            return "greedy";
        }
        StringBuilder words = new StringBuilder("temperature ").append(temperature);
        if (topP != null) {
            words.append(", top-p ").append(topP);
        }
        if (topK != null) {
            words.append(", top-k ").append(topK);
        }
        if (minP != null) {
            words.append(", min-p ").append(minP);
        }
        if (samplingSeed != null) {
            words.append(", sampling seed ").append(samplingSeed);
        }
        return words.toString();
    }

    /** Records the values in a result line: what the engine used where a flag was not given. */
    public void recordEffective(ObjectNode line) {
        SamplingParams effective = applyTo(SamplingParams.builder(), 0).build();
        line.put("temperature", effective.temperature());
        line.put("top_p", effective.topP());
        line.put("top_k", effective.topK());
        line.put("min_p", effective.minP());
        putSeed(line);
    }

    /** Records the values in a result line as sent: null where the server's default applied. */
    public void recordSent(ObjectNode line) {
        line.put("temperature", temperature);
        line.put("top_p", topP);
        line.put("top_k", topK);
        line.put("min_p", minP);
        putSeed(line);
    }

    private void putSeed(ObjectNode line) {
        line.put("sampling_seed", samplingSeed);
    }
}
