package ai.kiln.cli;

import ai.kiln.hub.LocatedModel;
import ai.kiln.hub.ModelLocator;
import ai.kiln.model.ArtifactCompiler;
import ai.kiln.model.ArtifactTarget;
import ai.kiln.model.WeightQuantization;
import ai.kiln.s3.S3Location;
import ai.kiln.s3.S3Publisher;
import ai.kiln.server.ModelOption;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.Locale;
import java.util.concurrent.Callable;
import java.util.stream.Stream;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * {@code kiln compile --model SRC --target T [--quantization Q] --out DEST}: writes a compiled
 * artifact (ai.kiln.model.ModelArtifact) that every command's --model loads with no per-tensor
 * work, to a directory or (s3://BUCKET/PREFIX) straight into a bucket.
 */
@Command(name = "compile", mixinStandardHelpOptions = true,
        description = {"Compile a model for one target: its weights fused, converted and quantised as that target's"
                + " backend keeps them, packed into 4096-byte-aligned safetensors files with a kiln-artifact.json"
                + " manifest (target, quantization, source, each file's sha256) and a kiln-manifest.json, so that a"
                + " file server or a bucket serves it to `--model` of every command. Runs on the CPU; needs memory for"
                + " the compiled weights.",
                "Exit codes: 0 compiled, 1 the model could not be read or written, 2 bad options."})
public final class CompileCommand implements Callable<Integer> {

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Option(names = "--model", required = true, paramLabel = "SRC", description = ModelOption.DESCRIPTION)
    String model;

    @Option(names = "--revision", paramLabel = "REV", defaultValue = "main", description = ModelOption.REVISION_DESCRIPTION)
    String revision;

    @Option(names = "--target", required = true, paramLabel = "TARGET",
            description = "cpu, cuda-sm80 (compute capability 8.x: bf16 weights) or cuda-sm90 (9.x: bf16, or FP8)")
    String target;

    @Option(names = "--quantization", paramLabel = "Q", defaultValue = "none",
            description = "none (weights as the target keeps them), fp8 (cpu, cuda-sm90) or int8 (cpu)"
                    + " (default: ${DEFAULT-VALUE}).")
    String quantization;

    @Option(names = "--out", required = true, paramLabel = "DEST",
            description = "a new (or empty) directory, or s3://BUCKET/PREFIX (compiled in a temporary directory, then"
                    + " published as `kiln publish` does)")
    String out;

    /**
     * A Hub model's commit: the name of its snapshot directory in the Hugging Face cache
     * (models--ORG--NAME/snapshots/COMMIT), else the revision asked for.
     */
    static String commitOf(Path directory, String revision) {
        Path parent = directory.getParent();
        return parent != null && parent.getFileName() != null && parent.getFileName().toString().equals("snapshots")
                ? directory.getFileName().toString() : revision;
    }

    @Override
    public Integer call() throws IOException {
        ArtifactTarget artifactTarget;
        WeightQuantization weights;
        try {
            artifactTarget = ArtifactTarget.fromFlag(target);
        } catch (IllegalArgumentException e) {
            throw new CommandLine.ParameterException(spec.commandLine(), "--target: " + e.getMessage());
        }
        try {
            weights = WeightQuantization.valueOf(quantization.toUpperCase(Locale.ROOT));
        } catch (IllegalArgumentException e) {
            throw new CommandLine.ParameterException(spec.commandLine(), "--quantization: unknown '" + quantization
                    + "' (expected none, fp8 or int8)");
        }
        if (!artifactTarget.supports(weights)) {
            throw new CommandLine.ParameterException(spec.commandLine(), "--quantization " + quantization
                    + " does not run on " + artifactTarget + (weights == WeightQuantization.FP8
                            ? " (FP8 weights need cuda-sm90 or cpu)" : " (int8 weights are a CPU-backend format)"));
        }
        LocatedModel source = ModelOption.locate(spec, model, revision);
        PrintWriter log = spec.commandLine().getOut();
        ArtifactCompiler compiler = new ArtifactCompiler(log);
        String sourceRevision = ModelLocator.isHubId(model) && !Files.isDirectory(Path.of(model))
                ? commitOf(source.directory(), revision) : null;
        if (!S3Location.isS3(out)) {
            compiler.compile(source.directory(), model, sourceRevision, artifactTarget, weights, Path.of(out));
            return 0;
        }
        Path temporary = Files.createTempDirectory("kiln-compile-");
        try {
            Path artifact = temporary.resolve("artifact");
            compiler.compile(source.directory(), model, sourceRevision, artifactTarget, weights, artifact);
            new S3Publisher(log).publish(artifact, out);
        } finally {
            try (Stream<Path> walk = Files.walk(temporary)) {
                walk.sorted(Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
            }
        }
        return 0;
    }
}
