package ai.kiln.hub;

import ai.kiln.progress.ByteProgress;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;

/**
 * Receives one file into a cache's blob, the way every model source downloads: into {@code
 * BLOB.incomplete} (resumed from where an earlier run broke off: a Range request), its sha256
 * checked where one is known, then moved into place in one step. A transfer that broke off keeps
 * what arrived, for the next run to resume; bytes that cannot be right (a checksum mismatch, a
 * server's whole answer shorter than announced) are deleted.
 */
final class BlobTransfer {

    /** Files received at once. */
    static final int PARALLEL_FILES = 4;

    /** Where the bytes come from, over HTTP: a GET that follows the source's redirects, and its errors. */
    interface Source {

        /** Sends the GET {@code request} (its URI set) for {@code file}, following redirects. */
        HttpResponse<InputStream> get(String file, HttpRequest.Builder request);

        /** The error a failed answer for {@code file} means, saying what to do. */
        HubException statusError(String file, HttpResponse<?> response);
    }

    /** An HTTP {@link Source} as a {@link RemoteModelStore.Files} reader: 200 is the whole file, 206 the rest. */
    static RemoteModelStore.Files overHttp(Source source) {
        return new RemoteModelStore.Files() {
            @Override
            public RemoteModelStore.Body open(String file, long from) {
                HttpRequest.Builder request = HttpRequest.newBuilder().GET().header("Accept-Encoding", "identity");
                if (from > 0) {
                    request.header("Range", "bytes=" + from + "-");
                }
                HttpResponse<InputStream> response = source.get(file, request);
                int status = response.statusCode();
                if (status == 200 || status == 206) {
                    return new RemoteModelStore.Body(response.body(), status == 206 && from > 0);
                }
                try {
                    response.body().close();
                } catch (IOException ignored) {
                    // the answer is an error either way
                }
                HubException error = source.statusError(file, response);
                if (status == 416) {
                    throw new RemoteModelStore.RangeNotSatisfiable(error.getMessage());
                }
                throw error;
            }

            @Override
            public byte[] manifest() {
                throw new UnsupportedOperationException("an HTTP blob source reads files only");
            }
        };
    }

    /**
     * One file to receive.
     *
     * @param file its name, for messages
     * @param size its length in bytes, or -1 where unknown
     * @param sha256 the hex sha256 its bytes must have, or null where none is known
     * @param blob where the whole, checked bytes go
     * @param part where they are received until then
     */
    record Blob(String file, long size, String sha256, Path blob, Path part) {
    }

    private final String what;
    private final Duration timeout;
    private final RemoteModelStore.Files source;

    /**
     * @param what the model the files belong to, which every message starts with
     * @param timeout how long a body may go without a byte before the transfer counts as broken off
     */
    BlobTransfer(String what, Duration timeout, Source source) {
        this(what, timeout, overHttp(source));
    }

    BlobTransfer(String what, Duration timeout, RemoteModelStore.Files source) {
        this.what = what;
        this.timeout = timeout;
        this.source = source;
    }

    /** Receives {@code wanted} into its blob unless it is there already. */
    void fetch(Blob wanted, ByteProgress progress) {
        Path part = wanted.part();
        if (Files.isRegularFile(wanted.blob())) {
            progress.advance(Math.max(0, wanted.size()));
            return;
        }
        try {
            Files.createDirectories(wanted.blob().getParent());
            long have = Files.isRegularFile(part) ? Files.size(part) : 0;
            if (wanted.size() >= 0 && have > wanted.size()) {
                Files.delete(part);
                have = 0;
            }
            MessageDigest sha256 = sha256();
            if (wanted.size() < 0 || have < wanted.size()) {
                have = receive(wanted, have, sha256, progress);
            } else {
                digestFile(part, sha256);
                progress.advance(have);
            }
            if (wanted.size() >= 0 && have > wanted.size()) {
                Files.deleteIfExists(part);
                throw new HubException(what + ": the server sent " + have + " bytes of " + wanted.file() + ", "
                        + wanted.size() + " were announced; nothing was kept");
            }
            if (wanted.sha256() != null) {
                String actual = HexFormat.of().formatHex(sha256.digest());
                if (!actual.equals(wanted.sha256())) {
                    Files.deleteIfExists(part);
                    throw new HubException(what + ": " + wanted.file() + " failed its checksum: the bytes received"
                            + " have sha256 " + actual + ", the source announced " + wanted.sha256()
                            + "; the download was deleted, run again");
                }
            }
            HubCache.moveAtomically(part, wanted.blob());
        } catch (IOException e) {
            throw new HubException(what + ": writing " + part + " failed (" + e + "); is the disk full?"
                    + " What was written is kept, run again to resume", e);
        }
    }

    /** Requests the bytes from {@code have} on and appends them to the part file; returns its new length. */
    private long receive(Blob wanted, long have, MessageDigest sha256, ByteProgress progress) throws IOException {
        Path part = wanted.part();
        RemoteModelStore.Body body;
        try {
            body = source.open(wanted.file(), have);
        } catch (RemoteModelStore.RangeNotSatisfiable e) {
            // The server's copy is shorter than what an earlier run received: those bytes are not its.
            Files.deleteIfExists(part);
            throw new HubException(e.getMessage(), e);
        }
        boolean resumed = body.resumed() && have > 0;
        if (resumed) {
            digestFile(part, sha256);
            progress.advance(have);
        } else {
            have = 0;
        }
        InputStream in = body.stream();
        StallWatch watch = new StallWatch(in, timeout);
        try (in; watch;
                OutputStream out = Files.newOutputStream(part, StandardOpenOption.CREATE, StandardOpenOption.WRITE,
                        resumed ? StandardOpenOption.APPEND : StandardOpenOption.TRUNCATE_EXISTING)) {
            byte[] buffer = new byte[1 << 20];
            while (true) {
                int n;
                try {
                    n = in.read(buffer);
                } catch (IOException e) {
                    out.flush();
                    String why = watch.stalled() ? "no byte arrived for " + timeout.toMillis()
                            + " ms (HF_HUB_DOWNLOAD_TIMEOUT)" : e.getMessage();
                    throw new HubException(what + ": the download of " + wanted.file() + " broke off after " + have
                            + (wanted.size() >= 0 ? " of " + wanted.size() : "") + " bytes (" + why
                            + "); what arrived is kept in " + part + ", run again to resume", e);
                }
                if (n < 0) {
                    break;
                }
                watch.progressed();
                out.write(buffer, 0, n);
                sha256.update(buffer, 0, n);
                have += n;
                progress.advance(n);
            }
        }
        if (wanted.size() >= 0 && have < wanted.size()) {
            // NOTE: the answer ended as the server meant it to: the file it serves is shorter than
            // announced, so a resume could never complete it; nothing is kept.
            Files.deleteIfExists(part);
            throw new HubException(what + ": " + wanted.file() + " is " + have + " bytes on the server, "
                    + wanted.size() + " were announced: the server's copy is truncated; nothing was kept");
        }
        return have;
    }

    static void digestFile(Path file, MessageDigest digest) throws IOException {
        try (InputStream in = Files.newInputStream(file)) {
            byte[] buffer = new byte[1 << 20];
            for (int n; (n = in.read(buffer)) > 0; ) {
                digest.update(buffer, 0, n);
            }
        }
    }

    static MessageDigest sha256() {
        try {
            return MessageDigest.getInstance("SHA-256");
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("the JDK has no SHA-256", e);
        }
    }

    interface Task<T, R> {
        R run(T item);
    }

    /** Runs {@code task} on every item, {@link #PARALLEL_FILES} at a time; the first failure is thrown. */
    static <T, R> List<R> inParallel(List<T> items, Task<T, R> task) {
        if (items.isEmpty()) {
            return List.of();
        }
        ExecutorService pool = Executors.newFixedThreadPool(Math.min(PARALLEL_FILES, items.size()), r -> {
            Thread t = new Thread(r, "kiln-model-download");
            t.setDaemon(true);
            return t;
        });
        try {
            List<Future<R>> futures = new ArrayList<>();
            for (T item : items) {
                futures.add(pool.submit(() -> task.run(item)));
            }
            List<R> results = new ArrayList<>();
            for (Future<R> future : futures) {
                results.add(future.get());
            }
            return results;
        } catch (ExecutionException e) {
            if (e.getCause() instanceof RuntimeException r) {
                throw r;
            }
            throw new HubException("a download failed: " + e.getCause(), e.getCause());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new HubException("interrupted while downloading", e);
        } finally {
            // NOTE: the other transfers are stopped and awaited, so that no thread still appends to
            // an .incomplete file when the next run resumes it.
            pool.shutdownNow();
            try {
                pool.awaitTermination(30, TimeUnit.SECONDS);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
    }
}
