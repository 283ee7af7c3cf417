#!/usr/bin/env python3
"""Writes the tokenizer test corpus (deterministic; needs nothing but Python 3).

    scripts/make-tokenizer-corpus.py [OUT_DIR]            -> OUT_DIR/corpus.txt
    scripts/make-tokenizer-corpus.py OUT_DIR --expected LLAMA_TOKENIZE MODEL
                                                           -> also OUT_DIR/expected-<model>.txt

corpus.txt has one entry per line: "<mode> <hex bytes>", so any byte string (invalid UTF-8,
NUL, CR) survives. Modes: "sp" = tokenize with BOS and special-token parsing (llama-tokenize's
defaults), "ns" = BOS but no special parsing (--no-parse-special), "big" = a seed line of the
1 MiB text, which is the concatenation over k = 0, 1, 2, ... of
    str(k) + ". " + big[k % len(big)] + "\n"
until it holds at least 1 MiB (tests/unit/test_tokenizer.c builds the same text).

The expected file (made with llama.cpp's llama-tokenize) has one line of comma-separated ids
per sp/ns entry, in order, then "big <count> <fnv1a64 of the ids as int32 little-endian>".
"""
import os
import struct
import subprocess
import sys
import tempfile

PROSE = [
    "The quick brown fox jumps over the lazy dog.",
    "Hello world",
    " Hello world",
    "Hello, world! How are you today?",
    "It's a truth universally acknowledged, that a single man in possession of a good fortune, must be in want of a wife.",
    "We'll see what they've done; I'm sure you're right, aren't you?",
    "In 1969, Neil Armstrong became the first person to walk on the Moon.",
    "The mitochondria is the powerhouse of the cell.",
    "Dr. Smith's lab (room 4B) opens at 9:30 a.m. -- don't be late!",
    "She said: \"Never again.\" Then she left.",
    "Supercalifragilisticexpialidocious is a long word; antidisestablishmentarianism is longer.",
    "E-mail me at someone@example.com or visit https://example.org/path?q=1&r=2#frag.",
    "Tokenization splits text into pieces; each piece maps to an id.",
    "UPPERCASE lowercase MixedCase camelCase snake_case kebab-case",
    "Prices: $5.99, EUR 12,50, 100% off, 3/4 cup, #hashtag, @mention.",
    "The year 2024 had 366 days.",
    "Once upon a time, in a land far, far away, there lived a princess.",
    "Ellipsis... and em-dash \u2014 and en-dash \u2013 and smart quotes \u201chi\u201d \u2018yo\u2019.",
    "a",
    "I",
    ".",
    "?!",
    "..........",
    "----------------------------------------",
    "==========",
    "ab" * 50,
]

CODE = [
    "def f(x):\n    return x * 2\n",
    "int main(void) {\n\tprintf(\"hello\\n\");\n\treturn 0;\n}\n",
    "for (int i = 0; i < n; i++) { sum += a[i]; }",
    "#include <stdio.h>\n#include <stdlib.h>\n",
    "if __name__ == '__main__':\n    main()\n",
    "SELECT id, name FROM users WHERE age > 21 ORDER BY name;",
    "const x = () => { return [1, 2, 3].map(v => v ** 2); };",
    "<html><body><table><tr><td>cell</td></tr></table></body></html>",
    "<div class=\"x\"><p>Paragraph</p><ul><li>one</li><li>two</li></ul></div>",
    "fn main() {\n    let v: Vec<u8> = Vec::new();\n}\n",
    "x = {'a': 1, \"b\": [True, None]}\n",
    "    indented four\n        indented eight\n\t\ttabbed twice\n",
    "// comment\n/* block */\n# hash\n-- dash",
    "git commit -m \"fix: handle empty input\" && git push origin main",
    "$ ls -la | grep '^d' | wc -l",
    "\\n \\t \\\\ \\\" escapes written literally",
    "{\"key\": \"value\", \"list\": [1, 2.5, -3e10], \"nested\": {\"k\": null}}",
]

WHITESPACE = (
    [" " * n for n in (1, 2, 3, 4, 5, 8, 16, 30, 31, 32, 33, 61, 62, 63, 64, 100)]
    + ["\t" * n for n in (1, 2, 3, 7, 31, 32, 40)]
    + ["\n" * n for n in (1, 2, 3, 5, 31, 32, 33, 70)]
    + ["\r\n", "\r", "\n\r\n", " \n ", "\t \t", " \t\n \t\n", "\u00a0", "\u3000", "\u2009thin", "\v\f"]
    + ["  leading two", "trailing two  ", "   both   ", " a b  c   d    e     f",
       "word\nword\n\nword\n\n\nword", "tab\tseparated\tvalues\t", "line1\r\nline2\r\n",
       "  \n  \n  ", "\n\n\n\nx\n\n\n\n", "x" + " " * 40 + "y", "x" + "\t" * 35 + "y",
       "mixed \t \n \t\t  \n\n   end", " ", "  ", "\n", "\t"]
)

NUMBERS = [
    "0", "7", "42", "123", "1234", "12345", "1234567890", "3.14159265358979323846",
    "9" * 64, "1,000,000", "1 000 000", "-273.15", "+1 (555) 010-9999", "0x7fffffff 0b1010 0o777",
    "2024-01-15T13:45:30Z", "v1.2.3-rc.4", "IPv4 192.168.0.1", "1e-9 6.02e23",
    "".join(str(i) for i in range(100)),
    "\u0661\u0662\u0663 \u0967\u0968\u0969 \uff11\uff12\uff13",
]

UNICODE = [
    "\U0001F600", "\U0001F44D\U0001F3FD", "\U0001F468\u200D\U0001F469\u200D\U0001F467\u200D\U0001F466",
    "I \u2764\ufe0f Unicode \U0001F680\U0001F30D\U0001F525", "\U0001F1FA\U0001F1F8 \U0001F1EF\U0001F1F5",
    "\U00010348 \U0001D11E \U0002070E \U0001F9D1\u200D\U0001F4BB",
    "\u4f60\u597d\uff0c\u4e16\u754c\uff01",
    "\u6211\u4eec\u6b63\u5728\u6d4b\u8bd5\u5206\u8bcd\u5668\u3002\u4eca\u5929\u5929\u6c14\u5f88\u597d\u3002",
    "\u65e5\u672c\u8a9e\u306e\u30c6\u30ad\u30b9\u30c8\u3067\u3059\u3002\u3072\u3089\u304c\u306a\u3001\u30ab\u30bf\u30ab\u30ca\u3002",
    "\ud55c\uad6d\uc5b4 \ud14d\uc2a4\ud2b8\uc785\ub2c8\ub2e4.",
    "\u0645\u0631\u062d\u0628\u0627 \u0628\u0627\u0644\u0639\u0627\u0644\u0645",
    "\u0627\u0644\u0644\u063a\u0629 \u0627\u0644\u0639\u0631\u0628\u064a\u0629 \u062c\u0645\u064a\u0644\u0629 \u062c\u062f\u0627\u064b.",
    "\u0928\u092e\u0938\u094d\u0924\u0947 \u0926\u0941\u0928\u093f\u092f\u093e",
    "\u0939\u093f\u0928\u094d\u0926\u0940 \u092d\u093e\u0937\u093e \u092c\u0939\u0941\u0924 \u0938\u0941\u0902\u0926\u0930 \u0939\u0948\u0964",
    "\u041f\u0440\u0438\u0432\u0435\u0442, \u043c\u0438\u0440! \u041a\u0430\u043a \u0434\u0435\u043b\u0430?",
    "\u0393\u03b5\u03b9\u03ac \u03c3\u03bf\u03c5 \u039a\u03cc\u03c3\u03bc\u03b5",
    "\u05e9\u05dc\u05d5\u05dd \u05e2\u05d5\u05dc\u05dd",
    "\u0e2a\u0e27\u0e31\u0e2a\u0e14\u0e35\u0e0a\u0e32\u0e27\u0e42\u0e25\u0e01",
    "Ti\u1ebfng Vi\u1ec7t c\u00f3 d\u1ea5u",
    "na\u00efve caf\u00e9 r\u00e9sum\u00e9 \u00fcber stra\u00dfe \u00e5ngstr\u00f6m",
    "e\u0301 (combining) vs \u00e9 (precomposed)",
    "\u2581 literal lower one eighth block \u2581\u2581",
    "\u00bd \u2153 \u00b2 \u2122 \u00a9 \u00ae \u00b0C \u00b5s \u2126",
    "math: \u2200x \u2208 \u211d, \u2203y : x\u00b2 + y\u00b2 \u2264 1 \u21d2 \u222b f(x) dx",
    "\ufeffBOM at start",
    "zero\u200bwidth\u200cjoiners\u200d",
    "\ufffd replacement char",
    "\U0010FFFF max code point, \U000E0001 tag",
    "mixed \u4e2d\u6587 English \u0639\u0631\u0628\u064a \u0939\u093f\u0928\u094d\u0926\u0940 \U0001F600 123",
]

INVALID = [
    b"\x80", b"\xbf", b"\xc0\x80", b"\xc3", b"\xc3(", b"\xe2\x82", b"\xe2\x82(", b"\xe2(\xa1",
    b"\xf0\x9f\x98", b"\xf0\x9f", b"\xf0(\x8c(", b"\xf8\xa1\xa1\xa1\xa1", b"\xfc\xa1\xa1\xa1\xa1\xa1",
    b"\xfe", b"\xff", b"\xff\xfe\xfd", b"\xed\xa0\x80", b"\xed\xbf\xbf", b"\xf4\x90\x80\x80",
    b"\xf5\x80\x80\x80", b"\xe0\x80\xaf", b"abc\x80def", b"caf\xe9", b"\x00", b"a\x00b",
    b"hello \xc3 world", b"\xe4\xbd\xa0\xe5\xa5", b"\x01\x02\x03\x1b[31mred\x1b[0m\x7f",
    bytes(range(0x80, 0xa0)), bytes(range(0x00, 0x20)),
]

SPECIAL = [
    "<start_of_turn>user\nHello<end_of_turn>\n<start_of_turn>model\n",
    "<bos><start_of_turn>user\nWho are you?<end_of_turn>\n<start_of_turn>model\n",
    "<start_of_turn>", "<end_of_turn>", "<bos>", "<eos>", "<pad>", "<unk>", "<mask>",
    "text<eos>more", "<start_of_turn><start_of_turn>", "<start_of_turn", "start_of_turn>",
    "<<start_of_turn>>", "<start_of_image>", "<end_of_image>", "<unused0><unused99><unused6241>",
    "[multimodal]", "<table><tr><td>x</td></tr></table>", "<h1>Title</h1>", "<br>", "</td>",
    "<|turn>user\nHi<turn|>\n<|turn>model\n<|channel>thought\n<channel|>",
    "<|tool_call>call:f{a:<|\"|>x<|\"|>}<tool_call|>", "<|think|>", "<|image|><|audio|>",
    "</s>", "<s>", "<|endoftext|>", "<|im_start|>user<|im_end|>",
    "   <start_of_turn>  spaced  <end_of_turn>   ", "\n\n<start_of_turn>\n\n",
    "a<end_of_turn>\t\tb", "<START_OF_TURN>", "< start_of_turn >",
]


def entries():
    out = []
    for s in PROSE + CODE + WHITESPACE + NUMBERS + UNICODE:
        out.append(("sp", s.encode("utf-8")))
    for b in INVALID:
        out.append(("sp", b))
    for s in SPECIAL:
        out.append(("sp", s.encode("utf-8")))
        out.append(("ns", s.encode("utf-8")))
    for s in ["  two spaces", "\n\n", "\t\t", "plain text"]:
        out.append(("ns", s.encode("utf-8")))
    out.append(("sp", b""))
    out.append(("ns", b""))
    # combinations of categories
    for i, p in enumerate(PROSE[:20]):
        u = UNICODE[i % len(UNICODE)]
        w = WHITESPACE[i % len(WHITESPACE)]
        out.append(("sp", (p + w + u + " " + NUMBERS[i % len(NUMBERS)]).encode("utf-8")))
    for p in PROSE[:12] + CODE[:4]:
        out.append(("big", p.encode("utf-8")))
    return out


def big_text(ents):
    seeds = [b for m, b in ents if m == "big"]
    parts, n, k = [], 0, 0
    while n < (1 << 20):
        line = str(k).encode() + b". " + seeds[k % len(seeds)] + b"\n"
        parts.append(line)
        n += len(line)
        k += 1
    return b"".join(parts)


def fnv1a64(ids):
    h = 0xCBF29CE484222325
    for b in b"".join(struct.pack("<i", i) for i in ids):
        h = ((h ^ b) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


def llama_ids(tool, model, data, no_special):
    with tempfile.NamedTemporaryFile(delete=False) as f:
        f.write(data)
        path = f.name
    try:
        cmd = [tool, "-m", model, "--ids", "--log-disable", "--no-escape", "-f", path]
        if no_special:
            cmd.append("--no-parse-special")
        r = subprocess.run(cmd, capture_output=True, check=True)
    finally:
        os.unlink(path)
    line = r.stdout.decode().strip().splitlines()[-1].strip()
    assert line.startswith("[") and line.endswith("]"), line
    return [int(x) for x in line[1:-1].split(",") if x.strip()]


def main():
    out_dir = sys.argv[1] if len(sys.argv) > 1 else "tests/data/tokenizer"
    os.makedirs(out_dir, exist_ok=True)
    ents = entries()
    with open(os.path.join(out_dir, "corpus.txt"), "w") as f:
        for mode, b in ents:
            f.write("%s %s\n" % (mode, b.hex()))
    if len(sys.argv) > 2 and sys.argv[2] == "--expected":
        tool, model = sys.argv[3], sys.argv[4]
        name = os.path.splitext(os.path.basename(model))[0]
        with open(os.path.join(out_dir, "expected-%s.txt" % name), "w") as f:
            for mode, b in ents:
                if mode != "big":
                    f.write(",".join(map(str, llama_ids(tool, model, b, mode == "ns"))) + "\n")
            ids = llama_ids(tool, model, big_text(ents), False)
            f.write("big %d %016x\n" % (len(ids), fnv1a64(ids)))
    print("%d entries" % sum(1 for m, _ in ents if m != "big"))


if __name__ == "__main__":
    main()
