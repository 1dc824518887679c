package ai.kiln.backend;

import static ai.kiln.backend.TensorChecks.requireContiguous;
import static ai.kiln.backend.TensorChecks.requireDType;
import static ai.kiln.backend.TensorChecks.requireRank;
import static ai.kiln.backend.TensorChecks.shapeError;

import ai.kiln.tensor.DType;
import ai.kiln.tensor.Tensor;
import java.util.Arrays;

/**
 * The shape contract of each {@link Backend} op, checked the same way by every backend before it
 * calls native code. Element types are checked by each backend, since what it accepts differs.
 */
public final class OpShapes {

    private OpShapes() {
    }

    /** out [T, H]; table [V, H]; ids [T]. */
    public static void embedding(Tensor out, Tensor table, Tensor ids) {
        requireRank(table, 2, "embedding table");
        requireContiguous(out, "embedding out");
        if (out.size(0) != ids.numel() || out.rowElements() != table.size(1)) {
            throw shapeError("embedding", out, table, ids);
        }
    }

    /**
     * destination [N, K] and scales [N] (F32), contiguous; source: a float matrix of N x K elements.
     * The destination's element type is checked by each backend.
     */
    public static void quantizeRows(Tensor destination, Tensor scales, Tensor source) {
        requireContiguous(destination, "quantizeRows destination");
        requireContiguous(scales, "quantizeRows scales");
        requireContiguous(source, "quantizeRows source");
        if (scales.dtype() != DType.F32 || destination.rank() != 2 || source.numel() != destination.numel()
                || scales.numel() != destination.size(0) || !source.dtype().isFloat()) {
            throw new BackendException("quantizeRows of " + source + " into " + destination + " with scales "
                    + scales + ": shapes or types do not fit");
        }
    }

    /** out, x, residual (may be null) [rows, dim]; weight [dim]. */
    public static void rmsNorm(Tensor out, Tensor x, Tensor residual, Tensor weight) {
        long dim = x.rowElements();
        if (out.rows() != x.rows() || out.rowElements() != dim || weight.numel() != dim
                || (residual != null && (residual.rows() != x.rows() || residual.rowElements() != dim))) {
            throw shapeError("rmsNorm", out, x, residual, weight);
        }
    }

    /** x [T, heads, D]; weight [D]. */
    public static void headRmsNorm(Tensor x, Tensor weight) {
        requireRank(x, 3, "headRmsNorm x");
        if (weight.numel() != x.size(2)) {
            throw shapeError("headRmsNorm", x, weight);
        }
    }

    /** q [T, Hq, D]; k [T, Hk, D]; positions [T]; cosSin [maxPosition, D]. */
    public static void rotary(Tensor q, Tensor k, Tensor positions, Tensor cosSin) {
        requireRank(q, 3, "rotary q");
        requireRank(k, 3, "rotary k");
        long headDim = q.size(2);
        if (k.size(2) != headDim || q.size(0) != k.size(0) || positions.numel() != q.size(0)
                || cosSin.size(1) != headDim) {
            throw shapeError("rotary", q, k, positions, cosSin);
        }
    }

    /** out [M, N]; x [M, K]; w [N, K] contiguous; bias [N] or null. */
    public static void gemm(Tensor out, Tensor x, Tensor w, Tensor bias) {
        requireRank(w, 2, "gemm w");
        requireContiguous(w, "gemm w");
        if (x.rowElements() != w.size(1) || out.rows() != x.rows() || out.rowElements() != w.size(0)
                || (bias != null && bias.numel() != w.size(0))) {
            throw shapeError("gemm", out, x, w, bias);
        }
    }

    /** out [T, I]; gateUp [T, 2 I]; both contiguous. */
    public static void siluAndMul(Tensor out, Tensor gateUp) {
        requireContiguous(out, "siluAndMul out");
        requireContiguous(gateUp, "siluAndMul gateUp");
        if (out.rows() != gateUp.rows() || 2 * out.rowElements() != gateUp.rowElements()) {
            throw shapeError("siluAndMul", out, gateUp);
        }
    }

    /** k, v [T, Hk, D]; kCache, vCache [numBlocks, blockSize, Hk, D]; slotMapping [T]. */
    public static void writeKvCache(Tensor k, Tensor v, Tensor kCache, Tensor vCache, Tensor slotMapping) {
        requireRank(kCache, 4, "writeKvCache kCache");
        long row = kCache.size(2) * kCache.size(3);
        if (k.rowElements() != row || v.rowElements() != row || k.rows() != v.rows()
                || slotMapping.numel() != k.rows() || !Arrays.equals(kCache.shape(), vCache.shape())) {
            throw shapeError("writeKvCache", k, v, kCache, vCache, slotMapping);
        }
    }

    /** out, q [T, Hq, D]; kCache, vCache [numBlocks, blockSize, Hk, D]; metadata arrays long enough. */
    public static void attention(Tensor out, Tensor q, Tensor kCache, Tensor vCache, AttentionMetadata metadata) {
        requireRank(q, 3, "attention q");
        requireRank(kCache, 4, "attention kCache");
        long headDim = q.size(2);
        if (out.rows() != q.rows() || out.rowElements() != q.size(1) * headDim || kCache.size(3) != headDim
                || q.rows() != metadata.numTokens() || !Arrays.equals(kCache.shape(), vCache.shape())
                || metadata.blockTables().numel() < (long) metadata.numSeqs() * metadata.maxBlocksPerSeq()
                || metadata.queryStart().numel() < metadata.numSeqs() + 1
                || metadata.seqLens().numel() < metadata.numSeqs()) {
            throw shapeError("attention", out, q, kCache, vCache, metadata.blockTables());
        }
    }

    /** out [R, H] contiguous; in [T, H]; rows [R]. */
    public static void gatherRows(Tensor out, Tensor in, Tensor rows) {
        requireContiguous(out, "gatherRows out");
        if (out.rows() != rows.numel() || out.rowElements() != in.rowElements()) {
            throw shapeError("gatherRows", out, in, rows);
        }
    }

    /** logits [B, V] contiguous; ids [>= B]; logprobs [>= B] or null. */
    public static void argmax(Tensor logits, Tensor ids, Tensor logprobs) {
        requireContiguous(logits, "argmax logits");
        if (ids.numel() < logits.rows() || (logprobs != null && logprobs.numel() < logits.rows())) {
            throw shapeError("argmax", logits, ids, logprobs);
        }
    }

    /**
     * logits [B, V] F32 contiguous; rows [>= B, ROW_WORDS] I32; penalties [P, V] I32 or null; ids
     * [>= B] I32; logprobs [>= B, LOGPROB_WORDS] I32 or null.
     */
    public static void sample(Tensor logits, Tensor rows, Tensor penalties, Tensor ids, Tensor logprobs) {
        requireDType(logits, DType.F32, "sample logits");
        requireDType(rows, DType.I32, "sample rows");
        requireDType(ids, DType.I32, "sample ids");
        if (penalties != null) {
            requireDType(penalties, DType.I32, "sample penalties");
        }
        if (logprobs != null) {
            requireDType(logprobs, DType.I32, "sample logprobs");
        }
        requireContiguous(logits, "sample logits");
        requireContiguous(rows, "sample rows");
        long batch = logits.rows();
        if (rows.numel() < batch * SampleWords.ROW_WORDS || ids.numel() < batch
                || (penalties != null && (penalties.rank() != 2 || penalties.size(1) != logits.rowElements()))
                || (logprobs != null && logprobs.numel() < batch * SampleWords.LOGPROB_WORDS)) {
            throw shapeError("sample", logits, rows, penalties, ids, logprobs);
        }
    }

    /** {@code penalties [P, V] I32 contiguous; 0 <= row < P; ids [>= numPrompt + numOutput + numSuppressed] I32}. */
    public static void resetPenaltyRow(Tensor penalties, int row, Tensor ids, int numPrompt, int numOutput,
            int numSuppressed) {
        requireDType(penalties, DType.I32, "resetPenaltyRow penalties");
        requireDType(ids, DType.I32, "resetPenaltyRow ids");
        requireRank(penalties, 2, "resetPenaltyRow penalties");
        requireContiguous(penalties, "resetPenaltyRow penalties");
        long count = (long) numPrompt + numOutput + numSuppressed;
        if (row < 0 || row >= penalties.size(0) || numPrompt < 0 || numOutput < 0 || numSuppressed < 0
                || ids.numel() < count) {
            throw new BackendException("resetPenaltyRow: row " + row + " of " + penalties + ", " + numPrompt + " + "
                    + numOutput + " + " + numSuppressed + " ids in " + ids);
        }
    }

    /** logits [B, V] F32 contiguous; masks [>= numRows, ceil(V / 32)] I32; rows [>= numRows] I32. */
    public static void maskLogits(Tensor logits, Tensor masks, Tensor rows, int numRows) {
        requireDType(logits, DType.F32, "maskLogits logits");
        requireDType(masks, DType.I32, "maskLogits masks");
        requireDType(rows, DType.I32, "maskLogits rows");
        requireContiguous(logits, "maskLogits logits");
        requireContiguous(masks, "maskLogits masks");
        long words = (logits.rowElements() + 31) / 32;
        if (numRows < 0 || masks.rowElements() != words || masks.rows() < numRows || rows.numel() < numRows) {
            throw new BackendException("maskLogits: " + numRows + " rows of masks " + masks + " (rows of " + words
                    + " words) and rows " + rows + " over logits " + logits);
        }
    }

    /** logits [B, V] F32 contiguous; entries [>= count, 3] I32. */
    public static void addLogitBias(Tensor logits, Tensor entries, int count) {
        requireDType(logits, DType.F32, "addLogitBias logits");
        requireDType(entries, DType.I32, "addLogitBias entries");
        requireContiguous(logits, "addLogitBias logits");
        if (count < 0 || entries.rowElements() != 3 || entries.rows() < count) {
            throw new BackendException("addLogitBias: " + count + " entries of " + entries + " (rows of 3)");
        }
    }
}
