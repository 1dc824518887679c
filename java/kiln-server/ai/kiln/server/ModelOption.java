package ai.kiln.server;

import ai.kiln.hub.LocatedModel;
import ai.kiln.hub.ModelLocator;
import java.nio.file.Files;
import java.nio.file.InvalidPathException;
import java.nio.file.Path;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.ParameterException;

/**
 * What every command's {@code --model} and {@code --revision} mean, written once: a model
 * directory, a Hugging Face Hub id {@code ORG/NAME} (a path that exists wins) taken from the
 * Hugging Face cache or downloaded into it, as {@code vllm serve ORG/NAME} does, or a file server's
 * {@code http(s)://} URL of a model directory with its {@code kiln-manifest.json}.
 */
public final class ModelOption {

    public static final String DESCRIPTION = "Model directory, Hugging Face Hub id ORG/NAME (an existing path"
            + " wins), or http(s)://HOST/PATH/ of a file server holding the directory and its kiln-manifest.json."
            + " A Hub model is taken from the Hugging Face cache (HF_HUB_CACHE, else HF_HOME/hub, else"
            + " ~/.cache/huggingface/hub), else downloaded into it from HF_ENDPOINT with HF_TOKEN; a URL's"
            + " from Kiln's cache (KILN_CACHE/models, else ~/.cache/kiln/models); HF_HUB_OFFLINE=1: the caches alone.";

    public static final String REVISION_DESCRIPTION = "With a Hub id: the branch, tag or commit"
            + " (default: ${DEFAULT-VALUE}).";

    private ModelOption() {
    }

    /**
     * The directory {@code model} names, downloading a Hub model the cache lacks (progress on
     * stderr). A value that is neither a directory, a Hub id nor a URL is a usage error; a model that
     * cannot be had throws {@link ai.kiln.hub.HubException} saying why.
     */
    public static LocatedModel locate(CommandSpec spec, String model, String revision) {
        if (!ModelLocator.isHubId(model) && !ModelLocator.isUrl(model) && !isDirectory(model)) {
            throw new ParameterException(spec.commandLine(), "--model: " + model
                    + " is neither a directory, a Hugging Face Hub id (ORG/NAME) nor an http(s):// URL");
        }
        return ModelLocator.fromEnvironment().locate(model, revision);
    }

    private static boolean isDirectory(String model) {
        try {
            return Files.isDirectory(Path.of(model));
        } catch (InvalidPathException e) {
            return false;
        }
    }
}
