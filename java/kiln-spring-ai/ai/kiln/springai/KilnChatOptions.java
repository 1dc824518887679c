package ai.kiln.springai;

import ai.kiln.api.SamplingParams;
import ai.kiln.api.StructuredOutput;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import org.springframework.ai.chat.prompt.ChatOptions;
import org.springframework.ai.model.tool.DefaultToolCallingChatOptions;
import org.springframework.ai.model.tool.StructuredOutputChatOptions;
import org.springframework.ai.model.tool.ToolCallingChatOptions;
import org.springframework.ai.tool.ToolCallback;

/**
 * The options of one Kiln chat request: Spring AI's portable sampling options plus the Kiln
 * sampling fields that have no portable name (min_p, repetition penalty, seed). Every field is
 * optional; {@code null} means "not set here" so that options can be layered (the model's
 * defaults, then a request's). What an unset field finally means is said by
 * {@link #toSamplingParams()}.
 *
 * <p>Immutable, like every {@link ChatOptions} in Spring AI 2: change one with
 * {@link #mutate()}.
 *
 * <p>It is a {@link ToolCallingChatOptions}: the tool callbacks' definitions are shown to the
 * model and the calls it writes come back in the reply, for the {@code ChatClient}'s tool-calling
 * advisor to run. {@link #getToolChoice()} is Kiln's own, as OpenAI's {@code tool_choice}.
 *
 * <p>It is a {@link StructuredOutputChatOptions}: an output schema (which a {@code ChatClient}
 * sets from its {@code BeanOutputConverter} under {@code AdvisorParams.ENABLE_NATIVE_STRUCTURED_OUTPUT})
 * makes the engine's grammar constrain the reply to JSON the schema accepts.
 */
public final class KilnChatOptions implements ToolCallingChatOptions, StructuredOutputChatOptions {

    private final String model;
    private final Double temperature;
    private final Double topP;
    private final Integer topK;
    private final Double minP;
    private final Integer maxTokens;
    private final List<String> stopSequences;
    private final Double frequencyPenalty;
    private final Double presencePenalty;
    private final Double repetitionPenalty;
    private final Long seed;
    private final List<ToolCallback> toolCallbacks;
    private final Map<String, Object> toolContext;
    private final String outputSchema;
    private final String toolChoice;

    private KilnChatOptions(String model, Double temperature, Double topP, Integer topK, Double minP,
            Integer maxTokens, List<String> stopSequences, Double frequencyPenalty, Double presencePenalty,
            Double repetitionPenalty, Long seed, List<ToolCallback> toolCallbacks, Map<String, Object> toolContext,
            String outputSchema, String toolChoice) {
        if (toolChoice != null && !List.of("auto", "required", "none").contains(toolChoice)) {
            throw new IllegalArgumentException("toolChoice must be 'auto', 'required' or 'none', got '" + toolChoice
                    + "'");
        }
        this.model = model;
        this.temperature = temperature;
        this.topP = topP;
        this.topK = topK;
        this.minP = minP;
        this.maxTokens = maxTokens;
        this.stopSequences = stopSequences == null ? null : List.copyOf(stopSequences);
        this.frequencyPenalty = frequencyPenalty;
        this.presencePenalty = presencePenalty;
        this.repetitionPenalty = repetitionPenalty;
        this.seed = seed;
        this.toolCallbacks = toolCallbacks == null ? null : List.copyOf(toolCallbacks);
        this.toolContext = toolContext == null ? null : Map.copyOf(toolContext);
        this.outputSchema = outputSchema;
        this.toolChoice = toolChoice;
    }

    /** An empty builder: every field unset. */
    public static Builder builder() {
        return new Builder();
    }

    /**
     * The Kiln options holding what {@code options} sets: its portable fields, and the Kiln
     * fields and tool callbacks where it has them.
     */
    public static KilnChatOptions from(ChatOptions options) {
        return builder().override(options).build();
    }

    /** The served model's name; a request naming another model is refused. */
    @Override
    public String getModel() {
        return model;
    }

    /** 0: greedy; unset: 1. */
    @Override
    public Double getTemperature() {
        return temperature;
    }

    /** Nucleus sampling in (0, 1]; unset: 1 (off). */
    @Override
    public Double getTopP() {
        return topP;
    }

    /** Keep the k most likely tokens; unset, 0 or -1: off. */
    @Override
    public Integer getTopK() {
        return topK;
    }

    /** Drop tokens less likely than minP times the most likely one, in [0, 1]; unset: 0 (off). */
    public Double getMinP() {
        return minP;
    }

    /** The most tokens to generate; unset: up to the model's context length. */
    @Override
    public Integer getMaxTokens() {
        return maxTokens;
    }

    /** Strings that end the reply (cut from its text). */
    @Override
    public List<String> getStopSequences() {
        return stopSequences;
    }

    /** In [-2, 2]; unset: 0. */
    @Override
    public Double getFrequencyPenalty() {
        return frequencyPenalty;
    }

    /** In [-2, 2]; unset: 0. */
    @Override
    public Double getPresencePenalty() {
        return presencePenalty;
    }

    /** Greater than 1 discourages tokens already in the prompt or the reply; unset: 1 (off). */
    public Double getRepetitionPenalty() {
        return repetitionPenalty;
    }

    /** Seeds the request's random choices (same seed, same reply); unset: the engine picks one. */
    public Long getSeed() {
        return seed;
    }

    /** Tools; {@link KilnChatModel} refuses requests that bring any (not supported yet). */
    @Override
    public List<ToolCallback> getToolCallbacks() {
        return toolCallbacks;
    }

    @Override
    public Map<String, Object> getToolContext() {
        return toolContext;
    }

    /** The JSON schema the reply must match (as text); unset: free text. */
    @Override
    public String getOutputSchema() {
        return outputSchema;
    }

    /**
     * Whether the model may call the tools, as OpenAI's tool_choice: {@code "auto"} (the default
     * with tools: calls in the reply are read out), {@code "required"} (a grammar makes the reply
     * exactly one call of one of the tools, its arguments matching the tool's input schema) or
     * {@code "none"} (the model is shown no tools).
     */
    public String getToolChoice() {
        return toolChoice;
    }

    /** A builder holding these values. */
    @Override
    public Builder mutate() {
        return builder().override(this);
    }

    /**
     * The engine's sampling parameters for these options: one completion, and for each unset
     * field the engine's default, except max tokens, which is unset here means "up to the
     * context length" (as chat APIs have it) rather than the engine's 16.
     *
     * @throws IllegalArgumentException naming a field out of range
     */
    public SamplingParams toSamplingParams() {
        SamplingParams.Builder params = SamplingParams.builder().n(1).maxTokens(maxTokens);
        if (temperature != null) {
            params.temperature(temperature);
        }
        if (topP != null) {
            params.topP(topP);
        }
        if (topK != null) {
            params.topK(topK);
        }
        if (minP != null) {
            params.minP(minP);
        }
        if (stopSequences != null) {
            params.stop(stopSequences);
        }
        if (frequencyPenalty != null) {
            params.frequencyPenalty(frequencyPenalty);
        }
        if (presencePenalty != null) {
            params.presencePenalty(presencePenalty);
        }
        if (repetitionPenalty != null) {
            params.repetitionPenalty(repetitionPenalty);
        }
        params.seed(seed);
        if (outputSchema != null) {
            params.structuredOutput(StructuredOutput.jsonSchema(outputSchema));
        }
        return params.build();
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof KilnChatOptions that && Objects.equals(model, that.model)
                && Objects.equals(temperature, that.temperature) && Objects.equals(topP, that.topP)
                && Objects.equals(topK, that.topK) && Objects.equals(minP, that.minP)
                && Objects.equals(maxTokens, that.maxTokens) && Objects.equals(stopSequences, that.stopSequences)
                && Objects.equals(frequencyPenalty, that.frequencyPenalty)
                && Objects.equals(presencePenalty, that.presencePenalty)
                && Objects.equals(repetitionPenalty, that.repetitionPenalty) && Objects.equals(seed, that.seed)
                && Objects.equals(toolCallbacks, that.toolCallbacks) && Objects.equals(toolContext, that.toolContext)
                && Objects.equals(outputSchema, that.outputSchema) && Objects.equals(toolChoice, that.toolChoice);
    }

    @Override
    public int hashCode() {
        return Objects.hash(model, temperature, topP, topK, minP, maxTokens, stopSequences, frequencyPenalty,
                presencePenalty, repetitionPenalty, seed, toolCallbacks, toolContext, outputSchema, toolChoice);
    }

    @Override
    public String toString() {
        return "KilnChatOptions[model=" + model + ", temperature=" + temperature + ", topP=" + topP + ", topK=" + topK
                + ", minP=" + minP + ", maxTokens=" + maxTokens + ", stopSequences=" + stopSequences
                + ", frequencyPenalty=" + frequencyPenalty + ", presencePenalty=" + presencePenalty
                + ", repetitionPenalty=" + repetitionPenalty + ", seed=" + seed
                + ", toolCallbacks=" + (toolCallbacks == null ? null : toolCallbacks.size())
                + ", outputSchema=" + outputSchema + ", toolChoice=" + toolChoice + "]";
    }

    /**
     * Builds {@link KilnChatOptions}. It is a Spring AI options builder, so a {@code ChatClient}
     * can {@link #combineWith combine} it with the model's defaults.
     */
    public static final class Builder extends DefaultToolCallingChatOptions.Builder<Builder>
            implements StructuredOutputChatOptions.Builder<Builder> {

        private Double minP;
        private Double repetitionPenalty;
        private Long seed;
        private String outputSchema;
        private String toolChoice;

        private Builder() {
        }

        /** "auto", "required" or "none"; see {@link KilnChatOptions#getToolChoice()}. */
        public Builder toolChoice(String toolChoice) {
            this.toolChoice = toolChoice;
            return this;
        }

        /** The JSON schema the reply must match, as JSON text; null: free text. */
        @Override
        public Builder outputSchema(String outputSchema) {
            this.outputSchema = outputSchema;
            return this;
        }

        public Builder minP(Double minP) {
            this.minP = minP;
            return this;
        }

        public Builder repetitionPenalty(Double repetitionPenalty) {
            this.repetitionPenalty = repetitionPenalty;
            return this;
        }

        public Builder seed(Long seed) {
            this.seed = seed;
            return this;
        }

        /** {@code stopSequences(List.of(stop))}. */
        public Builder stopSequences(String... stop) {
            return stopSequences(List.of(stop));
        }

        /**
         * Takes every field {@code options} sets, keeping this builder's value where it sets
         * none. Unlike {@link #combineWith}, stop sequences set there replace these rather than
         * adding to them: this is how a request's options override the model's defaults.
         */
        public Builder override(ChatOptions options) {
            if (options == null) {
                return this;
            }
            if (options.getModel() != null) {
                model(options.getModel());
            }
            if (options.getTemperature() != null) {
                temperature(options.getTemperature());
            }
            if (options.getTopP() != null) {
                topP(options.getTopP());
            }
            if (options.getTopK() != null) {
                topK(options.getTopK());
            }
            if (options.getMaxTokens() != null) {
                maxTokens(options.getMaxTokens());
            }
            if (options.getStopSequences() != null) {
                stopSequences(options.getStopSequences());
            }
            if (options.getFrequencyPenalty() != null) {
                frequencyPenalty(options.getFrequencyPenalty());
            }
            if (options.getPresencePenalty() != null) {
                presencePenalty(options.getPresencePenalty());
            }
            if (options instanceof KilnChatOptions kiln) {
                if (kiln.minP != null) {
                    minP = kiln.minP;
                }
                if (kiln.repetitionPenalty != null) {
                    repetitionPenalty = kiln.repetitionPenalty;
                }
                if (kiln.seed != null) {
                    seed = kiln.seed;
                }
                if (kiln.toolChoice != null) {
                    toolChoice = kiln.toolChoice;
                }
            }
            if (options instanceof StructuredOutputChatOptions structured && structured.getOutputSchema() != null) {
                outputSchema = structured.getOutputSchema();
            }
            if (options instanceof ToolCallingChatOptions tools) {
                if (tools.getToolCallbacks() != null) {
                    toolCallbacks(tools.getToolCallbacks());
                }
                if (tools.getToolContext() != null) {
                    toolContext(tools.getToolContext());
                }
            }
            return this;
        }

        @Override
        public Builder combineWith(ChatOptions.Builder<?> other) {
            super.combineWith(other);
            if (other instanceof Builder kiln) {
                if (kiln.minP != null) {
                    minP = kiln.minP;
                }
                if (kiln.repetitionPenalty != null) {
                    repetitionPenalty = kiln.repetitionPenalty;
                }
                if (kiln.seed != null) {
                    seed = kiln.seed;
                }
                if (kiln.outputSchema != null) {
                    outputSchema = kiln.outputSchema;
                }
                if (kiln.toolChoice != null) {
                    toolChoice = kiln.toolChoice;
                }
            }
            return this;
        }

        @Override
        public KilnChatOptions build() {
            // NOTE: the portable fields are protected in Spring AI's builder, so only this
            // subclass's own body can read them; hence the constructor's long parameter list.
            return new KilnChatOptions(model, temperature, topP, topK, minP, maxTokens, stopSequences,
                    frequencyPenalty, presencePenalty, repetitionPenalty, seed, toolCallbacks, toolContext, outputSchema,
                    toolChoice);
        }
    }
}
