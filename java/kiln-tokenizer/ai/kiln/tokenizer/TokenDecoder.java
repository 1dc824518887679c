package ai.kiln.tokenizer;

import java.util.ArrayList;
import java.util.List;

/**
 * tokenizer.json's "decoder": turns the tokens of a sequence back into text. Each kind exists
 * twice: {@link #decodeChain} mirrors Hugging Face's decode_chain on a whole list of tokens (and
 * is what one-shot decoding uses), {@link #newStage} builds the streaming equivalent used by the
 * incremental decoder, which emits text as soon as no later token can change it.
 */
sealed interface TokenDecoder {
    List<String> decodeChain(List<String> tokens);

    DecoderStage newStage();

    /** Byte-level: every token maps back to bytes, and the whole sequence is decoded as UTF-8. */
    record ByteLevel() implements TokenDecoder {
        @Override
        public List<String> decodeChain(List<String> tokens) {
            java.io.ByteArrayOutputStream bytes = new java.io.ByteArrayOutputStream();
            for (String token : tokens) {
                bytes.writeBytes(ByteLevelAlphabet.tokenBytes(token));
            }
            return List.of(Utf8.decodeLossy(bytes.toByteArray(), bytes.size()));
        }

        @Override
        public DecoderStage newStage() {
            return new DecoderStage.ByteLevelStage();
        }
    }

    record Replace(TextPattern pattern, String content) implements TokenDecoder {
        @Override
        public List<String> decodeChain(List<String> tokens) {
            List<String> out = new ArrayList<>(tokens.size());
            for (String token : tokens) {
                out.add(pattern.replaceAll(token, content));
            }
            return out;
        }

        @Override
        public DecoderStage newStage() {
            return new DecoderStage.ReplaceStage(this);
        }
    }

    /**
     * Runs of byte tokens ({@code <0x0A>}) become the text they encode when the run is valid
     * UTF-8, otherwise one U+FFFD per byte.
     */
    record ByteFallback() implements TokenDecoder {
        @Override
        public List<String> decodeChain(List<String> tokens) {
            List<String> out = new ArrayList<>(tokens.size());
            java.io.ByteArrayOutputStream run = new java.io.ByteArrayOutputStream();
            for (String token : tokens) {
                int b = byteOfToken(token);
                if (b >= 0) {
                    run.write(b);
                    continue;
                }
                flushRun(run, out);
                out.add(token);
            }
            flushRun(run, out);
            return out;
        }

        static void flushRun(java.io.ByteArrayOutputStream run, List<String> out) {
            if (run.size() == 0) {
                return;
            }
            byte[] bytes = run.toByteArray();
            if (Utf8.isValid(bytes, bytes.length)) {
                out.add(Utf8.decodeLossy(bytes, bytes.length));
            } else {
                for (int i = 0; i < bytes.length; i++) {
                    out.add(String.valueOf(Utf8.REPLACEMENT));
                }
            }
            run.reset();
        }

        /**
         * The byte of a token written {@code <0xNN>}, or -1. As Hugging Face: six UTF-8 bytes,
         * "<0x" prefix, ">" suffix, and the middle parsed as Rust's u8::from_str_radix(16) would
         * (which accepts a leading '+').
         */
        static int byteOfToken(String token) {
            // Six UTF-8 bytes with an ASCII frame: either six ASCII chars, or one two-byte char in
            // the middle, which Rust fails to parse as hex.
            if (token.length() != 6 || !token.startsWith("<0x") || token.charAt(5) != '>'
                    || token.charAt(3) > 127 || token.charAt(4) > 127) {
                return -1;
            }
            char high = token.charAt(3);
            char low = token.charAt(4);
            if (high == '+') {
                return Character.digit(low, 16);
            }
            int h = Character.digit(high, 16);
            int l = Character.digit(low, 16);
            return h < 0 || l < 0 ? -1 : h * 16 + l;
        }

        @Override
        public DecoderStage newStage() {
            return new DecoderStage.ByteFallbackStage();
        }
    }

    /** Joins all tokens into one. */
    record Fuse() implements TokenDecoder {
        @Override
        public List<String> decodeChain(List<String> tokens) {
            return List.of(String.join("", tokens));
        }

        @Override
        public DecoderStage newStage() {
            return new DecoderStage.FuseStage();
        }
    }

    /** Removes up to {@code start} leading and {@code stop} trailing {@code content} characters of each token. */
    record Strip(int content, int start, int stop) implements TokenDecoder {
        public Strip {
            if (start < 0 || stop < 0) {
                throw new IllegalArgumentException("negative strip count");
            }
        }

        @Override
        public List<String> decodeChain(List<String> tokens) {
            List<String> out = new ArrayList<>(tokens.size());
            for (String token : tokens) {
                int[] cps = token.codePoints().toArray();
                int startCut = 0;
                for (int i = 0; i < Math.min(start, cps.length); i++) {
                    if (cps[i] != content) {
                        break;
                    }
                    startCut = i + 1;
                }
                int stopCut = cps.length;
                for (int i = 0; i < Math.min(stop, cps.length); i++) {
                    int index = cps.length - i - 1;
                    if (cps[index] != content) {
                        break;
                    }
                    stopCut = index;
                }
                // Hugging Face panics when the cuts cross (e.g. " " with start=stop=1); Kiln returns "".
                out.add(startCut >= stopCut ? "" : new String(cps, startCut, stopCut - startCut));
            }
            return out;
        }

        @Override
        public DecoderStage newStage() {
            return new DecoderStage.StripStage(this);
        }
    }

    /**
     * SentencePiece's "▁" back to spaces; in the first token, unless the prepend scheme is
     * "never", every "▁" is removed instead (the one the pre-tokenizer added, and, as in Hugging
     * Face, any other in that token).
     */
    record Metaspace(int replacement, boolean stripFirstToken) implements TokenDecoder {
        @Override
        public List<String> decodeChain(List<String> tokens) {
            List<String> out = new ArrayList<>(tokens.size());
            for (int t = 0; t < tokens.size(); t++) {
                out.add(replace(tokens.get(t), t == 0));
            }
            return out;
        }

        String replace(String token, boolean firstToken) {
            StringBuilder out = new StringBuilder(token.length());
            for (int i = 0; i < token.length(); ) {
                int cp = token.codePointAt(i);
                i += Character.charCount(cp);
                if (cp != replacement) {
                    out.appendCodePoint(cp);
                } else if (!(firstToken && stripFirstToken)) {
                    out.append(' ');
                }
            }
            return out.toString();
        }

        @Override
        public DecoderStage newStage() {
            return new DecoderStage.MetaspaceStage(this);
        }
    }

    record Sequence(List<TokenDecoder> decoders) implements TokenDecoder {
        public Sequence {
            decoders = List.copyOf(decoders);
        }

        @Override
        public List<String> decodeChain(List<String> tokens) {
            for (TokenDecoder decoder : decoders) {
                tokens = decoder.decodeChain(tokens);
            }
            return tokens;
        }

        @Override
        public DecoderStage newStage() {
            List<DecoderStage> stages = new ArrayList<>();
            for (TokenDecoder decoder : decoders) {
                stages.add(decoder.newStage());
            }
            return new DecoderStage.Chain(stages);
        }
    }

    /** No decoder in tokenizer.json: Hugging Face joins the tokens with spaces. */
    record JoinWithSpaces() implements TokenDecoder {
        @Override
        public List<String> decodeChain(List<String> tokens) {
            return List.of(String.join(" ", tokens));
        }

        @Override
        public DecoderStage newStage() {
            return new DecoderStage.JoinWithSpacesStage();
        }
    }
}
