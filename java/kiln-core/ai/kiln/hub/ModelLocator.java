package ai.kiln.hub;

import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.InvalidPathException;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.ServiceLoader;

/**
 * Turns what a user names as a model into a directory, as {@code vllm serve} does: a path that
 * exists is used as it is; otherwise {@code ORG/NAME} is a Hugging Face Hub id, looked up first in
 * the Hugging Face cache (what Python tools downloaded is used with no network at all) and
 * downloaded into it otherwise, unless HF_HUB_OFFLINE forbids the network; an {@code http(s)://}
 * URL is a model directory on a plain file server with a {@code kiln-manifest.json}, downloaded
 * into Kiln's cache ({@link HttpModelDownloader}), and so is a URL of a {@link RemoteModelStore}
 * on the class path ({@code s3://} with kiln-s3).
 */
public final class ModelLocator {

    /** The stores on the class path ({@link RemoteModelStore}: kiln-s3's s3://, for one). */
    private static final List<RemoteModelStore> STORES = ServiceLoader.load(RemoteModelStore.class).stream()
            .map(ServiceLoader.Provider::get).toList();

    private final HubSettings settings;
    private final Path httpCacheDir;
    private final PrintStream progress;

    /**
     * @param httpCacheDir the cache of models from file servers (see {@link #defaultHttpCacheDir})
     * @param progress where a download's progress is printed (null: nowhere)
     */
    public ModelLocator(HubSettings settings, Path httpCacheDir, PrintStream progress) {
        this.settings = settings;
        this.httpCacheDir = httpCacheDir;
        this.progress = progress;
    }

    /** A locator with the file servers' cache where {@link #defaultHttpCacheDir} puts it. */
    public ModelLocator(HubSettings settings, PrintStream progress) {
        this(settings, defaultHttpCacheDir(System.getenv()), progress);
    }

    /**
     * Where models from file servers are cached: {@code $KILN_CACHE/models}, else {@code
     * $XDG_CACHE_HOME/kiln/models}, else {@code ~/.cache/kiln/models}.
     */
    public static Path defaultHttpCacheDir(Map<String, String> env) {
        String kilnCache = env.get("KILN_CACHE");
        if (kilnCache != null && !kilnCache.isEmpty()) {
            return Path.of(kilnCache, "models");
        }
        String xdgCache = env.get("XDG_CACHE_HOME");
        Path cache = xdgCache != null && !xdgCache.isEmpty() ? Path.of(xdgCache)
                : Path.of(System.getProperty("user.home"), ".cache");
        return cache.resolve("kiln").resolve("models");
    }

    /**
     * Whether {@code model} is read as a remote model directory: an http:// or https:// URL, or a
     * URL a {@link RemoteModelStore} on the class path reads.
     */
    public static boolean isUrl(String model) {
        return HttpModelDownloader.isUrl(model) || STORES.stream().anyMatch(store -> store.accepts(model));
    }

    /** The environment's settings, with a download's progress on stderr. */
    public static ModelLocator fromEnvironment() {
        return new ModelLocator(HubSettings.fromEnvironment(), System.err);
    }

    /** Whether {@code model} is read as a Hub id: no existing path, and of the shape {@code ORG/NAME}. */
    public static boolean isHubId(String model) {
        return !existsLocally(model) && HubRepo.isRepoId(model);
    }

    /**
     * The directory of {@code model}: a local path that exists, a Hub id at {@code revision}
     * (null: main) from the cache or downloaded into it, or a file server's URL (revision unused)
     * from Kiln's cache or downloaded into it.
     *
     * @throws HubException where the Hub model is neither cached nor to be had, or {@code model}
     *     is neither an existing path nor a Hub id
     */
    public LocatedModel locate(String model, String revision) {
        if (existsLocally(model)) {
            return LocatedModel.ofDirectory(Path.of(model));
        }
        if (HttpModelDownloader.isUrl(model)) {
            return new HttpModelDownloader(settings, httpCacheDir, progress).locate(model);
        }
        for (RemoteModelStore store : STORES) {
            if (store.accepts(model)) {
                return store.locate(model, new ManifestSnapshots(settings, httpCacheDir, progress));
            }
        }
        if (model.matches("[A-Za-z][A-Za-z0-9+.-]*://.*")) {
            throw new HubException("model " + model + ": no model store reads " + model.substring(0, model.indexOf(':'))
                    + ":// URLs here" + (model.startsWith("s3://") ? " (s3:// needs kiln-s3 on the class path, which"
                    + " the kiln command line has)" : ""));
        }
        if (!HubRepo.isRepoId(model)) {
            throw new HubException("model " + model + " is neither an existing directory, a Hugging Face Hub id"
                    + " (ORG/NAME) nor an http(s):// URL");
        }
        HubRepo repo = new HubRepo(model, revision == null ? HubRepo.DEFAULT_REVISION : revision);
        HubCache cache = new HubCache(settings.cacheDir());
        return new LocatedModel(cache.completeSnapshot(repo).orElseGet(() -> fetch(repo, cache)), repo.id());
    }

    private Path fetch(HubRepo repo, HubCache cache) {
        if (settings.offline()) {
            String found = cache.cachedCommit(repo)
                    .map(commit -> {
                        List<String> missing = HubCache.missingForModel(cache.snapshotDir(repo, commit));
                        return "; its snapshot " + commit + " lacks " + String.join(", ", missing);
                    })
                    .orElse("");
            throw new HubException(repo + " is not in the Hugging Face cache (searched " + cache.repoDir(repo) + found
                    + ") and HF_HUB_OFFLINE is set, so it is not downloaded; download it first, or unset HF_HUB_OFFLINE");
        }
        return new HubDownloader(settings, cache, progress).download(repo);
    }

    private static boolean existsLocally(String model) {
        try {
            return model != null && Files.exists(Path.of(model));
        } catch (InvalidPathException e) {
            return false;
        }
    }
}
