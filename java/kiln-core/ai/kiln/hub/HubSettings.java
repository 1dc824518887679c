package ai.kiln.hub;

import java.io.IOException;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Locale;
import java.util.Map;
import java.util.Set;

/**
 * Where the Hub and its cache are, read from the environment variables huggingface_hub reads, so
 * that Kiln and the Python tools share one cache and one login.
 *
 * @param endpoint the Hub's root URL (HF_ENDPOINT, default https://huggingface.co)
 * @param cacheDir the hub cache (HF_HUB_CACHE, else HF_HOME/hub, else ~/.cache/huggingface/hub)
 * @param token the bearer token sent with every request (HF_TOKEN, else the file huggingface-cli
 *     login writes), or null
 * @param offline HF_HUB_OFFLINE: the cache alone, never the network
 * @param downloadTimeout how long a download may wait for an answer's headers, or between two
 *     reads of its body, before it counts as broken off (HF_HUB_DOWNLOAD_TIMEOUT in seconds,
 *     default 10 s as huggingface_hub's): a server that stalls cannot hang a load
 */
public record HubSettings(URI endpoint, Path cacheDir, String token, boolean offline, Duration downloadTimeout) {

    public static final URI DEFAULT_ENDPOINT = URI.create("https://huggingface.co");
    public static final Duration DEFAULT_DOWNLOAD_TIMEOUT = Duration.ofSeconds(10);

    private static final Set<String> TRUE_VALUES = Set.of("1", "on", "yes", "true");

    public HubSettings {
        if (endpoint == null || cacheDir == null) {
            throw new IllegalArgumentException("the Hub endpoint and cache directory are required");
        }
        String text = endpoint.toString();
        if (text.endsWith("/")) {
            endpoint = URI.create(text.substring(0, text.length() - 1));
        }
        if (token != null && token.isBlank()) {
            token = null;
        }
        if (downloadTimeout == null || downloadTimeout.isNegative() || downloadTimeout.isZero()) {
            throw new IllegalArgumentException("the download timeout must be positive, got " + downloadTimeout);
        }
    }

    /** Settings with the default download timeout. */
    public HubSettings(URI endpoint, Path cacheDir, String token, boolean offline) {
        this(endpoint, cacheDir, token, offline, DEFAULT_DOWNLOAD_TIMEOUT);
    }

    /** The settings of the running process's environment. */
    public static HubSettings fromEnvironment() {
        return fromEnvironment(System.getenv());
    }

    /** The settings {@code env} describes, with huggingface_hub's defaults for what it leaves out. */
    public static HubSettings fromEnvironment(Map<String, String> env) {
        String endpoint = nonEmpty(env.get("HF_ENDPOINT"));
        Path hfHome = hfHome(env);
        String hubCache = nonEmpty(env.get("HF_HUB_CACHE"));
        Path cacheDir = hubCache != null ? Path.of(hubCache) : hfHome.resolve("hub");
        String offline = nonEmpty(env.get("HF_HUB_OFFLINE"));
        return new HubSettings(endpoint == null ? DEFAULT_ENDPOINT : URI.create(endpoint), cacheDir, token(env, hfHome),
                offline != null && TRUE_VALUES.contains(offline.toLowerCase(Locale.ROOT)),
                downloadTimeout(nonEmpty(env.get("HF_HUB_DOWNLOAD_TIMEOUT"))));
    }

    /** HF_HUB_DOWNLOAD_TIMEOUT's seconds (a decimal number), else the default; a bad value is refused by name. */
    private static Duration downloadTimeout(String seconds) {
        if (seconds == null) {
            return DEFAULT_DOWNLOAD_TIMEOUT;
        }
        try {
            double value = Double.parseDouble(seconds);
            if (value > 0 && value < 1e9) {
                return Duration.ofMillis(Math.max(1, (long) (value * 1000)));
            }
        } catch (NumberFormatException e) {
            // refused below
        }
        throw new IllegalArgumentException("HF_HUB_DOWNLOAD_TIMEOUT must be a positive number of seconds, got "
                + seconds);
    }

    private static Path hfHome(Map<String, String> env) {
        String hfHome = nonEmpty(env.get("HF_HOME"));
        if (hfHome != null) {
            return Path.of(hfHome);
        }
        String xdgCache = nonEmpty(env.get("XDG_CACHE_HOME"));
        return (xdgCache != null ? Path.of(xdgCache) : Path.of(System.getProperty("user.home"), ".cache"))
                .resolve("huggingface");
    }

    /** HF_TOKEN, else the token file (HF_TOKEN_PATH, else HF_HOME/token) where there is one. */
    private static String token(Map<String, String> env, Path hfHome) {
        String token = nonEmpty(env.get("HF_TOKEN"));
        if (token != null) {
            return token.strip();
        }
        String tokenPath = nonEmpty(env.get("HF_TOKEN_PATH"));
        Path file = tokenPath != null ? Path.of(tokenPath) : hfHome.resolve("token");
        try {
            return Files.isRegularFile(file) ? nonEmpty(Files.readString(file, StandardCharsets.UTF_8).strip()) : null;
        } catch (IOException e) {
            return null;
        }
    }

    private static String nonEmpty(String value) {
        return value == null || value.isEmpty() ? null : value;
    }
}
