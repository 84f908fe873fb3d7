/* smtp_server.c - one SMTP submission session with a mail client.
 *
 * The session is a state machine (enum smtp_state, logged on every change);
 * commands come from one table that carries their rules (arguments, the
 * states each may proceed in as a mask), where check_* only validates (and
 * replies with the error) and proceed_* does the work and writes the
 * envelope.  Replies are buffered and flushed whenever the reader would
 * block, which is what PIPELINING needs.  Errors during DATA are sticky: the
 * body is drained to the final dot and answered once.  The data path reads as one line: accept -> policy (at RCPT) ->
 * compose -> relay -> one reply.
 */
#include "smtp_server.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "compose.h"
#include "conn.h"
#include "link_publish.h"
#include "log.h"
#include "message.h"
#include "net.h"
#include "peer_limits.h"
#include "policy.h"
#include "smtp_parse.h"

enum smtp_state {
	SMTP_STATE_INIT,     /* connected, greeted, no HELO/EHLO yet */
	SMTP_STATE_HELO,     /* ready for MAIL */
	SMTP_STATE_MAIL,     /* MAIL accepted, no recipient yet */
	SMTP_STATE_RCPT,     /* at least one recipient accepted */
	SMTP_STATE_QUIT,     /* closing */
};

static const char *const state_names[] = { "init", "helo", "mail", "rcpt", "quit" };

/* States as bits, for the command table: where a command may proceed. */
#define IN_STATE(st) (1u << (st))
enum smtp_states {
	ST_INIT = IN_STATE(SMTP_STATE_INIT),
	ST_HELO = IN_STATE(SMTP_STATE_HELO),
	ST_TRANSACTION = IN_STATE(SMTP_STATE_MAIL) | IN_STATE(SMTP_STATE_RCPT),
	ST_RCPT = IN_STATE(SMTP_STATE_RCPT),
	ST_ANY = ST_INIT | ST_HELO | ST_TRANSACTION,
};

/* Sticky errors while reading DATA, answered once after the final dot. */
enum data_error {
	DATA_OK,
	DATA_BARE_CR,        /* a CR not followed by LF: always refused */
	DATA_BARE_LF,        /* an LF without CR, not accepted ([proxy] bare_lf) */
	DATA_BARE_LF_DOT,    /* a line starting with "." next to a bare LF */
	DATA_LINE_TOO_LONG,
	DATA_TOO_BIG,
};

struct smtp_session {
	struct smtp_server_ctx *ctx;
	const struct sp_config *cfg;
	struct conn conn;
	char peer[64];
	char ip[64];                    /* the peer's address without port */
	bool loopback_listener;
	bool loopback_peer;             /* the client connects from a loopback address */
	enum smtp_state state;
	bool esmtp;
	bool cmd_crlf;                  /* the last command line ended in CRLF */
	char helo[256];
	char *auth_user;                /* sodium_malloc'd */
	char *auth_pass;                /* only kept for auth = passthrough */
	unsigned errors;
	unsigned auth_failures;
	unsigned rcpt_attempts;         /* RCPT commands in this transaction */
	struct sp_policy *policy;
	struct sp_envelope env;
	uint64_t declared_size;
	int64_t session_deadline;
	/* scratch, filled by check_* for proceed_* (the only thing check_*
	 * writes; proceed_* writes the envelope and the state) */
	struct smtp_path path;
	struct mail_params {
		uint64_t size;                  /* SIZE=, 0 when not given */
		bool body_8bit;                 /* BODY=8BITMIME */
		bool smtputf8;                  /* SMTPUTF8 */
	} mail;
};

enum cmd_flags {
	CMD_NEED_ARG = 1 << 0,    /* "501 5.5.4 Syntax: VERB argument" without one */
	CMD_NO_ARG = 1 << 1,      /* "501 5.5.4 Syntax: VERB" with one */
	CMD_HTTP = 1 << 2,        /* an HTTP verb: a browser or proxy scan, hang up */
	CMD_RCPT_ATTEMPT = 1 << 3, /* counted in rcpt_attempts when in its states */
};

/* One SMTP command and its rules.  Before EHLO/HELO a command without ST_INIT
 * in `states` gets "503 5.5.1 Send EHLO/HELO first"; after it, check_* tests
 * state_allows() at its place among its other checks and answers with
 * `wrong_state`.  check_* only validates and replies (filling the scratch);
 * proceed_* does the work. */
struct smtp_cmd {
	const char *verb;
	unsigned flags;
	unsigned states;          /* ST_*: where the command may proceed */
	const char *syntax;
	const char *wrong_state;  /* 503 text in a greeted state outside `states` */
	int (*check)(struct smtp_session *s, const struct smtp_cmd *cmd, const char *args);
	void (*proceed)(struct smtp_session *s, const char *args);
};

static void vreply(struct smtp_session *s, int code, const char *enh, const char *fmt, va_list ap)
	SP_PRINTF(4, 0);
static void reply(struct smtp_session *s, int code, const char *enh, const char *fmt, ...) SP_PRINTF(4, 5);
static void reply_error(struct smtp_session *s, int code, const char *enh, const char *fmt, ...) SP_PRINTF(4, 5);

static int64_t
cmd_deadline(const struct smtp_session *s)
{
	int64_t d = sp_now_ms() + s->cfg->proxy.timeout * 1000;

	return d < s->session_deadline ? d : s->session_deadline;
}

static void
enter_state(struct smtp_session *s, enum smtp_state st)
{
	if (s->state != st)
		sp_log_debug("smtp %s: %s -> %s", s->peer, state_names[s->state], state_names[st]);
	s->state = st;
}

static void
vreply(struct smtp_session *s, int code, const char *enh, const char *fmt, va_list ap)
{
	char text[1024];

	vsnprintf(text, sizeof text, fmt, ap);
	/* Never let a peer-supplied byte break the reply framing. */
	for (char *p = text; *p; p++)
		if ((unsigned char)*p < 0x20)
			*p = ' ';
	if (enh[0])
		conn_printf(&s->conn, cmd_deadline(s), "%d %s %s\r\n", code, enh, text);
	else
		conn_printf(&s->conn, cmd_deadline(s), "%d %s\r\n", code, text);
	sp_log_debug("smtp %s: > %d%s%s %s", s->peer, code, enh[0] ? " " : "", enh, text);
}

static void
reply(struct smtp_session *s, int code, const char *enh, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vreply(s, code, enh, fmt, ap);
	va_end(ap);
}

/* A protocol error by the client: counted toward SMTP_MAX_ERRORS. */
static void
reply_error(struct smtp_session *s, int code, const char *enh, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vreply(s, code, enh, fmt, ap);
	va_end(ap);
	s->errors++;
}

static bool
state_allows(const struct smtp_session *s, const struct smtp_cmd *cmd)
{
	return (cmd->states & IN_STATE(s->state)) != 0;
}

/* The table's answer to a command out of its states; -1 for check_*. */
static int
refuse_state(struct smtp_session *s, const struct smtp_cmd *cmd)
{
	reply_error(s, 503, SMTP_ENH_BAD_COMMAND, "%s", cmd->wrong_state);
	return -1;
}

static bool
auth_offered(const struct smtp_session *s)
{
	return s->cfg->proxy.auth != SP_AUTH_NONE && (conn_is_tls(&s->conn) || s->loopback_listener);
}

static void
reset_transaction(struct smtp_session *s)
{
	sp_envelope_free(&s->env);
	sp_envelope_init(&s->env);
	s->declared_size = 0;
	s->rcpt_attempts = 0;
	if (IN_STATE(s->state) & ST_TRANSACTION)
		enter_state(s, SMTP_STATE_HELO);
}

static void
forget_auth(struct smtp_session *s)
{
	if (s->auth_user) {
		sodium_free(s->auth_user);
		s->auth_user = NULL;
	}
	if (s->auth_pass) {
		sodium_free(s->auth_pass);
		s->auth_pass = NULL;
	}
}

/* ---- HELO / EHLO ---- */

static int
check_helo(struct smtp_session *s, const struct smtp_cmd *cmd, const char *args)
{
	size_t n = strcspn(args, " ");

	if (n == 0 || n >= sizeof s->helo) {
		reply_error(s, 501, SMTP_ENH_BAD_ARGS, "Syntax: EHLO hostname");
		return -1;
	}
	return 0;
}

static void
set_helo(struct smtp_session *s, const char *args)
{
	size_t n = strcspn(args, " ");

	memcpy(s->helo, args, n);
	s->helo[n] = '\0';
	reset_transaction(s);
	enter_state(s, SMTP_STATE_HELO);
}

static void
proceed_helo(struct smtp_session *s, const char *args)
{
	set_helo(s, args);
	s->esmtp = false;
	reply(s, 250, SMTP_ENH_OK, "%s", s->ctx->hostname);
}

static void
proceed_ehlo(struct smtp_session *s, const char *args)
{
	const char *caps[12];
	char size[40];
	size_t n = 0, i;
	int64_t dl = cmd_deadline(s);

	set_helo(s, args);
	s->esmtp = true;
	snprintf(size, sizeof size, "SIZE %llu", (unsigned long long)s->cfg->proxy.max_message_size);
	caps[n++] = "PIPELINING";
	caps[n++] = size;
	caps[n++] = "8BITMIME";
	caps[n++] = "SMTPUTF8";
	caps[n++] = "ENHANCEDSTATUSCODES";
	if (!conn_is_tls(&s->conn))
		caps[n++] = "STARTTLS";
	if (auth_offered(s) && s->auth_user == NULL)
		caps[n++] = "AUTH PLAIN LOGIN";
	caps[n++] = "HELP";
	conn_printf(&s->conn, dl, "250-%s\r\n", s->ctx->hostname);
	for (i = 0; i < n; i++)
		conn_printf(&s->conn, dl, "250%c%s\r\n", i + 1 == n ? ' ' : '-', caps[i]);
}

/* ---- STARTTLS ---- */

static int
check_starttls(struct smtp_session *s, const struct smtp_cmd *cmd, const char *args)
{
	if (conn_is_tls(&s->conn)) {
		reply_error(s, 503, SMTP_ENH_BAD_COMMAND, "TLS already active");
		return -1;
	}
	if (!state_allows(s, cmd))
		return refuse_state(s, cmd);
	return 0;
}

static void
proceed_starttls(struct smtp_session *s, const char *args)
{
	reply(s, 220, SMTP_ENH_OK, "Ready to start TLS");
	/* conn_starttls_server flushes the 220 and discards whatever the client
	 * pipelined after STARTTLS: RFC 3207 4.2, no command injection. */
	if (conn_starttls_server(&s->conn, s->ctx->tls, cmd_deadline(s)) < 0) {
		sp_log_info("smtp %s: STARTTLS failed: %s", s->peer, conn_error(&s->conn));
		enter_state(s, SMTP_STATE_QUIT);
		return;
	}
	{
		char info[96];
		conn_tls_info(&s->conn, info, sizeof info);
		sp_log_debug("smtp %s: TLS started: %s", s->peer, info);
	}
	/* RFC 3207 4.2: forget everything learned from the client before TLS:
	 * the EHLO, any mail transaction and the AUTH identity (a client that
	 * authenticated on a loopback listener in the clear authenticates again
	 * inside TLS).  The failure counters are the server's own, and stay. */
	reset_transaction(s);
	s->helo[0] = '\0';
	s->esmtp = false;
	forget_auth(s);
	enter_state(s, SMTP_STATE_INIT);
}

/* ---- AUTH ---- */

static int
check_auth(struct smtp_session *s, const struct smtp_cmd *cmd, const char *args)
{
	if (s->cfg->proxy.auth == SP_AUTH_NONE) {
		reply_error(s, 503, SMTP_ENH_BAD_COMMAND, "AUTH not available here ([proxy] auth = none)");
		return -1;
	}
	if (!auth_offered(s)) {
		reply_error(s, 538, SMTP_ENH_NEED_ENCRYPTION, "Encryption required for requested authentication mechanism");
		return -1;
	}
	if (s->auth_user) {
		reply_error(s, 503, SMTP_ENH_BAD_COMMAND, "Already authenticated");
		return -1;
	}
	if (!state_allows(s, cmd))
		return refuse_state(s, cmd);
	if (peer_auth_blocked(s->ip)) {
		sp_log_warn("smtp %s: AUTH refused: too many failures from this address", s->peer);
		reply(s, 454, SMTP_ENH_SECURITY_TEMP, "Too many failed authentications from your address; try again later");
		return -1;
	}
	return 0;
}

/* Read one SASL response line; NULL when the client cancelled or broke off. */
static char *
auth_read_response(struct smtp_session *s, size_t *outlen)
{
	char *line = sodium_malloc(SMTP_AUTH_LINE_MAX + 1), *dec = NULL;
	size_t len;
	enum conn_status st;

	if (line == NULL)
		abort();
	st = conn_read_line(&s->conn, line, SMTP_AUTH_LINE_MAX, &len, cmd_deadline(s));
	if (st == CONN_TOOLONG) {
		reply_error(s, 500, SMTP_ENH_AUTH_LINE_TOO_LONG, "Authentication exchange line is too long");
		goto out;
	}
	if (st != CONN_OK) {
		enter_state(s, SMTP_STATE_QUIT);
		goto out;
	}
	if (len < 2 || line[len - 2] != '\r') {
		reply_error(s, 501, SMTP_ENH_SYNTAX, "Authentication response must end in CRLF, not a bare LF");
		goto out;
	}
	len -= 2;
	line[len] = '\0';
	if (strcmp(line, "*") == 0) {
		reply_error(s, 501, SMTP_ENH_FAIL, "Authentication cancelled");
		goto out;
	}
	if (sasl_b64_decode(line, &dec, outlen) < 0) {
		reply_error(s, 501, SMTP_ENH_SYNTAX, "Cannot decode response");
		dec = NULL;
	}
out:
	sodium_free(line);
	return dec;
}

static bool
verify_credentials(struct smtp_session *s, const char *user, const char *pass, struct smtp_reply *fail)
{
	if (s->cfg->proxy.auth == SP_AUTH_USERS) {
		if (sp_users_verify(s->ctx->users, user, pass))
			return true;
		smtp_reply_set(fail, 535, SMTP_ENH_BAD_CREDENTIALS, "Authentication credentials invalid");
		return false;
	}
	/* passthrough: the upstream decides. */
	{
		struct relay_creds creds = { user, pass };
		struct smtp_client *c = NULL;
		if (relay_open(s->ctx->relay, &creds, &c, fail) == 0) {
			smtp_client_close(c);
			return true;
		}
		if (fail->code != 535)
			smtp_reply_set(fail, 454, SMTP_ENH_SECURITY_TEMP, "Temporary authentication failure: %s", fail->text);
		return false;
	}
}

static void
proceed_auth(struct smtp_session *s, const char *args)
{
	char mech[16];
	const char *initial;
	char *resp = NULL, *user = NULL, *pass = NULL;
	size_t n = strcspn(args, " "), rlen = 0;
	struct smtp_reply fail = { 0 };

	if (n >= sizeof mech) {
		reply_error(s, 504, SMTP_ENH_BAD_ARGS, "Unrecognized authentication type");
		return;
	}
	memcpy(mech, args, n);
	mech[n] = '\0';
	initial = args[n] ? args + n + 1 : NULL;
	if (sp_streq_nocase(mech, "PLAIN")) {
		if (initial) {
			if (sasl_b64_decode(initial, &resp, &rlen) < 0) {
				resp = NULL;
				reply_error(s, 501, SMTP_ENH_SYNTAX, "Cannot decode response");
				goto out;
			}
		} else {
			conn_printf(&s->conn, cmd_deadline(s), "334 \r\n");
			if ((resp = auth_read_response(s, &rlen)) == NULL)
				goto out;
		}
		if (sasl_plain_split(resp, rlen, &user, &pass) < 0) {
			reply_error(s, 501, SMTP_ENH_SYNTAX, "Malformed PLAIN response");
			goto out;
		}
	} else if (sp_streq_nocase(mech, "LOGIN")) {
		if (initial) {
			if (sasl_b64_decode(initial, &user, &rlen) < 0) {
				user = NULL;
				reply_error(s, 501, SMTP_ENH_SYNTAX, "Cannot decode response");
				goto out;
			}
		} else {
			conn_printf(&s->conn, cmd_deadline(s), "334 VXNlcm5hbWU6\r\n");
			if ((user = auth_read_response(s, &rlen)) == NULL)
				goto out;
		}
		conn_printf(&s->conn, cmd_deadline(s), "334 UGFzc3dvcmQ6\r\n");
		if ((pass = auth_read_response(s, &rlen)) == NULL)
			goto out;
	} else {
		reply_error(s, 504, SMTP_ENH_BAD_ARGS, "Unrecognized authentication type");
		goto out;
	}
	if (user[0] == '\0' || strlen(user) > 256) {
		reply_error(s, 501, SMTP_ENH_SYNTAX, "Malformed user name");
		goto out;
	}
	if (!verify_credentials(s, user, pass, &fail)) {
		char safe[80];
		s->auth_failures++;
		if (fail.code == 535)
			peer_auth_failed(s->ip);
		sp_sanitize(user, strlen(user), safe, sizeof safe);
		sp_log_warn("smtp %s: AUTH %s failed for user '%s' (%d %s)", s->peer, mech, safe,
		            fail.code, fail.enh);
		usleep(SMTP_AUTH_FAILURE_DELAY_MS * 1000);
		reply(s, fail.code, fail.enh, "%s", fail.code == 535 ? "Authentication credentials invalid" : fail.text);
		if (s->auth_failures >= SMTP_MAX_AUTH_FAILURES) {
			reply(s, 421, SMTP_ENH_SECURITY_TEMP, "%s Too many failed authentications; closing connection",
			      s->ctx->hostname);
			enter_state(s, SMTP_STATE_QUIT);
		}
		goto out;
	}
	s->auth_user = sp_secret_dup(user, strlen(user));
	if (s->cfg->proxy.auth == SP_AUTH_PASSTHROUGH) {
		s->auth_pass = sp_secret_dup(pass, strlen(pass));
		/* Queued copies of this user are retried with these. */
		relay_remember_creds(s->ctx->relay, user, pass);
	}
	{
		char safe[80];
		sp_sanitize(user, strlen(user), safe, sizeof safe);
		sp_log_info("smtp %s: authenticated as '%s' (%s)", s->peer, safe, mech);
	}
	reply(s, 235, SMTP_ENH_AUTH_OK, "Authentication successful");
out:
	smtp_reply_clear(&fail);
	if (resp)
		sodium_free(resp);
	if (user)
		sodium_free(user);
	if (pass)
		sodium_free(pass);
}

/* ---- MAIL / RCPT ---- */

/* "FROM:<path> PARAMS" (sender) or "TO:<path> PARAMS" into the scratch path
 * and params; replies with the error. */
static int
parse_path_params(struct smtp_session *s, const struct smtp_cmd *cmd, const char *args, bool sender,
                  struct smtp_param params[SMTP_PARAMS_MAX], size_t *n)
{
	const char *prefix = sender ? "FROM:" : "TO:", *rest;
	char why[128];

	if (!sp_has_prefix_nocase(args, prefix)) {
		reply_error(s, 501, SMTP_ENH_BAD_ARGS, "Syntax: %s", cmd->syntax);
		return -1;
	}
	if (smtp_parse_path(args + strlen(prefix), sender, true, &s->path, &rest, why, sizeof why) < 0) {
		reply_error(s, 501, sender ? SMTP_ENH_BAD_SENDER_SYNTAX : SMTP_ENH_BAD_RCPT_SYNTAX,
		            "Bad %s address syntax: %s", sender ? "sender" : "recipient", why);
		return -1;
	}
	if (smtp_parse_params(rest, params, n, why, sizeof why) < 0) {
		reply_error(s, 501, SMTP_ENH_BAD_ARGS, "Syntax error in parameters: %s", why);
		return -1;
	}
	return 0;
}

static int
check_mail(struct smtp_session *s, const struct smtp_cmd *cmd, const char *args)
{
	struct smtp_param params[SMTP_PARAMS_MAX];
	struct mail_params m = { 0 };
	char why[128];
	size_t n, i;

	if (s->cfg->proxy.auth != SP_AUTH_NONE && s->auth_user == NULL) {
		reply_error(s, 530, SMTP_ENH_SECURITY, "Authentication required");
		return -1;
	}
	if (!state_allows(s, cmd))
		return refuse_state(s, cmd);
	if (parse_path_params(s, cmd, args, true, params, &n) < 0)
		return -1;
	if (n && !s->esmtp) {
		reply_error(s, 555, SMTP_ENH_BAD_ARGS, "MAIL parameters need EHLO");
		return -1;
	}
	for (i = 0; i < n; i++) {
		struct smtp_param *p = &params[i];
		if (strcmp(p->key, "SIZE") == 0 && p->has_value) {
			uint64_t v;
			if (sp_parse_uint(p->value, 0, UINT64_MAX, &v, why, sizeof why) < 0) {
				reply_error(s, 501, SMTP_ENH_BAD_ARGS, "Bad SIZE value");
				return -1;
			}
			if (v > s->cfg->proxy.max_message_size) {
				reply(s, 552, SMTP_ENH_TOO_BIG, "Message size exceeds fixed maximum message size (%llu)",
				      (unsigned long long)s->cfg->proxy.max_message_size);
				return -1;
			}
			m.size = v;
		} else if (strcmp(p->key, "BODY") == 0 && p->has_value) {
			if (sp_streq_nocase(p->value, "8BITMIME"))
				m.body_8bit = true;
			else if (!sp_streq_nocase(p->value, "7BIT")) {
				reply_error(s, 555, SMTP_ENH_BAD_ARGS, "Unsupported BODY type %s", p->value);
				return -1;
			}
		} else if (strcmp(p->key, "SMTPUTF8") == 0 && !p->has_value) {
			m.smtputf8 = true;
		} else if (strcmp(p->key, "AUTH") == 0 && p->has_value) {
			/* RFC 4954 5: accepted and not passed on. */
		} else {
			reply_error(s, 555, SMTP_ENH_BAD_ARGS, "Unsupported parameter %s", p->key);
			return -1;
		}
	}
	if (s->path.utf8 && !m.smtputf8) {
		reply_error(s, 553, SMTP_ENH_NEED_SMTPUTF8, "Non-ASCII sender address needs the SMTPUTF8 parameter");
		return -1;
	}
	s->mail = m;
	return 0;
}

static void
proceed_mail(struct smtp_session *s, const char *args)
{
	char id[33];

	sp_envelope_free(&s->env);
	sp_envelope_init(&s->env);
	s->declared_size = s->mail.size;
	s->env.body_8bit = s->mail.body_8bit;
	s->env.smtputf8 = s->mail.smtputf8;
	s->env.mail_from = sp_xstrdup(s->path.addr);
	sp_random_id(id);
	sp_strlcpy(s->env.id, id, sizeof s->env.id);
	enter_state(s, SMTP_STATE_MAIL);
	reply(s, 250, SMTP_ENH_SENDER_OK, "Ok");
}

static int
check_rcpt(struct smtp_session *s, const struct smtp_cmd *cmd, const char *args)
{
	struct smtp_param params[SMTP_PARAMS_MAX];
	size_t n;

	if (!state_allows(s, cmd))
		return refuse_state(s, cmd);
	if (parse_path_params(s, cmd, args, false, params, &n) < 0)
		return -1;
	if (n) {
		reply_error(s, 555, SMTP_ENH_BAD_ARGS, "Unsupported parameter %s", params[0].key);
		return -1;
	}
	if (s->path.utf8 && !s->env.smtputf8) {
		reply_error(s, 553, SMTP_ENH_NEED_SMTPUTF8, "Non-ASCII recipient address needs SMTPUTF8 in MAIL");
		return -1;
	}
	if (s->env.n_rcpts >= s->cfg->proxy.max_recipients) {
		reply(s, 452, SMTP_ENH_TOO_MANY_RCPTS, "Too many recipients (at most %llu per message)",
		      (unsigned long long)s->cfg->proxy.max_recipients);
		return -1;
	}
	return 0;
}

static void
proceed_rcpt(struct smtp_session *s, const char *args)
{
	struct sp_decision d;
	size_t i;

	for (i = 0; i < s->env.n_rcpts; i++) {
		if (sp_addr_equal(s->env.rcpts[i].addr, s->path.addr)) {
			reply(s, 250, SMTP_ENH_RCPT_OK, "Ok (duplicate recipient)");
			return;
		}
	}
	switch (sp_policy_decide(s->policy, s->path.addr, &d)) {
	case SP_POLICY_OK:
		sp_envelope_add_rcpt(&s->env, s->path.addr, d.form, d.detail);
		if (d.source[0]) {
			char note[sizeof d.source + 32];
			snprintf(note, sizeof note, "key discovered: %s", d.source);
			sp_envelope_set_note(&s->env, s->env.n_rcpts - 1, note);
			sp_log_info("smtp %s: <%s>: OpenPGP key %s, %s", s->peer, s->path.addr, d.detail, note);
		} else if (d.notice[0]) {
			sp_envelope_set_note(&s->env, s->env.n_rcpts - 1, d.notice);
			sp_log_warn("smtp %s: <%s> gets %s: %s", s->peer, s->path.addr, sp_form_name(d.form), d.notice);
		}
		if (d.form == SP_FORM_PLAIN)
			sp_log_warn("smtp %s: <%s> will get the message UNENCRYPTED: %s", s->peer,
			            s->path.addr, d.reason);
		enter_state(s, SMTP_STATE_RCPT);
		reply(s, 250, SMTP_ENH_RCPT_OK, "Ok, %s", sp_form_name(d.form));
		break;
	case SP_POLICY_REFUSE:
		if (d.notice[0])
			sp_log_warn("smtp %s: <%s>: %s", s->peer, s->path.addr, d.notice);
		sp_log_info("smtp %s: refused <%s>: %s", s->peer, s->path.addr, d.reason);
		reply(s, 550, SMTP_ENH_REFUSED, "<%s>: %s", s->path.addr, d.reason);
		break;
	case SP_POLICY_TEMPFAIL:
	default:
		sp_log_warn("smtp %s: cannot decide for <%s>: %s", s->peer, s->path.addr, d.reason);
		reply(s, 451, SMTP_ENH_SECURITY_TEMP, "<%s>: %s", s->path.addr, d.reason);
		break;
	}
}

/* ---- DATA ---- */

static int
check_data(struct smtp_session *s, const struct smtp_cmd *cmd, const char *args)
{
	if (s->state == SMTP_STATE_MAIL && s->rcpt_attempts) {
		/* MAIL was accepted but every RCPT was refused (RFC 2920 3.1). */
		reply_error(s, 554, SMTP_ENH_BAD_COMMAND, "No valid recipients");
		return -1;
	}
	if (!state_allows(s, cmd))
		return refuse_state(s, cmd);
	return 0;
}

/* May a line of data from this client end in a bare LF?  Trusted clients
 * only (Postfix: smtpd_forbid_bare_newline = normalize, with exclusions):
 * a loopback peer or an authenticated one. */
static bool
bare_lf_trusted(const struct smtp_session *s)
{
	return s->loopback_peer || s->auth_user != NULL;
}

static bool
bare_lf_allowed(const struct smtp_session *s)
{
	return s->cfg->proxy.bare_lf == SP_BARE_LF_ACCEPT_TRUSTED && bare_lf_trusted(s);
}

static void
data_fail(enum data_error *derr, enum data_error e)
{
	if (*derr == DATA_OK)
		*derr = e;
}

static void
data_store(struct sp_buf *msg, const void *p, size_t n, enum data_error *derr)
{
	if (*derr == DATA_OK && sp_buf_append(msg, p, n) < 0) {
		*derr = DATA_TOO_BIG;
		sp_buf_wipe(msg);
	}
}

/* Read the message up to the end-of-data line.  Returns -1 when the session
 * must end (timeout, I/O), else the sticky error (DATA_OK when clean).
 *
 * The end of data is decided on the raw bytes, before anything is
 * normalised: it is a line that is exactly "." CRLF after a line that ended
 * in CRLF, and nothing else (RFC 5321 4.1.1.4; every other form is the stuff
 * of SMTP smuggling).  A CR anywhere but right before the final LF of a line
 * is always refused (RFC 5321 2.3.8).  A line ending in a bare LF is refused
 * too, unless bare_lf_allowed(): then it is stored with CRLF.  A line that
 * starts with "." means dot-stuffing (or the end) only when it and the line
 * before it both end in CRLF; next to a bare LF the client may or may not
 * have stuffed it (curl stuffs only after CRLF), and "\n.\n", "\n.\r\n" and
 * "\r\n.\n" could be meant as the end: such a line is refused, never guessed
 * at, and can neither end the data nor become content.
 *
 * A client whose data ends in a bare LF adds CRLF "." CRLF (curl does), so
 * an empty CRLF line right after a bare-LF line and right before the end is
 * that terminator's CRLF, not content: the message is then stored exactly as
 * the same client sends it with CRLF line endings. */
static int
read_data(struct smtp_session *s, struct sp_buf *msg)
{
	const char *line;
	int64_t total_deadline = sp_now_ms() + (int64_t)SMTP_DATA_TOTAL_TIMEOUT_S * 1000;
	enum data_error derr = DATA_OK;
	bool lf_ok = bare_lf_allowed(s);
	bool prev_crlf = s->cmd_crlf;   /* the line before ended in CRLF, as sent */
	bool prev_bare_lf = false;      /* the line before ended in an accepted bare LF */
	bool held_crlf = false;         /* an empty line after a bare-LF line, not stored yet */
	size_t len;

	if (total_deadline > s->session_deadline)
		total_deadline = s->session_deadline;
	for (;;) {
		int64_t dl = sp_now_ms() + s->cfg->proxy.data_timeout * 1000;
		enum conn_status st;
		bool crlf;

		if (dl > total_deadline)
			dl = total_deadline;
		/* +1: the transparency dot a client adds to a line starting with
		 * "." is not part of the 1000 octets (RFC 5321 4.5.2).  The line is
		 * read in place: the message is copied once, into msg. */
		st = conn_read_line_ref(&s->conn, &line, SMTP_TEXT_LINE_MAX + 1, &len, dl);
		if (st == CONN_OK && len > SMTP_TEXT_LINE_MAX && line[0] != '.')
			st = CONN_TOOLONG;
		if (st == CONN_TIMEOUT) {
			reply(s, 421, SMTP_ENH_CONNECTION_TEMP, "%s Error: timeout exceeded while reading data; closing",
			      s->ctx->hostname);
			return -1;
		}
		if (st == CONN_EOF || st == CONN_ERROR) {
			sp_log_info("smtp %s: connection lost during DATA: %s", s->peer, conn_error(&s->conn));
			return -1;
		}
		if (st == CONN_TOOLONG) {
			data_fail(&derr, DATA_LINE_TOO_LONG);
			/* Whatever its ending, an over-long line cannot be followed by the
			 * end-of-data dot unless it ended in CRLF; be strict. */
			prev_crlf = s->conn.line_cr;
			prev_bare_lf = false;
			continue;
		}
		crlf = len >= 2 && line[len - 2] == '\r';
		if (memchr(line, '\r', len - (crlf ? 2 : 1)) != NULL) {
			data_fail(&derr, DATA_BARE_CR);
			prev_crlf = crlf;
			prev_bare_lf = false;
			continue;
		}
		if (!crlf) {
			if (!lf_ok)
				data_fail(&derr, DATA_BARE_LF);
			else if (line[0] == '.')
				data_fail(&derr, DATA_BARE_LF_DOT);
			else if (len + 1 > SMTP_TEXT_LINE_MAX)   /* with the CR it gains */
				data_fail(&derr, DATA_LINE_TOO_LONG);
			if (held_crlf)
				data_store(msg, "\r\n", 2, &derr);
			held_crlf = false;
			data_store(msg, line, len - 1, &derr);
			data_store(msg, "\r\n", 2, &derr);
			prev_crlf = false;
			prev_bare_lf = true;
			continue;
		}
		if (line[0] == '.') {
			if (prev_crlf && len == 3)
				break;          /* CRLF "." CRLF, as sent; a held CRLF was its start */
			if (!prev_crlf) {
				data_fail(&derr, DATA_BARE_LF_DOT);
				prev_crlf = true;
				prev_bare_lf = false;
				continue;
			}
		}
		if (len == 2 && prev_bare_lf && !held_crlf) {
			held_crlf = true;
			prev_crlf = true;
			prev_bare_lf = false;
			continue;
		}
		prev_crlf = true;
		prev_bare_lf = false;
		if (held_crlf)
			data_store(msg, "\r\n", 2, &derr);
		held_crlf = false;
		if (line[0] == '.')
			data_store(msg, line + 1, len - 1, &derr);
		else
			data_store(msg, line, len, &derr);
	}
	return (int)derr;
}

static void
log_transaction(struct smtp_session *s, size_t size, const struct sp_copies *copies,
                const struct relay_result *res, const struct smtp_reply *rep, int64_t started)
{
	struct sp_buf b;
	size_t i;

	sp_buf_init(&b, 0);
	sp_buf_printf(&b, "%s: from=<%s> size=%zu copies=%zu", s->env.id, s->env.mail_from, size,
	              copies ? copies->n : 0);
	for (i = 0; i < s->env.n_rcpts; i++) {
		const struct sp_rcpt *r = &s->env.rcpts[i];
		char safe[160];
		sp_buf_printf(&b, " rcpt=<%s> form=%s%s%s%s", r->addr, sp_form_name(r->form),
		              r->detail[0] ? " key=" : "", r->detail, r->bcc ? " bcc" : "");
		if (res && res->outcomes) {
			sp_sanitize(res->outcomes[i].text, strlen(res->outcomes[i].text), safe, sizeof safe);
			sp_buf_printf(&b, " upstream=\"%s\"", safe);
		}
	}
	sp_buf_printf(&b, " reply=\"%d %s\" user=%s peer=%s duration=%.3fs", rep->code, rep->enh,
	              s->auth_user ? s->auth_user : "-", s->peer, (double)(sp_now_ms() - started) / 1000.0);
	sp_log(rep->code / 100 == 2 ? SP_LOG_INFO : SP_LOG_WARN, "%s", b.data);
	sp_buf_free(&b);
}

/* The data path, in one line: compose the copies, relay them, one reply. */
static void
deliver(struct smtp_session *s, struct sp_buf *msg, int64_t started)
{
	struct sp_copies copies = { 0 };
	struct relay_result res = { 0 };
	struct smtp_reply rep = { 0 };
	char err[SP_ERRLEN];
	size_t size = msg->len;

	switch (sp_compose(s->policy, &s->env, msg->data, msg->len, &copies, err, sizeof err)) {
	case SP_COMPOSE_OK:
		break;
	case SP_COMPOSE_TEMPFAIL:
		smtp_reply_set(&rep, 451, SMTP_ENH_SYSTEM_TEMP, "Message not sent: %s", err);
		goto out;
	case SP_COMPOSE_PERMFAIL:
	default:
		smtp_reply_set(&rep, 554, SMTP_ENH_BAD_CONTENT, "Message not sent: %s", err);
		goto out;
	}
	/* Links must exist before anybody is told about them; if they cannot be
	 * stored, no link recipient gets anything in any form. */
	if (copies.link && link_publish(s->cfg, s->ctx->store, copies.link, err, sizeof err) < 0) {
		smtp_reply_set(&rep, 451, SMTP_ENH_SYSTEM_TEMP, "Message not sent: the link %s failed: %s",
		               s->cfg->link.upload_url[0] ? "upload" : "store", err);
		goto out;
	}
	{
		struct relay_creds creds = { NULL, NULL };
		if (s->cfg->proxy.auth == SP_AUTH_PASSTHROUGH) {
			creds.user = s->auth_user;
			creds.pass = s->auth_pass;
		}
		relay_deliver(s->ctx->relay, &creds, &s->env, &copies, &res);
	}
	smtp_reply_set(&rep, res.reply.code, res.reply.enh, "%s", res.reply.text);
	if (copies.link) {
		if (rep.code / 100 == 2)
			link_outbox_record(&s->env, copies.link, s->env.subject);
		else if (res.n_sent == 0 && res.n_queued == 0)
			link_unpublish(s->cfg, s->ctx->store, copies.link);
	}
out:
	reply(s, rep.code, rep.enh, "%s", rep.text);
	log_transaction(s, size, &copies, res.outcomes ? &res : NULL, &rep, started);
	sp_copies_free(&copies);
	relay_result_free(&res);
	smtp_reply_clear(&rep);
}

static void
proceed_data(struct smtp_session *s, const char *args)
{
	struct sp_buf msg;
	int64_t started = sp_now_ms();
	int r;

	/* The whole message is held (once) in memory, never beyond the limit. */
	sp_buf_init(&msg, s->cfg->proxy.max_message_size);
	s->env.arrival = sp_time();
	sp_buf_reserve(&msg, s->declared_size && s->declared_size < s->cfg->proxy.max_message_size
	                     ? s->declared_size : 0);
	reply(s, 354, SMTP_ENH_NONE, "End data with <CR><LF>.<CR><LF>");
	r = read_data(s, &msg);
	switch (r) {
	case -1:
		enter_state(s, SMTP_STATE_QUIT);
		break;
	case DATA_BARE_CR:
		reply(s, 550, SMTP_ENH_SYNTAX, "Message contains a bare CR (a CR not followed by LF); nothing sent "
		      "(RFC 5321 2.3.8)");
		sp_log_warn("smtp %s: rejected message with a bare CR (possible SMTP smuggling)", s->peer);
		break;
	case DATA_BARE_LF:
		if (s->cfg->proxy.bare_lf == SP_BARE_LF_REJECT)
			reply(s, 550, SMTP_ENH_SYNTAX, "Bare LF in data; nothing sent. Send CRLF line endings "
			      "(curl: --crlf), or see [proxy] bare_lf (it is reject)");
		else
			reply(s, 550, SMTP_ENH_SYNTAX, "Bare LF in data; nothing sent. Send CRLF line endings "
			      "(curl: --crlf), or authenticate: [proxy] bare_lf accepts bare LF only from "
			      "loopback or authenticated clients");
		sp_log_warn("smtp %s: rejected message with a bare LF ([proxy] bare_lf = %s, client %s)",
		            s->peer, s->cfg->proxy.bare_lf == SP_BARE_LF_REJECT ? "reject" : "accept-trusted",
		            bare_lf_trusted(s) ? "trusted" : "neither loopback nor authenticated");
		break;
	case DATA_BARE_LF_DOT:
		reply(s, 550, SMTP_ENH_SYNTAX, "A line starting with \".\" next to a bare LF could be the end of "
		      "data or dot-stuffed; nothing sent. Send CRLF line endings (curl: --crlf)");
		sp_log_warn("smtp %s: rejected message with a \".\" line next to a bare LF "
		            "(possible SMTP smuggling)", s->peer);
		break;
	case DATA_LINE_TOO_LONG:
		reply(s, 550, SMTP_ENH_SYNTAX, "Message has a line longer than %d octets; nothing sent "
		      "(RFC 5321 4.5.3.1.6)", SMTP_TEXT_LINE_MAX);
		break;
	case DATA_TOO_BIG:
		reply(s, 552, SMTP_ENH_TOO_BIG, "Message size exceeds fixed maximum message size (%llu)",
		      (unsigned long long)s->cfg->proxy.max_message_size);
		break;
	case DATA_OK:
	default:
		if (msg.data == NULL)
			sp_buf_append(&msg, "", 0);
		deliver(s, &msg, started);
		break;
	}
	/* The message was plaintext: wipe it. */
	sp_buf_wipe(&msg);
	if (s->state != SMTP_STATE_QUIT)
		reset_transaction(s);
}

/* ---- the rest ---- */

static void
proceed_rset(struct smtp_session *s, const char *args)
{
	reset_transaction(s);
	reply(s, 250, SMTP_ENH_OK, "Ok");
}

static void
proceed_noop(struct smtp_session *s, const char *args)
{
	reply(s, 250, SMTP_ENH_OK, "Ok");
}

static void
proceed_quit(struct smtp_session *s, const char *args)
{
	reply(s, 221, SMTP_ENH_OK, "Bye");
	enter_state(s, SMTP_STATE_QUIT);
}

static void
proceed_help(struct smtp_session *s, const char *args)
{
	reply(s, 214, SMTP_ENH_OK, "sealpost: EHLO HELO STARTTLS AUTH MAIL RCPT DATA RSET NOOP QUIT HELP VRFY; "
	      "see sealpost(8)");
}

static void
proceed_vrfy(struct smtp_session *s, const char *args)
{
	reply(s, 252, SMTP_ENH_PROTOCOL_OK, "Cannot VRFY user, but will accept message and attempt delivery");
}

static void
proceed_not_implemented(struct smtp_session *s, const char *args)
{
	reply_error(s, 502, SMTP_ENH_BAD_COMMAND, "Command not implemented");
}

#define DURING_TRANSACTION(verb) verb " not allowed during a mail transaction"

static const struct smtp_cmd commands[] = {
	{ "EHLO", CMD_NEED_ARG, ST_ANY, "EHLO hostname", NULL, check_helo, proceed_ehlo },
	{ "HELO", CMD_NEED_ARG, ST_ANY, "HELO hostname", NULL, check_helo, proceed_helo },
	{ "STARTTLS", CMD_NO_ARG, ST_HELO, "STARTTLS", DURING_TRANSACTION("STARTTLS"),
	  check_starttls, proceed_starttls },
	{ "AUTH", CMD_NEED_ARG, ST_HELO, "AUTH mechanism", DURING_TRANSACTION("AUTH"),
	  check_auth, proceed_auth },
	{ "MAIL", CMD_NEED_ARG, ST_HELO, "MAIL FROM:<address>", "Nested MAIL command",
	  check_mail, proceed_mail },
	{ "RCPT", CMD_NEED_ARG | CMD_RCPT_ATTEMPT, ST_TRANSACTION, "RCPT TO:<address>",
	  "Need MAIL before RCPT", check_rcpt, proceed_rcpt },
	{ "DATA", CMD_NO_ARG, ST_RCPT, "DATA", "Need RCPT before DATA", check_data, proceed_data },
	{ "RSET", CMD_NO_ARG, ST_ANY, "RSET", NULL, NULL, proceed_rset },
	{ "NOOP", 0, ST_ANY, "NOOP", NULL, NULL, proceed_noop },
	{ "QUIT", CMD_NO_ARG, ST_ANY, "QUIT", NULL, NULL, proceed_quit },
	{ "HELP", 0, ST_ANY, "HELP", NULL, NULL, proceed_help },
	{ "VRFY", CMD_NEED_ARG, ST_ANY, "VRFY address", NULL, NULL, proceed_vrfy },
	{ "EXPN", 0, ST_ANY, "EXPN", NULL, NULL, proceed_not_implemented },
	{ "BDAT", 0, ST_ANY, "BDAT", NULL, NULL, proceed_not_implemented },
	{ "TURN", 0, ST_ANY, "TURN", NULL, NULL, proceed_not_implemented },
	{ "ETRN", 0, ST_ANY, "ETRN", NULL, NULL, proceed_not_implemented },
	/* Browsers, proxies and scanners (Postfix: smtpd_forbidden_commands). */
	{ "GET", CMD_HTTP, 0, NULL, NULL, NULL, NULL },
	{ "POST", CMD_HTTP, 0, NULL, NULL, NULL, NULL },
	{ "HEAD", CMD_HTTP, 0, NULL, NULL, NULL, NULL },
	{ "PUT", CMD_HTTP, 0, NULL, NULL, NULL, NULL },
	{ "DELETE", CMD_HTTP, 0, NULL, NULL, NULL, NULL },
	{ "OPTIONS", CMD_HTTP, 0, NULL, NULL, NULL, NULL },
	{ "CONNECT", CMD_HTTP, 0, NULL, NULL, NULL, NULL },
	{ "PATCH", CMD_HTTP, 0, NULL, NULL, NULL, NULL },
};

static const struct smtp_cmd *
lookup_command(const char *verb, size_t n)
{
	size_t i;

	for (i = 0; i < SP_ARRAY_LEN(commands); i++)
		if (strlen(commands[i].verb) == n && strncasecmp(commands[i].verb, verb, n) == 0)
			return &commands[i];
	return NULL;
}

/* One command line: validate framing, look up, check, proceed. */
static void
handle_line(struct smtp_session *s, char *line, size_t len)
{
	const struct smtp_cmd *cmd;
	const char *args;
	size_t vlen, i;

	/* Commands end in CRLF (RFC 5321 2.3.8), from every client: the clients
	 * that send bare LF in data (curl without --crlf) send commands with
	 * CRLF, and a command split at a bare LF is one way to disagree with
	 * the client about where things end.  A CR before the CRLF is caught
	 * below as an invalid character. */
	s->cmd_crlf = len >= 2 && line[len - 2] == '\r';
	if (!s->cmd_crlf) {
		reply_error(s, 500, SMTP_ENH_SYNTAX, "Command line must end in CRLF, not a bare LF (RFC 5321 2.3.8)");
		return;
	}
	len -= 2;
	line[len] = '\0';
	for (i = 0; i < len; i++) {
		if ((unsigned char)line[i] < 0x20 && line[i] != '\t') {
			reply_error(s, 500, SMTP_ENH_SYNTAX, "Invalid character in command");
			return;
		}
	}
	vlen = strcspn(line, " ");
	cmd = lookup_command(line, vlen);
	if (cmd && (cmd->flags & CMD_HTTP)) {
		sp_log_warn("smtp %s: HTTP request on the SMTP port; hanging up", s->peer);
		reply(s, 554, SMTP_ENH_SECURITY, "This is an SMTP server, not HTTP; closing connection");
		enter_state(s, SMTP_STATE_QUIT);
		return;
	}
	/* The 512-octet command limit; AUTH lines may be longer (RFC 4954 4). */
	if (len + 2 > SMTP_CMD_LINE_MAX && !(cmd && strcmp(cmd->verb, "AUTH") == 0)) {
		reply_error(s, 500, SMTP_ENH_SYNTAX, "Line too long (at most %d octets)", SMTP_CMD_LINE_MAX);
		return;
	}
	if (sp_log_enabled(SP_LOG_DEBUG)) {
		char safe[SMTP_CMD_LINE_MAX];
		/* AUTH payloads never reach the log. */
		if (cmd && strcmp(cmd->verb, "AUTH") == 0)
			sp_sanitize(line, vlen + (line[vlen] ? 1 + strcspn(line + vlen + 1, " ") : 0), safe, sizeof safe);
		else
			sp_sanitize(line, len, safe, sizeof safe);
		sp_log_debug("smtp %s: < %s", s->peer, safe);
	}
	if (cmd == NULL) {
		reply_error(s, 500, SMTP_ENH_BAD_COMMAND, "Command unrecognized");
		return;
	}
	args = line + vlen;
	while (*args == ' ')
		args++;
	if ((cmd->flags & CMD_NEED_ARG) && *args == '\0') {
		reply_error(s, 501, SMTP_ENH_BAD_ARGS, "Syntax: %s", cmd->syntax);
		return;
	}
	if ((cmd->flags & CMD_NO_ARG) && *args != '\0') {
		reply_error(s, 501, SMTP_ENH_BAD_ARGS, "Syntax: %s", cmd->syntax);
		return;
	}
	if (s->state == SMTP_STATE_INIT && !(cmd->states & ST_INIT)) {
		reply_error(s, 503, SMTP_ENH_BAD_COMMAND, "Send EHLO/HELO first");
		return;
	}
	/* Every RCPT inside a transaction counts, accepted or not: DATA after
	 * nothing but refused ones is "No valid recipients" (RFC 2920 3.1). */
	if ((cmd->flags & CMD_RCPT_ATTEMPT) && state_allows(s, cmd))
		s->rcpt_attempts++;
	if (cmd->check && cmd->check(s, cmd, args) < 0)
		return;
	cmd->proceed(s, args);
}

void
smtp_session_run(struct smtp_server_ctx *ctx, int fd, bool implicit_tls)
{
	struct smtp_session *s = sp_xcalloc(1, sizeof *s);
	char line[SMTP_AUTH_LINE_MAX + 1];
	char err[SP_ERRLEN];
	size_t len;

	s->ctx = ctx;
	s->cfg = ctx->cfg;
	s->session_deadline = sp_now_ms() + (int64_t)SMTP_SESSION_MAX_S * 1000;
	conn_init(&s->conn, fd);
	sp_net_peer_name(fd, s->peer, sizeof s->peer);
	/* The address as peer_limits keys it. */
	if (!sp_net_peer_ip(fd, s->ip, sizeof s->ip))
		sp_strlcpy(s->ip, "unknown", sizeof s->ip);
	s->loopback_listener = sp_net_local_is_loopback(fd);
	s->loopback_peer = sp_net_peer_is_loopback(fd);
	sp_envelope_init(&s->env);
	sp_log_debug("smtp %s: connected%s", s->peer, implicit_tls ? " (implicit TLS)" : "");
	if (implicit_tls && conn_starttls_server(&s->conn, ctx->tls, cmd_deadline(s)) < 0) {
		sp_log_info("smtp %s: TLS handshake failed: %s", s->peer, conn_error(&s->conn));
		goto out;
	}
	s->policy = sp_policy_new(s->cfg, err, sizeof err);
	if (s->policy == NULL) {
		reply(s, 421, SMTP_ENH_SYSTEM_TEMP, "%s Service not available: %s", ctx->hostname, err);
		goto out;
	}
	reply(s, 220, SMTP_ENH_NONE, "%s ESMTP sealpost", ctx->hostname);
	while (s->state != SMTP_STATE_QUIT) {
		enum conn_status st = conn_read_line(&s->conn, line, SMTP_AUTH_LINE_MAX, &len, cmd_deadline(s));
		if (st == CONN_TIMEOUT) {
			reply(s, 421, SMTP_ENH_CONNECTION_TEMP, "%s Error: timeout exceeded; closing connection", ctx->hostname);
			sp_log_info("smtp %s: timeout in state %s", s->peer, state_names[s->state]);
			break;
		}
		if (st == CONN_EOF || st == CONN_ERROR) {
			sp_log_debug("smtp %s: %s", s->peer, conn_error(&s->conn));
			break;
		}
		if (st == CONN_TOOLONG)
			reply_error(s, 500, SMTP_ENH_SYNTAX, "Line too long (at most %d octets)", SMTP_CMD_LINE_MAX);
		else
			handle_line(s, line, len);
		if (s->errors >= SMTP_MAX_ERRORS) {
			reply(s, 421, SMTP_ENH_SECURITY_TEMP, "%s Error: too many errors; closing connection", ctx->hostname);
			sp_log_warn("smtp %s: too many errors; hanging up", s->peer);
			break;
		}
	}
	conn_flush(&s->conn, sp_now_ms() + 5000);
out:
	sp_log_debug("smtp %s: disconnected (in %llu bytes, out %llu bytes)", s->peer,
	             (unsigned long long)s->conn.bytes_in, (unsigned long long)s->conn.bytes_out);
	explicit_bzero(line, sizeof line);
	conn_close(&s->conn);
	sp_envelope_free(&s->env);
	sp_policy_free(s->policy);
	forget_auth(s);
	free(s);
}
