/* mime_message.h - the client's message as GMime sees it, plus the byte spans
 * of its top-level header fields, so copies can drop or replace fields while
 * every other byte (body, attachments, signatures) stays exactly as sent.
 */
#ifndef SP_MIME_MESSAGE_H
#define SP_MIME_MESSAGE_H

#include <stdbool.h>
#include <stddef.h>

#include <gmime/gmime.h>

#include "message.h"
#include "util.h"

/* A message with more top-level header fields than this is junk (RFC 5322 has
 * no limit; real mail has a few dozen, mailing lists a hundred or two). */
#define SP_MIME_MAX_HEADERS 1000
/* MIME nesting and part count: real mail nests a handful of levels (a
 * forwarded signed message with alternatives is about 6) and has at most
 * hundreds of parts; deeper or bigger is an attack on whoever parses it next
 * (the recipient's client, the viewer). */
#define SP_MIME_MAX_DEPTH 64
#define SP_MIME_MAX_PARTS 10000
/* Text before the first and after the last part of a multipart/encrypted
 * message the client encrypted itself: mail readers never show it, clients
 * write one line there ("This is an OpenPGP/MIME encrypted message (RFC 4880
 * and 3156)").  More is text in clear, and the message is encrypted again. */
#define SP_MIME_MAX_PGP_PROLOGUE 256

struct sp_mime_header {
	const char *name;        /* as written (owned by GMime) */
	size_t start;            /* byte offset of the field in the message */
	size_t end;              /* one past its last byte (after its CRLF) */
	bool content;            /* a Content-* field (belongs to the body entity) */
};

struct sp_mime {
	GMimeMessage *msg;
	const char *data;        /* the message, borrowed */
	size_t len;
	size_t headers_end;      /* offset of the empty line ending the header block */
	size_t body_start;       /* first byte of the body (after the empty line) */
	struct sp_mime_header *hdrs;
	size_t n_hdrs;
	/* Header fields (CRLF-terminated) the outer header block of every
	 * encrypted copy gets in addition (the Autocrypt header); NULL for none.
	 * sp_mime_copy_headers (the unencrypted form: the original message)
	 * leaves them out.  Owned by the caller. */
	const char *extra_headers;
	/* private */
	GMimeParser *parser;
	GMimeStream *stream;
	GByteArray *array;
};

/* Call once per process before any other GMime use. */
void sp_mime_global_init(void);

/* Parse data (CRLF or LF).  data must be heap memory from malloc: it is lent to
 * GMime without a copy and given back by sp_mime_free; do not touch it between.
 * Returns 0, or -1 with err set. */
int sp_mime_parse(char *data, size_t len, struct sp_mime *m, char *err, size_t errsz);
void sp_mime_free(struct sp_mime *m);

/* Is addr named in the To or Cc header (groups included)? */
bool sp_mime_names_rcpt(const struct sp_mime *m, const char *addr);
/* Raw (unfolded, trimmed) value of the first top-level header with that name, or NULL. */
char *sp_mime_header_value(const struct sp_mime *m, const char *name);

/* Append the message's header block to out, leaving out every field for which
 * drop(name) is true; the empty line and body are NOT appended.  Returns 0, or
 * -1 when out is full (no err: the caller names the copy). */
typedef bool (*sp_mime_header_filter)(const char *name, void *arg);
int sp_mime_copy_headers(const struct sp_mime *m, sp_mime_header_filter drop, void *arg,
                         struct sp_buf *out);

/* Headers that never leave sealpost: Bcc and every X-Sealpost-* control header. */
bool sp_mime_is_private_header(const char *name);
/* MIME-Version and Content-*: they belong to the body entity. */
bool sp_mime_is_structural_header(const char *name);

/* May the field appear in the outer header section of an encrypted copy?
 * Subject and the allow-list of mime_message.c (docs/formats.md). */
bool sp_mime_is_outer_header(const char *name);

/* The header block of an encrypted copy (no empty line): the client's
 * fields that sp_mime_is_outer_header allows, byte-exact, with the Subject
 * replaced by `subject` (when not NULL; "..." hides it), then
 * m->extra_headers.  The caller appends its own MIME-Version and
 * Content-Type.  Every other field travels only inside the encryption.
 * Returns 0, or -1 when out is full (no err: the caller names the copy). */
int sp_mime_write_outer_headers(const struct sp_mime *m, const char *subject, struct sp_buf *out);

/* The From mailbox: display name ("" when none) and address ("" when none). */
void sp_mime_sender(const struct sp_mime *m, char *name, size_t namesz, char *addr, size_t addrsz);

/* The entity that gets encrypted (RFC 9788 header protection, hp="cipher",
 * plus the legacy protected-headers="v1" that Thunderbird and K-9 read):
 * the client's content headers with those two parameters added to
 * Content-Type, a copy of every other field the client wrote (except Bcc and
 * X-Sealpost-*), one HP-Outer field per outer field, an empty line, and the
 * client's body byte-for-byte (attachments and signatures intact), with an
 * RFC 9788 Legacy Display Element (the real Subject, hp-legacy-display="1")
 * at the start of a single text part when the outer Subject hides it.
 * Returns 0, or -1 with err set. */
int sp_mime_write_protected_entity(const struct sp_mime *m, const char *outer_subject, struct sp_buf *out,
                                   char *err, size_t errsz);

/* The same in pieces, so the body is never copied: the protected header
 * section, then the client's body (m->data + m->body_start) with at most
 * SP_MIME_PROTECTED_MAX_INSERTS insertions at increasing body offsets: for
 * each main text part that gets a legacy display element, the
 * hp-legacy-display="1" parameter at the end of its Content-Type field
 * (unless it is the body itself, whose Content-Type is in the header) and
 * the element at the start of its content.  Wipe with
 * sp_mime_protected_wipe (the pieces name the subject: plaintext). */
/* Main text parts that get an element: a text/plain and a text/html
 * alternative, and a few more in odd trees; each needs two insertions. */
#define SP_MIME_PROTECTED_MAX_INSERTS 8
#define SP_MIME_PROTECTED_MAX_SPANS (2 * SP_MIME_PROTECTED_MAX_INSERTS + 2)
struct sp_mime_insert {
	size_t at;              /* body offset the bytes go before */
	struct sp_buf bytes;
};
struct sp_mime_protected {
	struct sp_buf header;   /* up to and including the empty line */
	struct sp_mime_insert ins[SP_MIME_PROTECTED_MAX_INSERTS];
	size_t n_ins;
};
/* Returns 0, or -1 with err set (pe is then empty). */
int sp_mime_protected_build(const struct sp_mime *m, const char *outer_subject, struct sp_mime_protected *pe,
                            char *err, size_t errsz);
void sp_mime_protected_wipe(struct sp_mime_protected *pe);
/* The entity as spans (at most SP_MIME_PROTECTED_MAX_SPANS); their count. */
size_t sp_mime_protected_spans(const struct sp_mime *m, const struct sp_mime_protected *pe,
                               struct sp_span *spans);

/* Where a copy is built: in memory, or (buf NULL) appended to a spool file. */
struct sp_sink {
	struct sp_buf *buf;
	int fd;
};

/* The sink functions return 0, or -1 on a full buffer or a failed write (no
 * err: the caller names the copy it was building). */
int sp_sink_write(struct sp_sink *s, const void *p, size_t n);
/* Serialise a GMime object into the sink, CRLF line endings. */
int sp_sink_object(struct sp_sink *s, GMimeObject *obj);
/* Append a MIME entity built with GMime, CRLF line endings: sp_sink_object
 * into a memory sink. */
int sp_mime_append_object(GMimeObject *obj, struct sp_buf *out);

/* Is the client's message already encrypted?  Then it is relayed as it is.
 * Only when its body is one OpenPGP message that really is encrypted and
 * integrity-protected (pgp_packets.h) with nothing of the client's in clear
 * beside it: RFC 3156 multipart/encrypted (two parts, "Version: 1", the
 * armored message; no text around them beyond SP_MIME_MAX_PGP_PROLOGUE),
 * or a text/plain body that is exactly one armor block.  When the body
 * looks encrypted but is not, err says why (it is "" otherwise).  Returns
 * true (relay as it is) or false. */
bool sp_mime_is_encrypted(const struct sp_mime *m, char *err, size_t errsz);

#endif
