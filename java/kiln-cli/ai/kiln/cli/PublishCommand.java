package ai.kiln.cli;

import ai.kiln.s3.S3Location;
import ai.kiln.s3.S3Publisher;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Parameters;

/**
 * {@code kiln publish DIR s3://BUCKET/PREFIX}: stores a model directory in an S3 bucket (AWS, or an
 * S3-compatible store named by AWS_ENDPOINT_URL) with its manifest, so that any number of servers
 * run {@code kiln serve --model s3://BUCKET/PREFIX}.
 */
@Command(name = "publish", mixinStandardHelpOptions = true,
        description = {"Upload a model directory to s3://BUCKET/PREFIX with its kiln-manifest.json (written last),"
                + " which --model s3://BUCKET/PREFIX downloads and checks by. Files the bucket already holds with the"
                + " same sha256 are skipped. Credentials from the AWS SDK's default chain (AWS_ACCESS_KEY_ID,"
                + " AWS_SECRET_ACCESS_KEY, AWS_PROFILE); AWS_ENDPOINT_URL for MinIO and other S3-compatible stores.",
                "Exit codes: 0 published, 1 not a model directory or the store refused, 2 bad options."})
public final class PublishCommand implements Callable<Integer> {

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Parameters(index = "0", paramLabel = "DIR", description = "model directory (config.json and .safetensors weights)")
    Path dir;

    @Parameters(index = "1", paramLabel = "URL", description = "where to: s3://BUCKET/PREFIX")
    String url;

    @Override
    public Integer call() throws IOException {
        if (!Files.isDirectory(dir)) {
            throw new CommandLine.ParameterException(spec.commandLine(), "DIR: " + dir + " is not a directory");
        }
        if (!S3Location.isS3(url)) {
            throw new CommandLine.ParameterException(spec.commandLine(), "URL: " + url + " is not s3://BUCKET/PREFIX"
                    + " (for a file server, write the manifest with `kiln manifest DIR` and serve DIR)");
        }
        new S3Publisher(spec.commandLine().getOut()).publish(dir, url);
        return 0;
    }
}
