package ai.kiln.hub;

import ai.kiln.progress.ByteProgress;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.RandomAccessFile;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.BitSet;
import java.util.HexFormat;
import java.util.List;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;

/**
 * Receives one file into a cache's blob, the way every model source downloads: into {@code
 * BLOB.incomplete}, its sha256 checked where one is known, then moved into place in one step. A
 * file of known size of at least two chunks (32 MiB, {@code -Dkiln.download.chunkKiB}) comes as
 * ranged requests for its chunks, {@link #RANGES_AT_ONCE} at a time, each written at its place (one
 * stream rarely fills a fast link; hf_transfer and S3's transfer manager do the same); the chunks
 * done are listed in {@code BLOB.incomplete.ranges}, so a later run fetches only the others. A
 * smaller file, or one from a store that ignores ranges, comes as one stream, resumed from where an
 * earlier run broke off. A transfer that broke off keeps what arrived, for the next run to resume;
 * bytes that cannot be right (a checksum mismatch, a store's copy shorter than announced) are
 * deleted.
 */
final class BlobTransfer {

    /** Files received at once. */
    static final int PARALLEL_FILES = 4;

    /** Ranges of one file received at once. */
    static final int RANGES_AT_ONCE = 8;

    /** The suffix of the list of a chunked part's chunks that are whole (one index a line). */
    static final String RANGES_SUFFIX = ".ranges";

    /** Where the bytes come from, over HTTP: a GET that follows the source's redirects, and its errors. */
    interface Source {

        /** Sends the GET {@code request} (its URI set) for {@code file}, following redirects. */
        HttpResponse<InputStream> get(String file, HttpRequest.Builder request);

        /** The error a failed answer for {@code file} means, saying what to do. */
        HubException statusError(String file, HttpResponse<?> response);
    }

    /** An HTTP {@link Source} as a {@link RemoteModelStore.Ranges} reader: 200 is the whole file, 206 a range. */
    static RemoteModelStore.Ranges overHttp(Source source) {
        return new RemoteModelStore.Ranges() {
            @Override
            public RemoteModelStore.Body open(String file, long from, long to) {
                HttpRequest.Builder request = HttpRequest.newBuilder().GET().header("Accept-Encoding", "identity");
                if (from > 0 || to >= 0) {
                    request.header("Range", "bytes=" + from + "-" + (to >= 0 ? to : ""));
                }
                HttpResponse<InputStream> response = source.get(file, request);
                int status = response.statusCode();
                if (status == 200 || status == 206) {
                    return new RemoteModelStore.Body(response.body(), status == 206);
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
    private final RemoteModelStore.Ranges source;
    private final long chunkBytes = Math.max(1, Long.getLong("kiln.download.chunkKiB", 32 << 10)) << 10;

    /**
     * @param what the model the files belong to, which every message starts with
     * @param timeout how long a body may go without a byte before the transfer counts as broken off
     */
    BlobTransfer(String what, Duration timeout, Source source) {
        this(what, timeout, overHttp(source));
    }

    BlobTransfer(String what, Duration timeout, RemoteModelStore.Ranges source) {
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
        Path ranges = part.resolveSibling(part.getFileName() + RANGES_SUFFIX);
        try {
            Files.createDirectories(wanted.blob().getParent());
            MessageDigest sha256 = sha256();
            long have;
            if (wanted.size() >= 2 * chunkBytes && receiveInRanges(wanted, ranges, progress)) {
                digestFile(part, sha256);
                have = Files.size(part);
            } else {
                if (Files.exists(ranges)) {
                    // A chunked part is as long as the file from the start: not a prefix to resume.
                    Files.deleteIfExists(part);
                    Files.delete(ranges);
                }
                have = Files.isRegularFile(part) ? Files.size(part) : 0;
                if (wanted.size() >= 0 && have > wanted.size()) {
                    Files.delete(part);
                    have = 0;
                }
                if (wanted.size() < 0 || have < wanted.size()) {
                    have = receive(wanted, have, sha256, progress);
                } else {
                    digestFile(part, sha256);
                    progress.advance(have);
                }
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
                    Files.deleteIfExists(ranges);
                    throw new HubException(what + ": " + wanted.file() + " failed its checksum: the bytes received"
                            + " have sha256 " + actual + ", the source announced " + wanted.sha256()
                            + "; the download was deleted, run again");
                }
            }
            HubCache.moveAtomically(part, wanted.blob());
            Files.deleteIfExists(ranges);
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
            body = source.open(wanted.file(), have, -1);
        } catch (RemoteModelStore.RangeNotSatisfiable e) {
            // The server's copy is shorter than what an earlier run received: those bytes are not its.
            Files.deleteIfExists(part);
            throw new HubException(e.getMessage(), e);
        }
        boolean resumed = body.ranged() && have > 0;
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

    /** The store answered a ranged request with the whole file: it ignores ranges. */
    private static final class RangesIgnored extends RuntimeException {
        private static final long serialVersionUID = 1L;
    }

    /**
     * Receives the chunks of {@code wanted} not yet whole into the part file, {@link
     * #RANGES_AT_ONCE} at a time; false (and nothing kept) where the store ignores ranges.
     */
    private boolean receiveInRanges(Blob wanted, Path ranges, ByteProgress progress) throws IOException {
        Path part = wanted.part();
        long size = wanted.size();
        int chunks = Math.toIntExact((size + chunkBytes - 1) / chunkBytes);
        BitSet done = new BitSet(chunks);
        String header = "chunks of " + chunkBytes + " bytes of " + size;
        boolean partThere = Files.isRegularFile(part);
        if (Files.exists(ranges)) {
            List<String> lines = Files.readAllLines(ranges, StandardCharsets.US_ASCII);
            // NOTE: the list counts only for the part it was written beside, in the same chunks of
            // the same file: else nothing of the part is trusted.
            if (partThere && !lines.isEmpty() && lines.get(0).equals(header) && Files.size(part) == size) {
                for (String line : lines.subList(1, lines.size())) {
                    // A line cut short by a crash is not an index: that chunk is fetched again.
                    if (line.matches("[0-9]{1,9}") && Integer.parseInt(line) < chunks) {
                        done.set(Integer.parseInt(line));
                    }
                }
            } else {
                Files.deleteIfExists(part);
                partThere = false;
            }
        } else if (partThere) {
            // What a single stream left earlier: the chunks wholly inside it are there (a part
            // longer than the file is no prefix of it).
            long have = Files.size(part);
            if (have > size) {
                Files.delete(part);
                partThere = false;
            } else {
                done.set(0, (int) (have / chunkBytes));
            }
        }
        // The list first, then the full-length part: a crash between the two leaves a list whose
        // part is missing or short, which is not trusted.
        StringBuilder listed = new StringBuilder(header).append('\n');
        done.stream().forEach(i -> listed.append(i).append('\n'));
        Files.writeString(ranges, listed, StandardCharsets.US_ASCII);
        try (RandomAccessFile file = new RandomAccessFile(part.toFile(), "rw")) {
            file.setLength(size);
        }
        done.stream().forEach(i -> progress.advance(chunkEnd(i, size) - (long) i * chunkBytes));
        List<Integer> todo = new ArrayList<>();
        for (int i = done.nextClearBit(0); i < chunks; i = done.nextClearBit(i + 1)) {
            todo.add(i);
        }
        try (FileChannel channel = FileChannel.open(part, StandardOpenOption.WRITE);
                OutputStream list = Files.newOutputStream(ranges, StandardOpenOption.APPEND)) {
            inParallel(todo, RANGES_AT_ONCE, "kiln-range-download", index -> {
                receiveRange(wanted, channel, index, progress);
                synchronized (list) {
                    try {
                        list.write((index + "\n").getBytes(StandardCharsets.US_ASCII));
                        list.flush();
                    } catch (IOException e) {
                        throw new HubException(what + ": writing " + ranges + " failed (" + e + ")", e);
                    }
                }
                return index;
            });
        } catch (RangesIgnored e) {
            Files.deleteIfExists(part);
            Files.deleteIfExists(ranges);
            return false;
        }
        return true;
    }

    private long chunkEnd(int index, long size) {
        return Math.min(size, (index + 1L) * chunkBytes);
    }

    /** One chunk's bytes, written at its place in the part file. */
    private void receiveRange(Blob wanted, FileChannel channel, int index, ByteProgress progress) {
        long start = (long) index * chunkBytes;
        long end = chunkEnd(index, wanted.size());
        RemoteModelStore.Body body;
        try {
            body = source.open(wanted.file(), start, end - 1);
        } catch (RemoteModelStore.RangeNotSatisfiable e) {
            throw truncated(wanted, start);
        }
        InputStream in = body.stream();
        if (!body.ranged()) {
            try {
                in.close();
            } catch (IOException ignored) {
                // the answer is not used either way
            }
            throw new RangesIgnored();
        }
        StallWatch watch = new StallWatch(in, timeout);
        long at = start;
        try (in; watch) {
            byte[] buffer = new byte[1 << 20];
            while (at < end) {
                int n;
                try {
                    n = in.read(buffer, 0, (int) Math.min(buffer.length, end - at));
                } catch (IOException e) {
                    String why = watch.stalled() ? "no byte arrived for " + timeout.toMillis()
                            + " ms (HF_HUB_DOWNLOAD_TIMEOUT)" : e.getMessage();
                    throw new HubException(what + ": the download of " + wanted.file() + " broke off in bytes "
                            + start + "-" + (end - 1) + " (" + why + "); the whole chunks are kept in "
                            + wanted.part() + ", run again to resume", e);
                }
                if (n < 0) {
                    throw shortRange(wanted, start, end, at);
                }
                watch.progressed();
                ByteBuffer bytes = ByteBuffer.wrap(buffer, 0, n);
                while (bytes.hasRemaining()) {
                    at += channel.write(bytes, at);
                }
                progress.advance(n);
            }
        } catch (IOException e) {
            throw new HubException(what + ": writing " + wanted.part() + " failed (" + e + "); is the disk full?"
                    + " The whole chunks are kept, run again to resume", e);
        }
    }

    /**
     * A range's answer ended at {@code at}, before its end: a connection that dropped (what is whole
     * is kept), unless the store's copy is shorter than announced, which a one-byte request for the
     * file's last byte tells (416: truncated, nothing is kept).
     */
    private HubException shortRange(Blob wanted, long start, long end, long at) {
        try {
            RemoteModelStore.Body probe = source.open(wanted.file(), wanted.size() - 1, wanted.size() - 1);
            try {
                probe.stream().close();
            } catch (IOException ignored) {
                // only its status mattered
            }
        } catch (RemoteModelStore.RangeNotSatisfiable e) {
            return truncated(wanted, at);
        } catch (HubException e) {
            // no answer either: the connection is what failed
        }
        return new HubException(what + ": the download of " + wanted.file() + " broke off in bytes " + start + "-"
                + (end - 1) + " after " + (at - start) + " of them; the whole chunks are kept in " + wanted.part()
                + ", run again to resume");
    }

    /** The store's copy ends at {@code length}, before the announced size: nothing is kept. */
    private HubException truncated(Blob wanted, long length) {
        Path ranges = wanted.part().resolveSibling(wanted.part().getFileName() + RANGES_SUFFIX);
        try {
            Files.deleteIfExists(ranges);
            Files.deleteIfExists(wanted.part());
        } catch (IOException ignored) {
            // the error below says what matters
        }
        return new HubException(what + ": " + wanted.file() + " is shorter on the server than the " + wanted.size()
                + " bytes announced (a range ended at byte " + length + " and its last byte is not there): the"
                + " server's copy is truncated; nothing was kept");
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
        return inParallel(items, PARALLEL_FILES, "kiln-model-download", task);
    }

    /** Runs {@code task} on every item, {@code threads} at a time; the first failure is thrown. */
    static <T, R> List<R> inParallel(List<T> items, int threads, String threadName, Task<T, R> task) {
        if (items.isEmpty()) {
            return List.of();
        }
        ExecutorService pool = Executors.newFixedThreadPool(Math.min(threads, items.size()), r -> {
            Thread t = new Thread(r, threadName);
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
            // NOTE: the other transfers are stopped and awaited, so that no thread still writes to
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
