package ai.kiln.springai;

import static org.assertj.core.api.Assertions.assertThat;

import ai.kiln.api.SamplingParams;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.springframework.ai.chat.prompt.ChatOptions;

class KilnChatOptionsTest {

    private static KilnChatOptions everyField() {
        return KilnChatOptions.builder().model("m").temperature(0.5).topP(0.9).topK(40).minP(0.05).maxTokens(64)
                .stopSequences("END", "STOP").frequencyPenalty(0.1).presencePenalty(0.2).repetitionPenalty(1.1)
                .seed(42L).build();
    }

    @Test
    void mutateRebuildsAnEqualOptions() {
        KilnChatOptions options = everyField();

        KilnChatOptions copy = options.mutate().build();

        assertThat(copy).isEqualTo(options).hasSameHashCodeAs(options).isNotSameAs(options);
        assertThat(copy.getMinP()).isEqualTo(0.05);
        assertThat(copy.getRepetitionPenalty()).isEqualTo(1.1);
        assertThat(copy.getSeed()).isEqualTo(42L);
        assertThat(options.mutate().seed(43L).build()).isNotEqualTo(options);
    }

    @Test
    void theStopListIsCopiedNotShared() {
        List<String> stops = new ArrayList<>(List.of("END"));
        KilnChatOptions options = KilnChatOptions.builder().stopSequences(stops).build();

        stops.add("MORE");

        assertThat(options.getStopSequences()).containsExactly("END");
    }

    @Test
    void overrideTakesWhatTheOtherSetsAndReplacesStops() {
        KilnChatOptions defaults = everyField();
        ChatOptions request = ChatOptions.builder().temperature(0.0).stopSequences(List.of("###")).build();

        KilnChatOptions merged = defaults.mutate().override(request).build();

        assertThat(merged.getTemperature()).isEqualTo(0.0);
        assertThat(merged.getStopSequences()).containsExactly("###");
        // Unset in the request: kept from the defaults.
        assertThat(merged.getTopP()).isEqualTo(0.9);
        assertThat(merged.getMaxTokens()).isEqualTo(64);
        assertThat(merged.getSeed()).isEqualTo(42L);
        assertThat(merged.getModel()).isEqualTo("m");
    }

    @Test
    void overrideTakesKilnFieldsFromKilnOptions() {
        KilnChatOptions merged = everyField().mutate()
                .override(KilnChatOptions.builder().seed(7L).minP(0.2).repetitionPenalty(1.3).build()).build();

        assertThat(merged.getSeed()).isEqualTo(7L);
        assertThat(merged.getMinP()).isEqualTo(0.2);
        assertThat(merged.getRepetitionPenalty()).isEqualTo(1.3);
        assertThat(merged.getTemperature()).isEqualTo(0.5);
    }

    @Test
    void combineWithFollowsSpringAiWhichAddsStopsTogether() {
        KilnChatOptions combined = everyField().mutate()
                .combineWith(KilnChatOptions.builder().seed(7L).maxTokens(3).stopSequences("###")).build();

        assertThat(combined.getSeed()).isEqualTo(7L);
        assertThat(combined.getMaxTokens()).isEqualTo(3);
        assertThat(combined.getStopSequences()).containsExactly("END", "STOP", "###");
        assertThat(combined.getTopK()).isEqualTo(40);
    }

    @Test
    void fromCopiesPortableOptions() {
        ChatOptions portable = ChatOptions.builder().model("x").temperature(0.3).topK(5).maxTokens(9).build();

        KilnChatOptions options = KilnChatOptions.from(portable);

        assertThat(options).isEqualTo(KilnChatOptions.builder().model("x").temperature(0.3).topK(5).maxTokens(9).build());
    }

    @Test
    void unsetOptionsGiveTheEngineDefaultsButNoTokenLimit() {
        SamplingParams params = KilnChatOptions.builder().build().toSamplingParams();

        assertThat(params.n()).isEqualTo(1);
        assertThat(params.maxTokens()).isNull();
        assertThat(params.temperature()).isEqualTo(1.0);
        assertThat(params.topP()).isEqualTo(1.0);
        assertThat(params.topK()).isZero();
        assertThat(params.seed()).isNull();
        assertThat(params.stop()).isEmpty();
    }

    @Test
    void everyOptionReachesTheSamplingParams() {
        SamplingParams params = everyField().toSamplingParams();

        assertThat(params).isEqualTo(SamplingParams.builder().temperature(0.5).topP(0.9).topK(40).minP(0.05)
                .maxTokens(64).stop("END", "STOP").frequencyPenalty(0.1).presencePenalty(0.2).repetitionPenalty(1.1)
                .seed(42L).build());
    }
}
