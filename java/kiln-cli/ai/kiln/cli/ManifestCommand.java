package ai.kiln.cli;

import ai.kiln.hub.ModelManifest;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Parameters;

/**
 * {@code kiln manifest DIR}: writes {@code DIR/kiln-manifest.json}, the size and sha256 of each
 * file a model needs in it, so that a plain file server serving DIR can be given as {@code --model
 * http(s)://HOST/PATH/}.
 */
@Command(name = "manifest", mixinStandardHelpOptions = true,
        description = {"Write DIR/kiln-manifest.json: each model file's size and sha256 (config.json, safetensors,"
                + " tokenizer and chat template files), which --model http(s)://HOST/PATH/ downloads and checks by.",
                "Exit codes: 0 written, 1 not a model directory or not writable, 2 bad options."})
public final class ManifestCommand implements Callable<Integer> {

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Parameters(index = "0", paramLabel = "DIR", description = "model directory (config.json and .safetensors weights)")
    Path dir;

    @Override
    public Integer call() throws IOException {
        if (!Files.isDirectory(dir)) {
            throw new CommandLine.ParameterException(spec.commandLine(), "DIR: " + dir + " is not a directory");
        }
        ModelManifest manifest = ModelManifest.of(dir);
        Path written = manifest.write(dir);
        long bytes = manifest.files().stream().mapToLong(ModelManifest.Entry::size).sum();
        spec.commandLine().getOut().printf("wrote %s: %d files, %d bytes%n", written, manifest.files().size(), bytes);
        spec.commandLine().getOut().flush();
        return 0;
    }
}
