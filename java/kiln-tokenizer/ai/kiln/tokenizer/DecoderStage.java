package ai.kiln.tokenizer;

import java.util.ArrayList;
import java.util.List;

/**
 * Streaming form of a {@link TokenDecoder}. Tokens flow through a chain of stages as events:
 * {@code begin}, any number of {@code text} pieces and {@code end} per token, then one
 * {@code finish}. A stage passes on text as soon as later tokens can no longer change it, so that
 * the concatenation of everything emitted equals the one-shot decode of the same tokens. Stages
 * that fuse tokens (Fuse, ByteLevel) emit a single token whose end comes only at {@code finish}.
 */
abstract class DecoderStage {
    /** Where a stage sends its events: the next stage, or the collector of decoded text. */
    interface Output {
        void begin();

        void text(String piece);

        void end();

        void finish();
    }

    abstract void begin(Output out);

    abstract void text(String piece, Output out);

    abstract void end(Output out);

    /** No more tokens: emit what was held back, then pass {@code finish} on. */
    void finish(Output out) {
        out.finish();
    }

    /** Collects emitted text; {@link #take} returns what arrived since the last call. */
    static final class Collector implements Output {
        private final StringBuilder text = new StringBuilder();

        @Override
        public void begin() {
        }

        @Override
        public void text(String piece) {
            text.append(piece);
        }

        @Override
        public void end() {
        }

        @Override
        public void finish() {
        }

        String take() {
            String out = text.toString();
            text.setLength(0);
            return out;
        }
    }

    /** Stages run in order, each feeding the next. */
    static final class Chain extends DecoderStage {
        private final List<DecoderStage> stages;

        Chain(List<DecoderStage> stages) {
            this.stages = List.copyOf(stages);
        }

        private Output outputOf(int index, Output last) {
            if (index == stages.size() - 1) {
                return last;
            }
            DecoderStage next = stages.get(index + 1);
            Output afterNext = outputOf(index + 1, last);
            return new Output() {
                @Override
                public void begin() {
                    next.begin(afterNext);
                }

                @Override
                public void text(String piece) {
                    next.text(piece, afterNext);
                }

                @Override
                public void end() {
                    next.end(afterNext);
                }

                @Override
                public void finish() {
                    next.finish(afterNext);
                }
            };
        }

        private Output cachedFor;
        private Output cachedFirstOutput;

        private Output firstOutput(Output last) {
            if (cachedFor != last) {
                cachedFirstOutput = stages.isEmpty() ? last : outputOf(0, last);
                cachedFor = last;
            }
            return cachedFirstOutput;
        }

        @Override
        void begin(Output out) {
            if (stages.isEmpty()) {
                out.begin();
            } else {
                stages.get(0).begin(firstOutput(out));
            }
        }

        @Override
        void text(String piece, Output out) {
            if (stages.isEmpty()) {
                out.text(piece);
            } else {
                stages.get(0).text(piece, firstOutput(out));
            }
        }

        @Override
        void end(Output out) {
            if (stages.isEmpty()) {
                out.end();
            } else {
                stages.get(0).end(firstOutput(out));
            }
        }

        @Override
        void finish(Output out) {
            if (stages.isEmpty()) {
                out.finish();
            } else {
                stages.get(0).finish(firstOutput(out));
            }
        }
    }

    /** Fuses all tokens; each token's bytes are decoded as UTF-8, holding back incomplete characters. */
    static final class ByteLevelStage extends DecoderStage {
        private final StringBuilder token = new StringBuilder();
        private final Utf8Pieces bytes = new Utf8Pieces();
        private boolean begun;

        @Override
        void begin(Output out) {
            if (!begun) {
                out.begin();
                begun = true;
            }
            token.setLength(0);
        }

        @Override
        void text(String piece, Output out) {
            token.append(piece);
        }

        @Override
        void end(Output out) {
            String decoded = bytes.append(ByteLevelAlphabet.tokenBytes(token.toString()));
            if (!decoded.isEmpty()) {
                out.text(decoded);
            }
        }

        @Override
        void finish(Output out) {
            if (!begun) {
                out.begin();
                begun = true;
            }
            String rest = bytes.finish();
            if (!rest.isEmpty()) {
                out.text(rest);
            }
            out.end();
            out.finish();
        }
    }

    /** Replaces a pattern in each token, holding back only what could still become part of a match. */
    static final class ReplaceStage extends DecoderStage {
        private final TokenDecoder.Replace replace;
        private final StringBuilder pending = new StringBuilder();

        ReplaceStage(TokenDecoder.Replace replace) {
            this.replace = replace;
        }

        @Override
        void begin(Output out) {
            pending.setLength(0);
            out.begin();
        }

        @Override
        void text(String piece, Output out) {
            pending.append(piece);
            if (!(replace.pattern() instanceof TextPattern.Literal literal)) {
                return; // a regex match may span pieces: wait for the whole token
            }
            String pattern = literal.literal();
            String buffered = pending.toString();
            int lastMatchEnd = 0;
            StringBuilder emitted = new StringBuilder();
            int at;
            while ((at = buffered.indexOf(pattern, lastMatchEnd)) >= 0) {
                emitted.append(buffered, lastMatchEnd, at).append(replace.content());
                lastMatchEnd = at + pattern.length();
            }
            int keep = buffered.length();
            for (int held = Math.min(pattern.length() - 1, buffered.length() - lastMatchEnd); held > 0; held--) {
                if (pattern.startsWith(buffered.substring(buffered.length() - held))) {
                    keep = buffered.length() - held;
                    break;
                }
            }
            emitted.append(buffered, lastMatchEnd, keep);
            pending.delete(0, keep);
            if (emitted.length() > 0) {
                out.text(emitted.toString());
            }
        }

        @Override
        void end(Output out) {
            if (pending.length() > 0) {
                out.text(replace.pattern().replaceAll(pending.toString(), replace.content()));
                pending.setLength(0);
            }
            out.end();
        }
    }

    /** Collects runs of byte tokens and releases them when the run ends. */
    static final class ByteFallbackStage extends DecoderStage {
        private final StringBuilder token = new StringBuilder();
        private final java.io.ByteArrayOutputStream run = new java.io.ByteArrayOutputStream();

        @Override
        void begin(Output out) {
            token.setLength(0);
        }

        @Override
        void text(String piece, Output out) {
            token.append(piece);
        }

        @Override
        void end(Output out) {
            String complete = token.toString();
            int b = TokenDecoder.ByteFallback.byteOfToken(complete);
            if (b >= 0) {
                run.write(b);
                return;
            }
            flushRun(out);
            emitToken(complete, out);
        }

        private void flushRun(Output out) {
            List<String> tokens = new ArrayList<>();
            TokenDecoder.ByteFallback.flushRun(run, tokens);
            for (String decoded : tokens) {
                emitToken(decoded, out);
            }
        }

        private static void emitToken(String text, Output out) {
            out.begin();
            out.text(text);
            out.end();
        }

        @Override
        void finish(Output out) {
            flushRun(out);
            out.finish();
        }
    }

    /** Turns all tokens into one. */
    static final class FuseStage extends DecoderStage {
        private boolean begun;

        @Override
        void begin(Output out) {
            if (!begun) {
                out.begin();
                begun = true;
            }
        }

        @Override
        void text(String piece, Output out) {
            out.text(piece);
        }

        @Override
        void end(Output out) {
        }

        @Override
        void finish(Output out) {
            if (!begun) {
                out.begin();
                begun = true;
            }
            out.end();
            out.finish();
        }
    }

    /** Strips leading and trailing content characters of each token; trailing ones wait for the token's end. */
    static final class StripStage extends DecoderStage {
        private final TokenDecoder.Strip strip;
        private int leadingStripped;
        private boolean leadingDone;
        private final StringBuilder trailing = new StringBuilder();
        private int trailingCount;

        StripStage(TokenDecoder.Strip strip) {
            this.strip = strip;
        }

        @Override
        void begin(Output out) {
            leadingStripped = 0;
            leadingDone = strip.start() == 0;
            trailing.setLength(0);
            trailingCount = 0;
            out.begin();
        }

        @Override
        void text(String piece, Output out) {
            StringBuilder emitted = new StringBuilder();
            for (int i = 0; i < piece.length(); ) {
                int cp = piece.codePointAt(i);
                i += Character.charCount(cp);
                boolean isContent = cp == strip.content();
                if (!leadingDone) {
                    if (isContent) {
                        leadingStripped++;
                        leadingDone = leadingStripped == strip.start();
                        continue;
                    }
                    leadingDone = true;
                }
                if (!isContent) {
                    emitted.append(trailing).appendCodePoint(cp);
                    trailing.setLength(0);
                    trailingCount = 0;
                    continue;
                }
                trailing.appendCodePoint(cp);
                trailingCount++;
                if (trailingCount > strip.stop()) {
                    // More content characters than can be stripped: the oldest one stays.
                    int first = trailing.codePointAt(0);
                    emitted.appendCodePoint(first);
                    trailing.delete(0, Character.charCount(first));
                    trailingCount--;
                }
            }
            if (emitted.length() > 0) {
                out.text(emitted.toString());
            }
        }

        @Override
        void end(Output out) {
            trailing.setLength(0);
            trailingCount = 0;
            out.end();
        }
    }

    /** Metaspace back to spaces; the first token loses its "▁" characters. */
    static final class MetaspaceStage extends DecoderStage {
        private final TokenDecoder.Metaspace metaspace;
        private int tokenIndex;
        private boolean inFirstToken;

        MetaspaceStage(TokenDecoder.Metaspace metaspace) {
            this.metaspace = metaspace;
        }

        @Override
        void begin(Output out) {
            inFirstToken = tokenIndex == 0;
            tokenIndex++;
            out.begin();
        }

        @Override
        void text(String piece, Output out) {
            out.text(metaspace.replace(piece, inFirstToken));
        }

        @Override
        void end(Output out) {
            out.end();
        }
    }

    /** No decoder: tokens joined with single spaces, as one token. */
    static final class JoinWithSpacesStage extends DecoderStage {
        private boolean begun;

        @Override
        void begin(Output out) {
            if (!begun) {
                out.begin();
                begun = true;
            } else {
                out.text(" ");
            }
        }

        @Override
        void text(String piece, Output out) {
            out.text(piece);
        }

        @Override
        void end(Output out) {
        }

        @Override
        void finish(Output out) {
            if (!begun) {
                out.begin();
                begun = true;
            }
            out.end();
            out.finish();
        }
    }
}
