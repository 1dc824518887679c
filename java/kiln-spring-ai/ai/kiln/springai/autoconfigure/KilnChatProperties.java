package ai.kiln.springai.autoconfigure;

import ai.kiln.springai.KilnChatOptions;
import java.util.List;
import org.springframework.boot.context.properties.ConfigurationProperties;

/**
 * The Kiln chat model's default options, under {@code spring.ai.kiln.chat.*} (Spring AI 2.0's
 * layout: the options sit directly under the chat prefix): every request starts from them, and
 * a request's own options override them. The bindable form of {@link KilnChatOptions} (which is
 * immutable); every field is optional, and an unset one leaves the engine's default.
 */
@ConfigurationProperties(KilnChatProperties.PREFIX)
public class KilnChatProperties {

    public static final String PREFIX = "spring.ai.kiln.chat";

    /** Sampling temperature; 0: greedy. Unset: 1. */
    private Double temperature;

    /** Nucleus sampling, in (0, 1]. Unset: 1 (off). */
    private Double topP;

    /** Keep the k most likely tokens; 0 or -1: off. Unset: off. */
    private Integer topK;

    /** Drop tokens less likely than min-p times the most likely one, in [0, 1]. Unset: 0 (off). */
    private Double minP;

    /** The most tokens in a reply. Unset: up to the context length. */
    private Integer maxTokens;

    /** Strings that end a reply (cut from its text). */
    private List<String> stopSequences;

    /** Subtracted once per earlier occurrence in the reply, in [-2, 2]. Unset: 0. */
    private Double frequencyPenalty;

    /** Subtracted from every token already in the reply, in [-2, 2]. Unset: 0. */
    private Double presencePenalty;

    /** Greater than 1 discourages tokens already in the prompt or reply. Unset: 1 (off). */
    private Double repetitionPenalty;

    /** Seeds each request's random choices. Unset: the engine picks one per request. */
    private Long seed;

    /** These options as {@link KilnChatOptions}. */
    public KilnChatOptions toChatOptions() {
        return KilnChatOptions.builder().temperature(temperature).topP(topP).topK(topK).minP(minP)
                .maxTokens(maxTokens).stopSequences(stopSequences).frequencyPenalty(frequencyPenalty)
                .presencePenalty(presencePenalty).repetitionPenalty(repetitionPenalty).seed(seed).build();
    }

    public Double getTemperature() {
        return temperature;
    }

    public void setTemperature(Double temperature) {
        this.temperature = temperature;
    }

    public Double getTopP() {
        return topP;
    }

    public void setTopP(Double topP) {
        this.topP = topP;
    }

    public Integer getTopK() {
        return topK;
    }

    public void setTopK(Integer topK) {
        this.topK = topK;
    }

    public Double getMinP() {
        return minP;
    }

    public void setMinP(Double minP) {
        this.minP = minP;
    }

    public Integer getMaxTokens() {
        return maxTokens;
    }

    public void setMaxTokens(Integer maxTokens) {
        this.maxTokens = maxTokens;
    }

    public List<String> getStopSequences() {
        return stopSequences;
    }

    public void setStopSequences(List<String> stopSequences) {
        this.stopSequences = stopSequences;
    }

    public Double getFrequencyPenalty() {
        return frequencyPenalty;
    }

    public void setFrequencyPenalty(Double frequencyPenalty) {
        this.frequencyPenalty = frequencyPenalty;
    }

    public Double getPresencePenalty() {
        return presencePenalty;
    }

    public void setPresencePenalty(Double presencePenalty) {
        this.presencePenalty = presencePenalty;
    }

    public Double getRepetitionPenalty() {
        return repetitionPenalty;
    }

    public void setRepetitionPenalty(Double repetitionPenalty) {
        this.repetitionPenalty = repetitionPenalty;
    }

    public Long getSeed() {
        return seed;
    }

    public void setSeed(Long seed) {
        this.seed = seed;
    }
}
