package ai.kiln.langchain4j;

import ai.kiln.api.Engine;
import ai.kiln.api.EngineOptions;
import dev.langchain4j.model.chat.listener.ChatModelListener;
import dev.langchain4j.model.chat.request.ChatRequestParameters;
import dev.langchain4j.model.chat.request.DefaultChatRequestParameters;
import java.nio.file.Path;
import java.util.List;
import java.util.Objects;

/**
 * What {@link KilnChatModel.Builder} and {@link KilnStreamingChatModel.Builder} share: which
 * engine the model runs on, the name it answers to, its default request parameters and its
 * listeners.
 *
 * <p>The engine is either given ({@link #engine(Engine)}, shared with other models and closed by
 * whoever created it) or created by {@code build()} from {@link #modelDirectory(Path)} and
 * {@link #engineOptions(EngineOptions)}, in which case the model owns it and its {@code close()}
 * closes it. The model name is the engine's ({@link Engine#modelName()}, its directory's name)
 * unless set.
 *
 * <p>Default request parameters work as in LangChain4j's OpenAI and Ollama providers: start
 * from {@link #defaultRequestParameters(ChatRequestParameters)}, let the individual setters
 * ({@link #temperature(Double)} and the others) override it, and let each request's own
 * parameters override both. The defaults are checked at {@code build()}: a default the engine
 * cannot honour (a tool, a JSON response format, a temperature below 0) fails there, before any
 * model is loaded.
 *
 * @param <B> the concrete builder, returned by every setter
 */
public abstract class KilnModelBuilder<B extends KilnModelBuilder<B>> {

    private Engine engine;
    private Path modelDirectory;
    private EngineOptions engineOptions;
    private String modelName;
    private ChatRequestParameters defaultRequestParameters;
    private Double temperature;
    private Double topP;
    private Integer topK;
    private Double frequencyPenalty;
    private Double presencePenalty;
    private Integer maxOutputTokens;
    private List<String> stopSequences;
    private List<ChatModelListener> listeners = List.of();

    KilnModelBuilder() {
    }

    @SuppressWarnings("unchecked")
    private B self() {
        return (B) this;
    }

    /** Runs on this engine, which the caller keeps and closes. */
    public B engine(Engine engine) {
        this.engine = engine;
        return self();
    }

    /** Creates (and owns) an engine for the Hugging Face model directory at {@code build()}. */
    public B modelDirectory(Path modelDirectory) {
        this.modelDirectory = modelDirectory;
        return self();
    }

    /** With {@link #modelDirectory(Path)}: how the engine runs (default {@link EngineOptions#defaults()}, the CPU). */
    public B engineOptions(EngineOptions engineOptions) {
        this.engineOptions = engineOptions;
        return self();
    }

    /**
     * The name responses carry and requests may name (a request naming another model is
     * refused). Default with {@link #modelDirectory(Path)}: the directory's name.
     */
    public B modelName(String modelName) {
        this.modelName = modelName;
        return self();
    }

    /** Parameters every request starts from; a request's own non-null parameters override them. */
    public B defaultRequestParameters(ChatRequestParameters defaultRequestParameters) {
        this.defaultRequestParameters = defaultRequestParameters;
        return self();
    }

    /** Default temperature (0: greedy); overrides {@link #defaultRequestParameters}. */
    public B temperature(Double temperature) {
        this.temperature = temperature;
        return self();
    }

    /** Default nucleus-sampling mass in (0, 1]; overrides {@link #defaultRequestParameters}. */
    public B topP(Double topP) {
        this.topP = topP;
        return self();
    }

    /** Default top-k (0: off); overrides {@link #defaultRequestParameters}. */
    public B topK(Integer topK) {
        this.topK = topK;
        return self();
    }

    /** Default frequency penalty in [-2, 2]; overrides {@link #defaultRequestParameters}. */
    public B frequencyPenalty(Double frequencyPenalty) {
        this.frequencyPenalty = frequencyPenalty;
        return self();
    }

    /** Default presence penalty in [-2, 2]; overrides {@link #defaultRequestParameters}. */
    public B presencePenalty(Double presencePenalty) {
        this.presencePenalty = presencePenalty;
        return self();
    }

    /** Default output budget in tokens (unset: up to the context length); overrides {@link #defaultRequestParameters}. */
    public B maxOutputTokens(Integer maxOutputTokens) {
        this.maxOutputTokens = maxOutputTokens;
        return self();
    }

    /** Default stop strings (cut from the answer); overrides {@link #defaultRequestParameters}. */
    public B stopSequences(List<String> stopSequences) {
        this.stopSequences = stopSequences == null ? null : List.copyOf(stopSequences);
        return self();
    }

    /** Listeners told of every request, response and error, as LangChain4j's ChatModel does. */
    public B listeners(List<ChatModelListener> listeners) {
        this.listeners = listeners == null ? List.of() : List.copyOf(listeners);
        return self();
    }

    /** The name the model answers to, from the setter, the default parameters or the directory. */
    private String resolveModelName() {
        String fromDefaults = defaultRequestParameters == null ? null : defaultRequestParameters.modelName();
        String name = modelName != null ? modelName : fromDefaults;
        if (name == null && engine != null) {
            name = engine.modelName();
        }
        if (name == null && modelDirectory != null) {
            Path fileName = modelDirectory.toAbsolutePath().normalize().getFileName();
            name = fileName == null ? null : fileName.toString();
        }
        if (name == null || name.isBlank()) {
            throw new IllegalArgumentException("the model has no name: set modelName(...)");
        }
        if (fromDefaults != null && !fromDefaults.equals(name)) {
            throw new IllegalArgumentException("defaultRequestParameters names model '" + fromDefaults
                    + "', but the model is '" + name + "'");
        }
        return name;
    }

    /** The defaults every request is merged over, with the model name filled in. */
    private ChatRequestParameters resolveDefaultParameters(String name) {
        DefaultChatRequestParameters.Builder<?> defaults = ChatRequestParameters.builder();
        if (defaultRequestParameters != null) {
            defaults.overrideWith(defaultRequestParameters);
        }
        ChatRequestParameters setters = ChatRequestParameters.builder()
                .modelName(name)
                .temperature(temperature)
                .topP(topP)
                .topK(topK)
                .frequencyPenalty(frequencyPenalty)
                .presencePenalty(presencePenalty)
                .maxOutputTokens(maxOutputTokens)
                .stopSequences(stopSequences)
                .build();
        return defaults.overrideWith(setters).build();
    }

    /**
     * Checks the configuration and binds the engine: the given one, or a new one from the model
     * directory, created last so that a bad configuration never loads a model.
     *
     * @return the engine binding and the checked default parameters
     */
    BuiltConfiguration buildConfiguration() {
        if (engine == null && modelDirectory == null) {
            throw new IllegalArgumentException("either engine(...) or modelDirectory(...) is required");
        }
        if (engine != null && modelDirectory != null) {
            throw new IllegalArgumentException("engine(...) and modelDirectory(...) are exclusive: give an engine"
                    + " to share it, or a model directory for the model to create and own one");
        }
        if (engine != null && engineOptions != null) {
            throw new IllegalArgumentException("engineOptions(...) applies only with modelDirectory(...); the given"
                    + " engine already runs with its own options");
        }
        String name = resolveModelName();
        ChatRequestParameters defaults = resolveDefaultParameters(name);
        // Fails now, not at the first request, for defaults the engine cannot honour.
        ChatRequestMapping.toSamplingParams(defaults, ai.kiln.api.ToolCallFormat.HERMES);
        EngineBinding binding = engine != null ? new EngineBinding(engine, name, false)
                : new EngineBinding(Engine.create(modelDirectory,
                        Objects.requireNonNullElseGet(engineOptions, EngineOptions::defaults)), name, true);
        return new BuiltConfiguration(binding, defaults, listeners);
    }

    /** What a model is built from. */
    record BuiltConfiguration(EngineBinding binding, ChatRequestParameters defaultRequestParameters,
            List<ChatModelListener> listeners) {

        BuiltConfiguration {
            listeners = List.copyOf(listeners);
        }
    }
}
