/* link_copy.c - link mode on the sending side (see link_copy.h). */
#include "link_copy.h"

#include <pthread.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "link_v2.h"
#include "view_doc.h"
#include "view_render.h"

/* Built from conf/templates/ by conf/templates/embed.py. */
extern const char sp_tmpl_link_txt[];
extern const char sp_tmpl_link_html[];

int
sp_link_settings_read(const struct sp_mime *m, const struct sp_config *cfg, struct sp_link_settings *s,
                      char *err, size_t errsz)
{
	char *v;
	char why[SP_ERRLEN];

	memset(s, 0, sizeof *s);
	{
		char name[256], addr[256];
		sp_mime_sender(m, name, sizeof name, addr, sizeof addr);
		if (name[0] && addr[0])
			snprintf(s->sender, sizeof s->sender, "%s <%s>", name, addr);
		else
			snprintf(s->sender, sizeof s->sender, "%s", addr);
	}
	s->expiry = cfg->link.expiry;
	s->max_views = cfg->link.max_views;
	if ((v = sp_mime_header_value(m, "X-Sealpost-Password")) != NULL) {
		/* Clients write non-ASCII header values as RFC 2047 encoded words. */
		char *dec = g_mime_utils_header_decode_text(NULL, v);
		size_t n = strlen(dec);
		sp_free_secret(v);
		if (n == 0 || n > SP_LINK_PASSWORD_INPUT_MAX) {
			sodium_memzero(dec, n);
			g_free(dec);
			sp_seterr(err, errsz, "X-Sealpost-Password: must be 1..%d bytes", SP_LINK_PASSWORD_INPUT_MAX);
			return -1;
		}
		s->password = sp_secret_dup(dec, strlen(dec));
		sodium_memzero(dec, n);
		g_free(dec);
	}
	if ((v = sp_mime_header_value(m, "X-Sealpost-Hint")) != NULL) {
		/* Decode RFC 2047 words: clients encode non-ASCII hints. */
		char *dec = g_mime_utils_header_decode_text(NULL, v);
		if (strlen(dec) >= sizeof s->hint) {
			g_free(dec);
			free(v);
			sp_seterr(err, errsz, "X-Sealpost-Hint: longer than %d bytes", SP_LINK_HINT_MAX - 1);
			goto fail;
		}
		sp_strlcpy(s->hint, dec, sizeof s->hint);
		g_free(dec);
		free(v);
	}
	if ((v = sp_mime_header_value(m, "X-Sealpost-Expiry")) != NULL) {
		int64_t d;
		int r = sp_parse_duration(v, &d, why, sizeof why);
		free(v);
		if (r < 0 || d < 60 || d > 366 * 86400) {
			sp_seterr(err, errsz, "X-Sealpost-Expiry: %s", r < 0 ? why : "must be between 1m and 366d");
			goto fail;
		}
		s->expiry = d;
	}
	if ((v = sp_mime_header_value(m, "X-Sealpost-Max-Views")) != NULL) {
		uint64_t u;
		int r = sp_parse_uint(v, 0, 1000000, &u, why, sizeof why);
		free(v);
		if (r < 0) {
			sp_seterr(err, errsz, "X-Sealpost-Max-Views: %s", why);
			goto fail;
		}
		s->max_views = u;
	}
	return 0;
fail:
	sp_link_settings_clear(s);
	return -1;
}

void
sp_link_settings_clear(struct sp_link_settings *s)
{
	if (s->password)
		sodium_free(s->password);
	sodium_memzero(s, sizeof *s);
}

void
sp_link_bundle_free(struct sp_link_bundle *b)
{
	size_t i;

	if (b == NULL)
		return;
	for (i = 0; i < b->n; i++) {
		if (b->v[i].url)
			sodium_free(b->v[i].url);
		if (b->v[i].password)
			sodium_free(b->v[i].password);
		sp_buf_wipe(&b->v[i].wrapped);
	}
	free(b->v);
	sp_buf_free(&b->ciphertext);
	free(b);
}

/* Argon2id runs at once in the proxy: each needs its 64 MiB, so 32 sessions
 * sending link mail at once would need 2 GiB; as many as there are cores
 * gives the same throughput in bounded memory. */
static sem_t kdf_slots;
static pthread_once_t kdf_once = PTHREAD_ONCE_INIT;

static void
kdf_init(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	sem_init(&kdf_slots, 0, n > 0 && n < 64 ? (unsigned)n : 2);
}

bool
sp_link_make_v1(const struct sp_config *cfg)
{
	return cfg->link.version == 1;
}

/* A v2 link's plaintext: the message rendered now (the recipient's browser
 * cannot parse MIME) and written as a view document, docs/formats.md "View
 * document (v2)".  doc must be empty; on failure it is wiped and -1 returned
 * with err: the message is then not sent as a link at all. */
static int
view_document(const struct sp_blob *msg, const char *sender_key, struct sp_buf *doc, char *err, size_t errsz)
{
	struct sp_view v;
	struct sp_buf raw;
	char why[SP_ERRLEN];
	int rv = -1;

	memset(&v, 0, sizeof v);
	/* The message as one piece for GMime; it is at most max_message_size. */
	sp_buf_init(&raw, msg->len);
	if (msg->len > 0) {
		if (sp_buf_reserve(&raw, msg->len) < 0) {
			sp_seterr(err, errsz, "out of memory rendering the link's message");
			goto out;
		}
		if (sp_blob_read(msg, 0, raw.data, msg->len) != (ssize_t)msg->len) {
			sp_seterr(err, errsz, "cannot read the message back to render it");
			goto out;
		}
		raw.len = msg->len;
	}
	if (sp_view_render(raw.data, raw.len, &v, why, sizeof why) < 0) {
		sp_seterr(err, errsz, "cannot render the message for its link: %s", why);
		goto out;
	}
	if (sender_key)
		v.sender_key = sp_xstrdup(sender_key);
	if (sp_view_doc_write(&v, doc, why, sizeof why) < 0) {
		sp_seterr(err, errsz, "cannot write the link's view document: %s", why);
		goto out;
	}
	rv = 0;
out:
	sp_view_free(&v);
	/* Written by sp_blob_read(), not the appenders: wipe what was reserved. */
	if (raw.data)
		sodium_memzero(raw.data, msg->len);
	sp_buf_wipe(&raw);
	if (rv < 0)
		sp_buf_wipe(doc);
	return rv;
}

int
sp_link_bundle_make(const struct sp_config *cfg, const struct sp_envelope *env, const struct sp_blob *msg,
                    const char *sender_key, const size_t *rcpts, size_t n, const struct sp_link_settings *s,
                    struct sp_link_bundle **out, char *err, size_t errsz)
{
	struct sp_link_bundle *b = sp_xcalloc(1, sizeof *b);
	unsigned char key[SP_LINK_KEYBYTES];
	size_t i;
	int rv = -1, r;
	bool v1;

	(void)env;
	sp_buf_init(&b->ciphertext, 0);
	b->created = sp_time();
	b->expires = b->created + s->expiry;
	b->max_views = s->max_views;
	b->max_failed = cfg->link.max_failed_attempts;
	sp_strlcpy(b->hint, s->hint, sizeof b->hint);
	sp_strlcpy(b->sender, s->sender, sizeof b->sender);
	v1 = sp_link_make_v1(cfg);
	b->v = sp_xcalloc(n ? n : 1, sizeof *b->v);
	sp_link_key_new(key);
	if (v1) {
		/* The v1 viewer renders at view time: it gets the MIME message. */
		if (sp_link_seal_blob(key, msg, &b->ciphertext, err, errsz) < 0)
			goto out;
	} else {
		struct sp_buf doc;
		struct sp_span one;
		struct sp_blob db;
		sp_buf_init(&doc, sp_view_doc_max_size(cfg->proxy.max_message_size));
		if (view_document(msg, sender_key, &doc, err, errsz) < 0)
			goto out;
		one.p = doc.data;
		one.n = doc.len;
		memset(&db, 0, sizeof db);
		db.spans = &one;
		db.n_spans = 1;
		db.fd = -1;
		db.len = doc.len;
		r = sp_link_seal_blob(key, &db, &b->ciphertext, err, errsz);
		sp_buf_wipe(&doc);
		if (r < 0)
			goto out;
	}
	for (i = 0; i < n; i++) {
		struct sp_link_grant *g = &b->v[b->n++];
		struct sp_link_token t;
		/* v1: the 43-character token; v2: id_b64 "#" secret_b64 (45). */
		char tok[2 * SP_LINK2_B64_STRLEN + 2];
		char pw[SP_LINK_PASSWORD_MAX];

		g->rcpt = rcpts[i];
		sp_buf_init(&g->wrapped, 0);
		sp_link_token_new(&t);
		sp_link_id_hex(t.id, g->id);
		g->url = sodium_malloc(strlen(cfg->link.base_url) + sizeof tok);
		if (g->url == NULL)
			abort();
		if (v1) {
			sp_link_token_encode(&t, tok);
		} else {
			/* v2: id, then the secret in the fragment, which no browser sends. */
			sp_link2_b64_encode(t.id, tok);
			tok[SP_LINK2_B64_STRLEN] = '#';
			sp_link2_b64_encode(t.secret, tok + SP_LINK2_B64_STRLEN + 1);
		}
		sprintf(g->url, "%s%s", cfg->link.base_url, tok);
		if (s->password) {
			g->password = sp_secret_dup(s->password, strlen(s->password));
		} else {
			/* One password per recipient: a leaked one opens one link. */
			sp_link_password_generate(pw);
			g->password = sp_secret_dup(pw, strlen(pw));
			g->generated = true;
		}
		sodium_memzero(pw, sizeof pw);
		pthread_once(&kdf_once, kdf_init);
		while (sem_wait(&kdf_slots) != 0)
			;
		if (v1) {
			r = sp_link_wrap_key(key, g->password, &t, &g->wrapped, err, errsz);
		} else {
			unsigned char rec[SP_LINK2_RECORD_BYTES];
			r = sp_link2_record_new(key, g->password, &t, rec, err, errsz);
			if (r == 0)
				sp_buf_append(&g->wrapped, rec, sizeof rec);
			sodium_memzero(rec, sizeof rec);
		}
		sem_post(&kdf_slots);
		if (r < 0) {
			sodium_memzero(&t, sizeof t);
			sodium_memzero(tok, sizeof tok);
			goto out;
		}
		sodium_memzero(&t, sizeof t);
		sodium_memzero(tok, sizeof tok);
	}
	*out = b;
	b = NULL;
	rv = 0;
out:
	sodium_memzero(key, sizeof key);
	sp_link_bundle_free(b);
	return rv;
}

void
sp_link_format_time(int64_t t, char *out, size_t outsz)
{
	time_t tt = (time_t)t;
	struct tm tm;

	char day[16], rest[96];

	localtime_r(&tt, &tm);
	/* "%e" pads with a blank ("Monday  7 December"); print the day plainly. */
	strftime(day, sizeof day, "%A", &tm);
	strftime(rest, sizeof rest, "%B %Y, %H:%M %Z", &tm);
	snprintf(out, outsz, "%s %d %s", day, tm.tm_mday, rest);
}

/* Read a template: [link] templates DIR, else the built-in copy. */
static char *
load_template(const struct sp_config *cfg, const char *file, const char *builtin, char *err, size_t errsz)
{
	char *path, *data = NULL;
	size_t len;

	if (cfg->link.templates[0] == '\0')
		return sp_xstrdup(builtin);
	path = sp_xasprintf("%s/%s", cfg->link.templates, file);
	if (sp_read_file(path, SP_LINK_TEMPLATE_MAX, &data, &len, err, errsz) < 0)
		data = NULL;
	free(path);
	return data;
}

struct var {
	const char *name;
	const char *value;
};

/* Replace {{name}} by value (HTML-escaped when html). */
static char *
expand(const char *tmpl, const struct var *vars, size_t n, bool html)
{
	GString *s = g_string_new(NULL);
	const char *p = tmpl;

	while (*p) {
		const char *open = strstr(p, "{{"), *close;
		size_t i;
		if (open == NULL || (close = strstr(open + 2, "}}")) == NULL) {
			g_string_append(s, p);
			break;
		}
		g_string_append_len(s, p, open - p);
		for (i = 0; i < n; i++) {
			if ((size_t)(close - open - 2) == strlen(vars[i].name) &&
			    strncmp(open + 2, vars[i].name, strlen(vars[i].name)) == 0)
				break;
		}
		if (i < n) {
			if (html) {
				char *e = g_markup_escape_text(vars[i].value, -1);
				g_string_append(s, e);
				g_free(e);
			} else {
				g_string_append(s, vars[i].value);
			}
		} else {
			/* Unknown placeholders stay visible: a template typo shows. */
			g_string_append_len(s, open, close + 2 - open);
		}
		p = close + 2;
	}
	return g_string_free(s, FALSE);
}

/* A text part holding text (UTF-8) as UTF-8, labelled charset=utf-8.  Not
 * g_mime_text_part_set_text(): that converts to the "best" charset (Latin-1
 * for a hint like "café"), while the HTML template declares
 * <meta charset="utf-8">; both must say the same, so both say UTF-8. */
static GMimePart *
text_part(const char *subtype, const char *text)
{
	GMimePart *p = GMIME_PART(g_mime_text_part_new_with_subtype(subtype));
	GMimeStream *stream = g_mime_stream_mem_new_with_buffer(text, strlen(text));
	GMimeDataWrapper *content = g_mime_data_wrapper_new_with_stream(stream, GMIME_CONTENT_ENCODING_DEFAULT);

	g_mime_part_set_content(p, content);
	g_object_unref(content);
	g_object_unref(stream);
	g_mime_text_part_set_charset(GMIME_TEXT_PART(p), "utf-8");
	g_mime_part_set_content_encoding(p, g_mime_part_get_best_content_encoding(p, GMIME_ENCODING_CONSTRAINT_7BIT));
	return p;
}

int
sp_link_notification(const struct sp_config *cfg, const struct sp_mime *m, const struct sp_link_bundle *b,
                     const struct sp_link_grant *g, struct sp_buf *out, char *err, size_t errsz)
{
	char name[256], addr[256], sender[600], expires[128], views[96] = "", hint[SP_LINK_HINT_MAX + 40] = "";
	char *txt = NULL, *html = NULL, *etxt = NULL, *ehtml = NULL, *subject = NULL, *body;
	GMimeMultipart *alt = NULL;
	GMimePart *tp = NULL, *hp = NULL;
	size_t start = out->len;
	int rv = -1;

	sp_mime_sender(m, name, sizeof name, addr, sizeof addr);
	if (name[0] && addr[0])
		snprintf(sender, sizeof sender, "%s <%s>", name, addr);
	else
		snprintf(sender, sizeof sender, "%s", addr[0] ? addr : "Someone");
	sp_link_format_time(b->expires, expires, sizeof expires);
	if (b->max_views == 1)
		snprintf(views, sizeof views, " It can be opened only once.");
	else if (b->max_views > 1)
		snprintf(views, sizeof views, " It can be opened %llu times.", (unsigned long long)b->max_views);
	if (b->hint[0])
		snprintf(hint, sizeof hint, " Password hint: %s", b->hint);
	{
		const struct var vars[] = {
			{ "sender", sender },
			{ "sender_name", name[0] ? name : addr[0] ? addr : "the sender" },
			{ "link", g->url },
			{ "expires", expires },
			{ "views", views },
			{ "hint", hint },
		};
		if ((txt = load_template(cfg, "link-notification.txt", sp_tmpl_link_txt, err, errsz)) == NULL ||
		    (html = load_template(cfg, "link-notification.html", sp_tmpl_link_html, err, errsz)) == NULL)
			goto out;
		etxt = expand(txt, vars, G_N_ELEMENTS(vars), false);
		ehtml = expand(html, vars, G_N_ELEMENTS(vars), true);
	}
	/* The text template starts with its Subject line. */
	body = etxt;
	if (g_ascii_strncasecmp(body, "Subject:", 8) == 0) {
		size_t n = strcspn(body, "\r\n");
		subject = g_strstrip(g_strndup(body + 8, n - 8));
		body += n;
		while (*body == '\r' || *body == '\n')
			body++;
	} else {
		subject = g_strdup("Encrypted message");
	}
	{
		/* Non-ASCII subjects are RFC 2047 encoded, like any header we write. */
		char *enc = g_mime_utils_header_encode_text(NULL, subject, "utf-8");
		g_free(subject);
		subject = enc;
	}
	tp = text_part("plain", body);
	hp = text_part("html", ehtml);
	alt = g_mime_multipart_new_with_subtype("alternative");
	g_mime_multipart_add(alt, GMIME_OBJECT(tp));
	g_mime_multipart_add(alt, GMIME_OBJECT(hp));
	if (sp_mime_write_outer_headers(m, subject, out) < 0 || sp_buf_puts(out, "MIME-Version: 1.0\r\n") < 0 ||
	    sp_mime_append_object(GMIME_OBJECT(alt), out) < 0) {
		sp_seterr(err, errsz, "out of memory building the notification");
		goto out;
	}
	rv = 0;
out:
	if (rv < 0) {
		/* What was written may hold the link (a secret). */
		if (out->len > start)
			sodium_memzero(out->data + start, out->len - start);
		out->len = start;
	}
	if (alt)
		g_object_unref(alt);
	if (tp)
		g_object_unref(tp);
	if (hp)
		g_object_unref(hp);
	free(txt);
	free(html);
	/* They hold the link (a secret): wipe before freeing. */
	if (etxt) {
		sodium_memzero(etxt, strlen(etxt));
		g_free(etxt);
	}
	if (ehtml) {
		sodium_memzero(ehtml, strlen(ehtml));
		g_free(ehtml);
	}
	g_free(subject);
	return rv;
}
