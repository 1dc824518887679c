package ai.kiln.springai.autoconfigure;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import ai.kiln.api.Engine;
import ai.kiln.api.EngineException;
import ai.kiln.api.EngineOptions;
import ai.kiln.api.GenerateRequest;
import ai.kiln.api.Quantization;
import ai.kiln.api.SamplingParams;
import ai.kiln.springai.KilnChatModel;
import ai.kiln.springai.KilnChatOptions;
import ai.kiln.springai.TestModels;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.springframework.ai.chat.model.ChatModel;
import org.springframework.boot.SpringBootConfiguration;
import org.springframework.boot.WebApplicationType;
import org.springframework.boot.autoconfigure.AutoConfigurations;
import org.springframework.boot.autoconfigure.EnableAutoConfiguration;
import org.springframework.boot.builder.SpringApplicationBuilder;
import org.springframework.boot.diagnostics.FailureAnalysis;
import org.springframework.boot.test.context.runner.ApplicationContextRunner;
import org.springframework.boot.test.system.CapturedOutput;
import org.springframework.boot.test.system.OutputCaptureExtension;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Configuration;

/**
 * When the auto-configuration turns on, what the properties make of the engine and the chat
 * model, what an application's own beans change, and how a missing model directory fails.
 */
@ExtendWith(OutputCaptureExtension.class)
class KilnChatAutoConfigurationTest {

    private final ApplicationContextRunner runner = new ApplicationContextRunner()
            .withConfiguration(AutoConfigurations.of(KilnChatAutoConfiguration.class))
            .withPropertyValues("spring.ai.kiln.device=cpu", "spring.ai.kiln.kv-cache-bytes=16MB");

    private static String modelProperty() {
        return "spring.ai.kiln.model=" + TestModels.llama3();
    }

    @Test
    void withTheModelPropertyTheContextHasAnEngineAndAChatModelOnIt() {
        runner.withPropertyValues(modelProperty()).run(context -> {
            assertThat(context).hasSingleBean(Engine.class).hasSingleBean(ChatModel.class);
            KilnChatModel chatModel = context.getBean(KilnChatModel.class);
            assertThat(chatModel.engine()).isSameAs(context.getBean(Engine.class));
            assertThat(chatModel.modelName()).isEqualTo("llama3-gqa");
        });
    }

    @Test
    void withoutTheModelPropertyStartupFailsSayingWhatToSet() {
        runner.run(context -> {
            assertThat(context).hasFailed();
            Throwable failure = context.getStartupFailure();
            assertThat(failure).rootCause().isInstanceOf(KilnModelNotConfiguredException.class)
                    .hasMessageStartingWith("spring.ai.kiln.model is not set");
            FailureAnalysis analysis = new KilnModelNotConfiguredFailureAnalyzer().analyze(failure);
            assertThat(analysis.getDescription()).contains("spring.ai.kiln.model");
            assertThat(analysis.getAction()).contains("Set spring.ai.kiln.model").contains("spring.ai.model.chat");
        });
    }

    @SpringBootConfiguration
    @EnableAutoConfiguration
    static class EmptyApplication {
    }

    @Test
    void aFailedStartupReportsTheFailureAnalysis(CapturedOutput output) {
        // A real application, so that the analyzer is found through META-INF/spring.factories.
        assertThatThrownBy(() -> new SpringApplicationBuilder(EmptyApplication.class).web(WebApplicationType.NONE)
                .properties("spring.ai.kiln.device=cpu").run().close())
                .hasRootCauseInstanceOf(KilnModelNotConfiguredException.class);

        assertThat(output).contains("APPLICATION FAILED TO START")
                .contains("The Kiln chat model is auto-configured, but spring.ai.kiln.model does not name")
                .contains("Set spring.ai.kiln.model to a Hugging Face model directory");
    }

    @Test
    void anotherChatProviderLeavesKilnOffWithoutNeedingTheModel() {
        for (String provider : List.of("openai", "none")) {
            runner.withPropertyValues("spring.ai.model.chat=" + provider).run(context -> {
                assertThat(context).hasNotFailed().doesNotHaveBean(Engine.class).doesNotHaveBean(KilnChatModel.class);
            });
        }
        runner.withPropertyValues("spring.ai.model.chat=kiln", modelProperty())
                .run(context -> assertThat(context).hasSingleBean(KilnChatModel.class));
    }

    @Test
    void aMissingModelDirectoryFailsNamingIt() {
        runner.withPropertyValues("spring.ai.kiln.model=/nonexistent/model").run(context -> {
            assertThat(context).hasFailed();
            assertThat(context.getStartupFailure()).rootCause().isInstanceOf(EngineException.class)
                    .hasMessageContaining("/nonexistent/model does not exist");
        });
    }

    @Test
    void enginePropertiesReachTheEngineOptions() {
        runner.withPropertyValues(modelProperty(), "spring.ai.kiln.threads=1", "spring.ai.kiln.kv-cache-bytes=8MB",
                "spring.ai.kiln.gpu-memory-utilization=0.5", "spring.ai.kiln.max-model-len=128",
                "spring.ai.kiln.max-running-seqs=8", "spring.ai.kiln.max-batched-tokens=256",
                "spring.ai.kiln.block-size=8", "spring.ai.kiln.max-kv-blocks=100", "spring.ai.kiln.prefix-caching=false",
                "spring.ai.kiln.seed=5", "spring.ai.kiln.stream-buffer-size=64", "spring.ai.kiln.shutdown-grace=2s",
                "spring.ai.kiln.quantization=int8")
                .run(context -> {
                    Engine engine = context.getBean(Engine.class);
                    assertThat(engine.options()).isEqualTo(EngineOptions.builder().device("cpu").threads(1)
                            .kvCacheBytes(8L << 20).gpuMemoryUtilization(0.5).maxModelLen(128).maxRunningSeqs(8)
                            .maxBatchedTokens(256).blockSize(8).maxKvBlocks(100).prefixCaching(false).seed(5)
                            .streamBufferSize(64).shutdownGrace(Duration.ofSeconds(2)).quantization(Quantization.INT8)
                            .build());
                    assertThat(engine.maxModelLen()).isEqualTo(128);
                    assertThat(engine.numKvBlocks()).isLessThanOrEqualTo(100);
                });
    }

    @Test
    void aValueOutOfRangeFailsNamingIt() {
        runner.withPropertyValues(modelProperty(), "spring.ai.kiln.block-size=0").run(context -> {
            assertThat(context).hasFailed();
            assertThat(context.getStartupFailure()).rootCause().isInstanceOf(IllegalArgumentException.class)
                    .hasMessageContaining("blockSize must be in [1, 1024], got 0");
        });
    }

    @Test
    void chatOptionPropertiesBecomeTheDefaultOptions() {
        runner.withPropertyValues(modelProperty(), "spring.ai.kiln.served-model-name=tiny-llama",
                "spring.ai.kiln.chat.temperature=0.7", "spring.ai.kiln.chat.top-p=0.95",
                "spring.ai.kiln.chat.top-k=50", "spring.ai.kiln.chat.min-p=0.05",
                "spring.ai.kiln.chat.max-tokens=33", "spring.ai.kiln.chat.stop-sequences=END,###",
                "spring.ai.kiln.chat.frequency-penalty=0.1", "spring.ai.kiln.chat.presence-penalty=0.2",
                "spring.ai.kiln.chat.repetition-penalty=1.1", "spring.ai.kiln.chat.seed=9")
                .run(context -> {
                    KilnChatModel chatModel = context.getBean(KilnChatModel.class);
                    assertThat(chatModel.getOptions()).isEqualTo(KilnChatOptions.builder().model("tiny-llama")
                            .temperature(0.7).topP(0.95).topK(50).minP(0.05).maxTokens(33)
                            .stopSequences("END", "###").frequencyPenalty(0.1).presencePenalty(0.2)
                            .repetitionPenalty(1.1).seed(9L).build());
                });
    }

    @Test
    void anOutOfRangeDefaultOptionFailsAtStartup() {
        runner.withPropertyValues(modelProperty(), "spring.ai.kiln.chat.presence-penalty=3").run(context -> {
            assertThat(context).hasFailed();
            assertThat(context.getStartupFailure()).rootCause().hasMessageContaining("presence_penalty");
        });
    }

    @Test
    void anApplicationsOwnEngineIsUsedAndNeedsNoModelProperty() {
        runner.withBean(Engine.class,
                () -> Engine.create(TestModels.llama3(), EngineOptions.builder().kvCacheBytes(16L << 20).build()))
                .run(context -> {
                    assertThat(context).hasNotFailed().hasSingleBean(Engine.class);
                    KilnChatModel chatModel = context.getBean(KilnChatModel.class);
                    assertThat(chatModel.engine()).isSameAs(context.getBean(Engine.class));
                    assertThat(chatModel.modelName()).isEqualTo("kiln");
                });
    }

    @Configuration(proxyBeanMethods = false)
    static class OwnChatModel {
        @Bean
        KilnChatModel myChatModel(Engine engine) {
            return KilnChatModel.builder().engine(engine).modelName("mine").build();
        }
    }

    @Test
    void anApplicationsOwnChatModelWins() {
        runner.withPropertyValues(modelProperty()).withUserConfiguration(OwnChatModel.class).run(context -> {
            assertThat(context).hasSingleBean(KilnChatModel.class).hasSingleBean(Engine.class);
            assertThat(context.getBean(KilnChatModel.class).modelName()).isEqualTo("mine");
        });
    }

    @Test
    void theEngineClosesWithTheContext() {
        AtomicReference<Engine> engine = new AtomicReference<>();

        runner.withPropertyValues(modelProperty()).run(context -> engine.set(context.getBean(Engine.class)));

        assertThatThrownBy(() -> engine.get().submit(GenerateRequest.of("Hello", SamplingParams.greedy(1))))
                .isInstanceOf(IllegalStateException.class).hasMessage("the engine is closed");
    }
}
