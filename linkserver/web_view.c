/* web_view.c - the public viewer's pages: the link's password form, the
 * unlock (tarpit, attempt count, Argon2id, one counted view) and the message;
 * the index and robots.txt. */
#include "web_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "link_envelope.h"
#include "log.h"
#include "view_render.h"
#include "web_session.h"

/* Largest decrypted message shown: the proxy accepts at most
 * [proxy] max_message_size; this is the hard ceiling whatever it says. */
#define WEB_MESSAGE_MAX ((size_t)256 * 1024 * 1024)

/* A v2 link's path component: base64url of the 16-byte link id
 * (docs/formats.md, "Link envelope (v2)"). */
#define WEB_V2_ID_LEN 22

static void
sleep_ms(int64_t ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* The link token after the link path: exactly SP_LINK_TOKEN_STRLEN chars. */
static bool
link_from_url(struct web_server *ws, const char *url, struct sp_link_token *t,
              char id[SP_LINK_ID_HEXLEN + 1])
{
	const char *tok = url + ws->link_path_len;

	if (strncmp(url, ws->link_path, ws->link_path_len) != 0 ||
	    strlen(tok) != SP_LINK_TOKEN_STRLEN ||
	    sp_link_token_decode(tok, SP_LINK_TOKEN_STRLEN, t) < 0)
		return false;
	sp_link_id_hex(t->id, id);
	return true;
}

enum MHD_Result
web_h_index(struct web_server *ws, struct web_req *r)
{
	struct sp_buf b;

	sp_buf_init(&b, 0);
	web_page_index(&b);
	return web_respond_page(ws, r, MHD_HTTP_OK, &b);
}

enum MHD_Result
web_h_robots(struct web_server *ws, struct web_req *r)
{
	struct sp_buf b;

	sp_buf_init(&b, 0);
	sp_buf_puts(&b, "User-agent: *\nDisallow: /\n");
	return web_respond(ws, r, MHD_HTTP_OK, WEB_CSP_NONE, WEB_TEXT, &b, NULL, NULL, NULL,
	                   NULL);
}

enum MHD_Result
web_h_link_get(struct web_server *ws, struct web_req *r)
{
	char id[SP_LINK_ID_HEXLEN + 1], err[SP_ERRLEN];
	struct sp_link_token t;
	enum link_store_rc rc;
	struct sp_buf b;
	bool ok;

	/* A v2 link (22-character id, the secret in the fragment): the page
	 * that decrypts in the browser.  Looking at it tells nothing either. */
	if (strncmp(r->url, ws->link_path, ws->link_path_len) == 0 &&
	    strlen(r->url + ws->link_path_len) == WEB_V2_ID_LEN)
		return web_v2_page(ws, r);
	ok = link_from_url(ws, r->url, &t, id);
	sodium_memzero(&t, sizeof t);
	if (!ok)
		return web_respond_gone(ws, r, WEB_GONE_LINK);
	/* Looking never counts: link scanners in mail filters burn nothing. */
	rc = web_link_check(ws, id, err, sizeof err);
	if (rc != LINK_STORE_OK)
		return web_respond_store_miss(ws, r, rc, err);
	sp_buf_init(&b, 0);
	web_page_form(&b, r->url, WEB_FORM_PLAIN, 0);
	return web_respond_page(ws, r, MHD_HTTP_OK, &b);
}

static enum MHD_Result
respond_form(struct web_server *ws, struct web_req *r, unsigned status, enum web_form_note note,
             int64_t wait_ms)
{
	int64_t wait_s = (wait_ms + 999) / 1000;
	char retry[32];
	struct sp_buf b;

	sp_buf_init(&b, 0);
	web_page_form(&b, r->url, note, wait_s);
	if (wait_ms > 0) {
		snprintf(retry, sizeof retry, "%" PRId64, wait_s);
		return web_respond(ws, r, status, WEB_CSP_PAGE, WEB_HTML, &b, "Retry-After", retry,
		                   NULL, NULL);
	}
	return web_respond_page(ws, r, status, &b);
}

/* Wrong password and wrong link secret are one case: same page, same work.
 * The failure counts for the client (tarpit) and for the link, which the
 * last one allowed destroys. */
static enum MHD_Result
wrong_password(struct web_server *ws, struct web_req *r, const char *id, uint64_t max_failed)
{
	char err[SP_ERRLEN];
	enum link_store_rc rc;
	bool destroyed = false;
	int64_t wait;

	wait = web_tarpit_failed(ws->tarpit, r->client, id, sp_now_ms());
	rc = link_store_fail(ws->store, id, sp_time(), &destroyed, err, sizeof err);
	if (rc == LINK_STORE_ERROR)
		return web_respond_store_error(ws, r, err);
	if (destroyed) {
		web_sessions_drop_link(ws->sessions, id);
		sp_log_info("viewer: link %s destroyed after %" PRIu64 " wrong passwords", id,
		            max_failed);
		return web_respond_gone(ws, r, WEB_GONE_DESTROYED);
	}
	if (rc == LINK_STORE_GONE) {
		web_sessions_drop_link(ws->sessions, id);
		return web_respond_gone(ws, r, WEB_GONE_LINK);
	}
	sp_log_info("viewer: link %s: wrong password", id);
	/* Retry-After: how long this client's next attempt will be held. */
	return respond_form(ws, r, MHD_HTTP_FORBIDDEN, WEB_FORM_WRONG, wait);
}

/* The password against the link's wrapped key; the right one claims a view
 * and shows the message, its attachments behind a download capability. */
static enum MHD_Result
unlock(struct web_server *ws, struct web_req *r, const struct sp_link_token *t, const char *id)
{
	unsigned char key[SP_LINK_KEYBYTES];
	char err[SP_ERRLEN], cap[WEB_SESSION_CAPLEN + 1];
	struct sp_buf ct, plain, page;
	struct sp_view m = { 0 };
	struct link_store_link l = { 0 };
	enum link_store_rc rc;
	enum MHD_Result ret;
	uint64_t views = 0, shared = 0;
	int64_t wait, ticket = 0;
	bool last;
	int ok, others = -1;

	sp_buf_init(&ct, WEB_MESSAGE_MAX + 65536);
	sp_buf_init(&plain, WEB_MESSAGE_MAX);
	sp_buf_init(&page, 0);
	if (r->password.len == 0) {
		ret = respond_form(ws, r, MHD_HTTP_OK, WEB_FORM_EMPTY, 0);
		goto out;
	}
	/* Slow down a client that got passwords wrong, across all links.  Every
	 * attempt waits its turn, the right password too (the server cannot tell
	 * it before trying), and none is refused for earlier failures: the answer
	 * comes only after the wait, so waiting is what a guesser pays.  Refused
	 * (429) only: several attempts at once from a client that failed before. */
	wait = web_tarpit_enter(ws->tarpit, r->client, sp_now_ms());
	if (wait < 0) {
		sp_log_info("viewer: link %s: several attempts at once from one client that failed "
		            "before: refused for %" PRId64 " ms", id, -wait);
		sp_log_debug("viewer: link %s: refused client %s", id, r->client);
		ret = respond_form(ws, r, MHD_HTTP_TOO_MANY_REQUESTS, WEB_FORM_WAIT, -wait);
		goto out;
	}
	if (wait > 0) {
		sp_log_debug("viewer: link %s: attempt from %s held %" PRId64 " ms", id, r->client,
		             wait);
		sleep_ms(wait);
	}
	/* Attempts under way on this link count as failures until they are known:
	 * taken before the link's count is read, so that parallel wrong guesses can
	 * never overshoot max_failed (each would otherwise see the same count). */
	others = web_tarpit_attempt_begin(ws->tarpit, id);
	if (others < 0) {
		ret = respond_form(ws, r, MHD_HTTP_TOO_MANY_REQUESTS, WEB_FORM_BUSY, 1000);
		goto out;
	}
	/* ... and those under way on other nodes sharing the store (PostgreSQL). */
	rc = link_store_attempt_begin(ws->store, id, sp_time(), &shared, &ticket, err, sizeof err);
	if (rc != LINK_STORE_OK) {
		ret = web_respond_store_miss(ws, r, rc, err);
		goto out;
	}
	if (shared > (uint64_t)others)
		others = shared > INT_MAX ? INT_MAX : (int)shared;
	rc = link_store_get(ws->store, id, sp_time(), &l, err, sizeof err);
	if (rc != LINK_STORE_OK) {
		ret = web_respond_store_miss(ws, r, rc, err);
		goto out;
	}
	if (l.failed + (uint64_t)others >= l.max_failed) {
		sp_log_info("viewer: link %s: every attempt it has left is under way", id);
		ret = respond_form(ws, r, MHD_HTTP_TOO_MANY_REQUESTS, WEB_FORM_BUSY, 1000);
		goto out;
	}
	/* The expensive step (Argon2id), bounded in parallel. */
	while (sem_wait(&ws->kdf_slots) < 0 && errno == EINTR)
		;
	ok = sp_link_unwrap_key(l.wrapped, l.wrapped_len, r->password.data, t, key, err, sizeof err);
	sem_post(&ws->kdf_slots);
	if (ok < 0) {
		ret = wrong_password(ws, r, id, l.max_failed);
		goto out;
	}
	/* The right password: the failures this client made on this link are
	 * forgiven (not those on other links: no laundering with a known link). */
	web_tarpit_succeeded(ws->tarpit, r->client, id, sp_now_ms());
	/* Count the view atomically (burn after reading has exactly one winner),
	 * and only then decrypt. */
	rc = link_store_claim_view(ws->store, id, sp_time(), &ct, &views, err, sizeof err);
	if (rc != LINK_STORE_OK) {
		if (rc == LINK_STORE_GONE)
			web_sessions_drop_link(ws->sessions, id);
		ret = web_respond_store_miss(ws, r, rc, err);
		goto out;
	}
	if (sp_link_open_message(key, ct.data, ct.len, &plain, err, sizeof err) < 0 ||
	    sp_view_render(plain.data, plain.len, &m, err, sizeof err) < 0) {
		sp_log_error("viewer: link %s: cannot open the stored message: %s", id, err);
		ret = web_respond_notice(ws, r, MHD_HTTP_INTERNAL_SERVER_ERROR,
		                         "Cannot show this message",
		                         "The stored message is damaged and cannot be decrypted.");
		goto out;
	}
	/* The last view deleted the link: the capabilities of earlier views end
	 * now; this reader's own lives on alone (web_session.h). */
	last = l.max_views != 0 && views >= l.max_views;
	if (last)
		web_sessions_drop_link(ws->sessions, id);
	web_sessions_new_cap(cap);
	web_page_message(&page, r->url, &m, cap, views, l.max_views);
	if (web_sessions_add(ws->sessions, cap, id, &m, sp_now_ms(),
	                     l.expires > INT64_MAX / 1000 ? INT64_MAX : l.expires * 1000, last) < 0)
		sp_log_warn("viewer: link %s: attachments too large to offer for download", id);
	sp_log_info("viewer: link %s opened (view %" PRIu64 "%s)", id, views,
	            last ? ", last: deleted" : "");
	ret = web_respond(ws, r, MHD_HTTP_OK, WEB_CSP_MESSAGE, WEB_HTML, &page, NULL, NULL, NULL,
	                  NULL);
out:
	link_store_attempt_end(ws->store, ticket);
	if (others >= 0)
		web_tarpit_attempt_end(ws->tarpit, id);
	sodium_memzero(key, sizeof key);
	sodium_memzero(cap, sizeof cap);
	link_store_link_clear(&l);
	sp_view_free(&m);
	sp_buf_wipe(&plain);
	sp_buf_free(&ct);
	sp_buf_wipe(&page);
	return ret;
}

enum MHD_Result
web_h_link_post(struct web_server *ws, struct web_req *r)
{
	char id[SP_LINK_ID_HEXLEN + 1];
	struct sp_link_token t;
	enum MHD_Result ret;

	if (!link_from_url(ws, r->url, &t, id)) {
		ret = web_respond_gone(ws, r, WEB_GONE_LINK);
	} else if (r->bad_form) {
		ret = web_respond_notice(ws, r, MHD_HTTP_BAD_REQUEST, "Bad request",
		                         "The form could not be read.");
	} else if (r->has_dl) {
		ret = web_download(ws, r, id);
	} else {
		ret = unlock(ws, r, &t, id);
	}
	sodium_memzero(&t, sizeof t);
	return ret;
}
