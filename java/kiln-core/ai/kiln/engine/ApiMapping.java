package ai.kiln.engine;

import ai.kiln.api.FinishReason;
import ai.kiln.api.Quantization;
import ai.kiln.api.SamplingParams;
import ai.kiln.api.StructuredOutput;
import ai.kiln.api.TokenLogprobs;
import ai.kiln.grammar.Grammar;
import ai.kiln.grammar.GrammarException;
import ai.kiln.grammar.Grammars;
import ai.kiln.model.WeightQuantization;
import ai.kiln.sampling.LogitBias;
import ai.kiln.sampling.SampledLogprobs;
import ai.kiln.sampling.SamplerSettings;
import ai.kiln.scheduler.FinishCause;
import java.util.ArrayList;
import java.util.List;

/**
 * Between the API's types and the engine's own: the API package imports nothing of the engine,
 * and the engine's lower layers import nothing of the API, so this is where one becomes the other.
 */
public final class ApiMapping {

    private ApiMapping() {
    }

    /** What the sampler uses of a request's parameters. */
    public static SamplerSettings samplerSettings(SamplingParams p) {
        return new SamplerSettings(p.isGreedy() ? 0 : p.temperature(), p.topP(), p.topK(), p.minP(),
                p.repetitionPenalty(), p.presencePenalty(), p.frequencyPenalty(), p.minTokens(),
                p.logprobs() == null ? -1 : p.logprobs(), p.ignoreEos());
    }

    /** A request's logit_bias as the sampler adds it. */
    public static LogitBias logitBias(SamplingParams p) {
        if (p.logitBias().isEmpty()) {
            return LogitBias.NONE;
        }
        int[] ids = new int[p.logitBias().size()];
        float[] biases = new float[ids.length];
        int i = 0;
        for (var e : p.logitBias().entrySet()) { // sorted by id
            ids[i] = e.getKey();
            biases[i++] = e.getValue().floatValue();
        }
        return new LogitBias(ids, biases);
    }

    /**
     * The grammar of a structured output (independent of any vocabulary); throws a {@link
     * GrammarException} naming what is wrong with the schema, pattern or choices.
     */
    public static Grammar grammar(StructuredOutput constraint) {
        Grammar grammar = switch (constraint.kind()) {
            case JSON_OBJECT -> Grammars.jsonObject();
            case JSON_SCHEMA -> Grammars.jsonSchema(constraint.text());
            case DELIMITED_JSON_SCHEMA -> Grammars.delimitedJsonSchema(constraint.choices().get(0), constraint.text(),
                    constraint.choices().get(1));
            case REGEX -> Grammars.regex(constraint.text());
            case CHOICE -> Grammars.choice(constraint.choices());
        };
        if (grammar.initialState().isTerminated()) {
            throw new GrammarException("the structured output accepts only the empty text");
        }
        return grammar;
    }

    public static WeightQuantization weightQuantization(Quantization quantization) {
        return switch (quantization) {
            case NONE -> WeightQuantization.NONE;
            case INT8 -> WeightQuantization.INT8;
            case FP8 -> WeightQuantization.FP8;
        };
    }

    public static FinishReason finishReason(FinishCause cause) {
        return switch (cause) {
            case STOP -> FinishReason.STOP;
            case LENGTH -> FinishReason.LENGTH;
            case ABORT -> FinishReason.ABORT;
        };
    }

    /** The API's view of a sampled token's log-probabilities; null stays null. */
    public static TokenLogprobs tokenLogprobs(SampledLogprobs sampled) {
        if (sampled == null) {
            return null;
        }
        List<TokenLogprobs.Candidate> top = new ArrayList<>(sampled.topIds().length);
        for (int j = 0; j < sampled.topIds().length; j++) {
            top.add(new TokenLogprobs.Candidate(sampled.topIds()[j], sampled.topLogprobs()[j]));
        }
        return new TokenLogprobs(sampled.tokenId(), sampled.logprob(), sampled.rank(), top);
    }
}
