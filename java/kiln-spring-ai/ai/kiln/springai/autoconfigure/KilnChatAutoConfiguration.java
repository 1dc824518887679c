package ai.kiln.springai.autoconfigure;

import ai.kiln.api.Engine;
import ai.kiln.springai.KilnChatModel;
import ai.kiln.springai.KilnChatOptions;
import io.micrometer.observation.ObservationRegistry;
import java.nio.file.Path;
import org.apache.commons.logging.Log;
import org.apache.commons.logging.LogFactory;
import org.springframework.ai.chat.observation.ChatModelObservationConvention;
import org.springframework.ai.model.SpringAIModelProperties;
import org.springframework.beans.factory.ObjectProvider;
import org.springframework.boot.autoconfigure.AutoConfiguration;
import org.springframework.boot.autoconfigure.condition.ConditionalOnClass;
import org.springframework.boot.autoconfigure.condition.ConditionalOnMissingBean;
import org.springframework.boot.autoconfigure.condition.ConditionalOnProperty;
import org.springframework.boot.context.properties.EnableConfigurationProperties;
import org.springframework.context.annotation.Bean;

/**
 * Auto-configures a Kiln {@link Engine} for the model directory in {@code spring.ai.kiln.model}
 * and a {@link KilnChatModel} on it, with default options from {@code spring.ai.kiln.chat.*}.
 *
 * <p>On unless {@code spring.ai.model.chat} names another provider (Spring AI's switch between
 * chat providers; {@code none} turns them all off). When on, the model directory is required:
 * without {@code spring.ai.kiln.model} (and without an {@code Engine} bean of the application's
 * own) the application fails to start with a {@link KilnModelNotConfiguredException} saying so,
 * as a {@code DataSource} without a URL does, rather than starting without the chat model the
 * starter was added for.
 *
 * <p>Both beans back off when the application defines its own. The engine made here is closed
 * with the application context, letting requests in flight finish within
 * {@code spring.ai.kiln.shutdown-grace}.
 */
@AutoConfiguration
@ConditionalOnClass(Engine.class)
@ConditionalOnProperty(name = SpringAIModelProperties.CHAT_MODEL, havingValue = KilnChatAutoConfiguration.PROVIDER,
        matchIfMissing = true)
@EnableConfigurationProperties({KilnEngineProperties.class, KilnChatProperties.class})
public class KilnChatAutoConfiguration {

    /** The value of {@code spring.ai.model.chat} that selects Kiln. */
    public static final String PROVIDER = "kiln";

    private static final Log log = LogFactory.getLog(KilnChatAutoConfiguration.class);

    /** Loads the model onto the configured device; closed with the context. */
    @Bean(destroyMethod = "close")
    @ConditionalOnMissingBean
    public Engine kilnEngine(KilnEngineProperties properties) {
        Path model = properties.getModel();
        if (model == null) {
            throw new KilnModelNotConfiguredException();
        }
        Engine engine = Engine.create(model, properties.toEngineOptions());
        log.info("Kiln engine loaded " + model + " on " + engine.deviceDescription() + " (" + engine.numKvBlocks()
                + " KV blocks, max model length " + engine.maxModelLen() + ")");
        return engine;
    }

    @Bean
    @ConditionalOnMissingBean
    public KilnChatModel kilnChatModel(Engine engine, KilnEngineProperties engineProperties,
            KilnChatProperties chatProperties, ObjectProvider<ObservationRegistry> observationRegistry,
            ObjectProvider<ChatModelObservationConvention> observationConvention) {
        KilnChatOptions defaults = chatProperties.toChatOptions();
        return KilnChatModel.builder().engine(engine).modelName(engineProperties.resolveServedModelName())
                .defaultOptions(defaults)
                .observationRegistry(observationRegistry.getIfUnique(() -> ObservationRegistry.NOOP))
                .observationConvention(observationConvention.getIfAvailable()).build();
    }
}
