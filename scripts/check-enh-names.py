#!/usr/bin/python3
"""check-enh-names.py SOURCE_ROOT - enhanced status codes by name only.

RFC 3463 codes ("4.4.2", "5.7.1") are written once, as the SMTP_ENH_* names
of proxy/smtp_reply.h; every other C file of the libraries (common/, crypto/,
linkserver/, proxy/, cli/) uses the names, inside a whole reply line by
concatenation ("451 " SMTP_ENH_SYSTEM_TEMP " not attempted").  This reads
the string literals of each file (comments skipped) and prints every one that
holds a code; the exit status is 1 if there is any, 0 otherwise.

Run by `meson test -C build --suite unit` (test `enh-names`)."""
import os
import re
import sys

DIRS = ["common", "crypto", "linkserver", "proxy", "cli"]
# Where the names are defined: the one place digits belong.
ALLOWED = {os.path.join("proxy", "smtp_reply.h")}
# class.subject.detail, not part of a longer dotted number (an IP address).
CODE = re.compile(r"(?<![0-9.])[245]\.[0-9]{1,3}\.[0-9]{1,3}(?![0-9.])")
# A section of an RFC ("RFC 5321 2.3.8") is not a status code.
RFC_SECTION = re.compile(r"RFC ?[0-9]+ [0-9][0-9.]*")


def literals(text):
    """(line, body) of each string literal, comments and characters skipped."""
    i, n, line = 0, len(text), 1
    while i < n:
        c = text[i]
        if c == "\n":
            line += 1
            i += 1
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            line += text.count("\n", i, j)
            i = j
        elif text.startswith("//", i):
            j = text.find("\n", i)
            i = n if j < 0 else j
        elif c in "\"'":
            j, body = i + 1, []
            while j < n and text[j] != c and text[j] != "\n":
                if text[j] == "\\" and j + 1 < n:
                    body.append(text[j:j + 2])
                    j += 2
                else:
                    body.append(text[j])
                    j += 1
            if c == '"':
                yield line, "".join(body)
            i = j + 1
        else:
            i += 1


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    root = sys.argv[1]
    bad = 0
    for d in DIRS:
        for dirpath, _, files in sorted(os.walk(os.path.join(root, d))):
            for name in sorted(files):
                if not name.endswith((".c", ".h")):
                    continue
                path = os.path.join(dirpath, name)
                rel = os.path.relpath(path, root)
                if rel in ALLOWED:
                    continue
                with open(path, encoding="utf-8") as f:
                    text = f.read()
                for line, body in literals(text):
                    if CODE.search(RFC_SECTION.sub("", body)):
                        print('%s:%d: "%s": use an SMTP_ENH_* name (proxy/smtp_reply.h)'
                              % (rel, line, body))
                        bad += 1
    if bad:
        print("check-enh-names: %d literal status code(s)" % bad)
        return 1
    print("check-enh-names: every enhanced status code by name")
    return 0


if __name__ == "__main__":
    sys.exit(main())
