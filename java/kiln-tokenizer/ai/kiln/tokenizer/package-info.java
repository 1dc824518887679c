/**
 * Hugging Face tokenizers in Java: {@link ai.kiln.tokenizer.Tokenizer} reads a model directory's
 * tokenizer.json (and tokenizer_config.json, chat_template.jinja) and produces exactly the ids and
 * text of the reference Python {@code tokenizers} library, plus chat prompts exactly as
 * transformers' {@code apply_chat_template} renders them.
 *
 * <h2>Supported tokenizer.json components</h2>
 * <ul>
 *   <li>model: BPE (merges as "a b" strings or pairs; {@code ignore_merges}, {@code byte_fallback},
 *       {@code unk_token}/{@code fuse_unk}, {@code continuing_subword_prefix}, {@code end_of_word_suffix})</li>
 *   <li>normalizers: NFC, NFD, NFKC, NFKD, Lowercase, Strip, StripAccents, Replace, Prepend, Sequence</li>
 *   <li>pre-tokenizers: Split (regex or string, all five behaviors, invert), ByteLevel, Metaspace
 *       (prepend_scheme always/first/never, split), Digits, Whitespace, WhitespaceSplit, Punctuation, Sequence.
 *       Regexes are Oniguruma's; they are translated to java.util.regex ({@code OnigurumaRegex}), and the
 *       GPT-2, Llama 3 and Qwen 2 patterns run on hand-written matchers checked against the regex</li>
 *   <li>post-processors: TemplateProcessing, ByteLevel, RobertaProcessing, BertProcessing, Sequence</li>
 *   <li>decoders: ByteLevel, Replace, ByteFallback, Fuse, Strip, Metaspace, Sequence (none: tokens joined by spaces)</li>
 *   <li>added tokens: matched before the model, leftmost-longest, honoring special, lstrip, rstrip,
 *       normalized and single_word</li>
 * </ul>
 * Anything else (Unigram and WordPiece models, the Precompiled normalizer, BPE dropout, ...) is
 * refused when loading with an {@link ai.kiln.tokenizer.UnsupportedComponentException} naming the
 * component and the file; malformed files with a {@link ai.kiln.tokenizer.TokenizerLoadException}.
 *
 * <h2>Behaviors worth knowing</h2>
 * <ul>
 *   <li>Lone surrogates: Rust strings cannot hold them, and the reference's Python binding refuses
 *       such text ({@code TypeError: TextInputSequence must be str}). {@code encode} throws an
 *       IllegalArgumentException naming the index.</li>
 *   <li>The reference is the {@code tokenizers} library. transformers can differ on top of it: its
 *       decode may apply {@code clean_up_tokenization_spaces}, and transformers 5 encodes Llama 2's
 *       " hello" without the extra "▁" token that tokenizer.json's normalizer produces. Kiln follows
 *       tokenizer.json, as {@code tokenizers} does. Whether BOS is added is the post-processor's
 *       decision: the npm Llama 3 tokenizer.json used in tests has a ByteLevel post-processor, so
 *       {@code encode(text, true)} adds no BOS for it, exactly as {@code tokenizers}.</li>
 *   <li>Decoding ignores ids outside the vocabulary, as the reference does. Where the reference's Strip
 *       decoder panics (an empty string with {@code stop > 0}), Kiln returns "".</li>
 *   <li>The incremental decoder emits text only when later tokens cannot change it: incomplete UTF-8
 *       sequences, byte-fallback runs (the whole run becomes U+FFFD per byte if it ends invalid) and
 *       strippable leading or trailing characters are held back; the pieces always add up to the
 *       one-shot decode.</li>
 *   <li>Chat templates run on Jinjava set up to behave like transformers' Jinja2 environment; see
 *       {@code ChatTemplate} for the few Jinja2 features that are not available (loop controls,
 *       {@code loop.previtem}).</li>
 * </ul>
 *
 * <p>The words a BPE model has tokenized are cached (65,536 entries by default; the system property
 * {@code kiln.tokenizer.wordCacheEntries}, read when a tokenizer loads, changes the size, 0 disables).
 */
package ai.kiln.tokenizer;
