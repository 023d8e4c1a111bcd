#!/usr/bin/python3
"""clip_bpe_ref.py: an independent reference for visiond's CLIP tokenizer (src/text/bpe.c).

Written from the algorithm of CLIP's byte-level BPE (GPT-2's byte alphabet, '</w>' word ends,
merges by rank) and Hugging Face's tokenizer.json semantics for CLIP (NFC, white space runs to
one space, per-character lower case, added tokens split out first, CLIP's split pattern), with
Debian's python3-regex for the Unicode classes. It shares no code with the C side.

  clip_bpe_ref.py build DIR [N_CASES] [SEED]
      learns a vocabulary (BPE merges) from a corpus of generated text, writes
      DIR/tokenizer.json (the Hugging Face layout OpenCLIP exports), DIR/cases.json (strings)
      and DIR/expected.json (the ids of each string at context length 77, pad id 0)
"""
import json
import random
import sys
import unicodedata

import regex

SPECIALS = ["<|startoftext|>", "<|endoftext|>"]
PATTERN_JSON = r"'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+"
# Rust's \s is the White_Space property; say so explicitly rather than trust a \s.
PIECE = regex.compile(r"'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\p{White_Space}\p{L}\p{N}]+")
SPACES = regex.compile(r"\p{White_Space}+")


def byte_alphabet():
    """GPT-2's map from bytes to printable characters."""
    keep = [b for b in range(256) if 33 <= b <= 126 or 161 <= b <= 172 or b >= 174]
    table, extra = {}, 0
    for b in range(256):
        if b in keep:
            table[b] = chr(b)
        else:
            table[b] = chr(256 + extra)
            extra += 1
    return table


BYTES = byte_alphabet()


def normalise(text):
    text = unicodedata.normalize("NFC", text)
    text = SPACES.sub(" ", text)
    return "".join(c.lower() for c in text)  # per character: no final-sigma rule


def pieces(text):
    """Yields ('special', token) or ('word', byte-alphabet string)."""
    rest = text
    while rest:
        hits = [(rest.find(s), s) for s in SPECIALS if s in rest]
        if hits:
            at, special = min(hits)
        else:
            at, special = len(rest), None
        for m in PIECE.findall(rest[:at]):
            yield "word", "".join(BYTES[b] for b in m.encode("utf-8"))
        if special is None:
            return
        yield "special", special
        rest = rest[at + len(special):]


def bpe(word, ranks):
    symbols = list(word[:-1]) + [word[-1] + "</w>"]
    while len(symbols) > 1:
        ranked = [(ranks[p], p) for p in zip(symbols, symbols[1:]) if p in ranks]
        if not ranked:
            break
        first, second = min(ranked)[1]
        merged, i = [], 0
        while i < len(symbols):
            if i + 1 < len(symbols) and symbols[i] == first and symbols[i + 1] == second:
                merged.append(first + second)
                i += 2
            else:
                merged.append(symbols[i])
                i += 1
        symbols = merged
    return symbols


def learn(corpus, n_merges):
    counts = {}
    for line in corpus:
        for kind, w in pieces(normalise(line)):
            if kind == "word":
                key = tuple(w[:-1]) + (w[-1] + "</w>",)
                counts[key] = counts.get(key, 0) + 1
    merges = []
    for _ in range(n_merges):
        pairs = {}
        for word, c in counts.items():
            for p in zip(word, word[1:]):
                pairs[p] = pairs.get(p, 0) + c
        if not pairs:
            break
        best = max(pairs.items(), key=lambda kv: (kv[1], kv[0]))[0]
        merges.append(best)
        new = {}
        for word, c in counts.items():
            out, i = [], 0
            while i < len(word):
                if i + 1 < len(word) and (word[i], word[i + 1]) == best:
                    out.append(word[i] + word[i + 1])
                    i += 2
                else:
                    out.append(word[i])
                    i += 1
            new[tuple(out)] = new.get(tuple(out), 0) + c
        counts = new
    return merges


def tokenizer_json(merges):
    base = [BYTES[b] for b in range(256)]
    vocab = base + [c + "</w>" for c in base]
    seen = set(vocab)
    for a, b in merges:
        if a + b not in seen:
            vocab.append(a + b)
            seen.add(a + b)
    vocab += SPECIALS
    ids = {t: i for i, t in enumerate(vocab)}
    start, end = ids[SPECIALS[0]], ids[SPECIALS[1]]
    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": [
            {"id": ids[s], "content": s, "single_word": False, "lstrip": False, "rstrip": False,
             "normalized": True, "special": True} for s in SPECIALS],
        "normalizer": {"type": "Sequence", "normalizers": [
            {"type": "NFC"},
            {"type": "Replace", "pattern": {"Regex": r"\s+"}, "content": " "},
            {"type": "Lowercase"}]},
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": PATTERN_JSON}, "behavior": "Removed",
             "invert": True},
            {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True,
             "use_regex": False}]},
        "post_processor": {"type": "RobertaProcessing", "sep": [SPECIALS[1], end],
                           "cls": [SPECIALS[0], start], "trim_offsets": False,
                           "add_prefix_space": False},
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True,
                    "use_regex": True},
        "model": {"type": "BPE", "dropout": None, "unk_token": SPECIALS[1],
                  "continuing_subword_prefix": "", "end_of_word_suffix": "</w>",
                  "fuse_unk": False, "vocab": ids,
                  # half the merges in the older "a b" form, half as pairs: both are read
                  "merges": [f"{a} {b}" if i % 2 else [a, b] for i, (a, b) in enumerate(merges)]},
    }


def encode(text, vocab, ranks, context=77, pad=0):
    ids = []
    for kind, w in pieces(normalise(text)):
        if kind == "special":
            ids.append(vocab[w])
        else:
            ids += [vocab.get(s, vocab[SPECIALS[1]]) for s in bpe(w, ranks)]
    ids = ids[:context - 2]
    out = [vocab[SPECIALS[0]]] + ids + [vocab[SPECIALS[1]]]
    return out + [pad] * (context - len(out))


WORDS = ("a photo of the dog cat on beach at night with my family in 2019 sunset mountain "
         "don't it's we're they've I'm you'll he'd LOOK Überraschung café naïve façade "
         "straße ΣΟΦΙΑ σοφός İstanbul ǅemal ﬁle Ⅻ ½ ² ٣ 東京 タワー 서울 Москва ñandú").split()
PUNCT = list("!?.,;:'\"-_()[]{}<>/\\|@#$%^&*+=~`") + ["...", "--", "'s", "''", "<|", "|>"]
EMOJI = ["😀", "👍🏽", "👨‍👩‍👧", "🇫🇷", "❤️", "🐶", "✨"]
SPACE = [" ", "  ", "\t", "\n", "\u00a0", "\u3000", "\u2028", " \r\n "]
ODD = ["e\u0301", "A\u030a", "\u0130", "\u1e9e", "x\u200dy", "\u00ad", "0x1F", "3.14", "1,000",
       "<|startoftext|>", "<|endoftext|>", "<|ENDOFTEXT|>"]


def generate(rng, n):
    cases = ["", " ", "a", "A PHOTO OF A DOG", "don't stop", "!<|endoftext|>", "x" * 300,
             " ".join(["word"] * 100)]
    while len(cases) < n:
        parts = []
        for _ in range(rng.randint(40, 120) if rng.random() < 0.05 else rng.randint(1, 14)):
            pool = rng.choice([WORDS, WORDS, WORDS, PUNCT, EMOJI, SPACE, ODD])
            parts.append(rng.choice(pool))
            if rng.random() < 0.6:
                parts.append(rng.choice(SPACE[:2]))
        cases.append("".join(parts))
    return cases


def main():
    if len(sys.argv) < 3 or sys.argv[1] != "build":
        sys.exit(__doc__)
    out = sys.argv[2]
    n = int(sys.argv[3]) if len(sys.argv) > 3 else 3000
    rng = random.Random(int(sys.argv[4]) if len(sys.argv) > 4 else 7)
    cases = generate(rng, n)
    merges = learn(generate(random.Random(99), 1500), 400)
    tok = tokenizer_json(merges)
    vocab = tok["model"]["vocab"]
    ranks = {m: i for i, m in enumerate(merges)}
    with open(f"{out}/tokenizer.json", "w", encoding="utf-8") as f:
        json.dump(tok, f, ensure_ascii=False)
    with open(f"{out}/cases.json", "w", encoding="utf-8") as f:
        json.dump(cases, f, ensure_ascii=False)
    with open(f"{out}/expected.json", "w") as f:
        json.dump([encode(c, vocab, ranks) for c in cases], f)
    print(f"clip_bpe_ref: {len(vocab)} tokens, {len(merges)} merges, {len(cases)} cases")


if __name__ == "__main__":
    main()
