package ai.kiln.tokenizer;

import java.util.List;

/** tokenizer.json's "post_processor": adds special tokens (BOS, EOS, ...) around an encoded sequence. */
sealed interface PostProcessor {
    /** Adds this processor's special tokens around {@code ids} (only called with add_special_tokens). */
    int[] addSpecialTokens(int[] ids);

    /** Template of a single sequence: pieces are either special token ids or the sequence itself. */
    record Template(List<int[]> pieces) implements PostProcessor {
        /** Marks where the encoded sequence goes in {@link #pieces}. */
        static final int[] SEQUENCE = new int[0];

        public Template {
            pieces = List.copyOf(pieces);
        }

        @Override
        public int[] addSpecialTokens(int[] ids) {
            IntList out = new IntList(ids.length + 4);
            for (int[] piece : pieces) {
                out.addAll(piece == SEQUENCE ? ids : piece);
            }
            return out.toArray();
        }
    }

    /** The ByteLevel post-processor only adjusts offsets, which Kiln does not report. */
    record ByteLevelOffsets() implements PostProcessor {
        @Override
        public int[] addSpecialTokens(int[] ids) {
            return ids;
        }
    }

    record Sequence(List<PostProcessor> processors) implements PostProcessor {
        public Sequence {
            processors = List.copyOf(processors);
        }

        @Override
        public int[] addSpecialTokens(int[] ids) {
            for (PostProcessor processor : processors) {
                ids = processor.addSpecialTokens(ids);
            }
            return ids;
        }
    }
}
