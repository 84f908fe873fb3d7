/* config.h - sealpost.conf, read with GLib's key-file parser.
 *
 * Every key (docs/configuration.md) is described once in a table (config.c) with its
 * type, default and reason; loading fills struct sp_config and reports the first
 * problem as "FILE:LINE: [section] key: reason".
 */
#ifndef SP_CONFIG_H
#define SP_CONFIG_H

#include <stdbool.h>
#include <stdint.h>

#include "log.h"

#define SP_MAX_LISTEN 16

struct sp_listen {
	char host[256];        /* numeric address or name, no brackets */
	char port[8];
	bool implicit_tls;     /* "ADDR:PORT tls": TLS from the first byte (465 style) */
};

/* Networks whose forwarding headers the viewer believes ([linkserver]
 * trusted_proxies).  A list in a config file, not a database: more than this is
 * a mistake. */
#define SP_MAX_NETS 64

/* One address block.  IPv4 is held as IPv4-mapped IPv6 (::ffff:a.b.c.d, its
 * prefix + 96), so one comparison serves both families. */
struct sp_net {
	unsigned char addr[16];
	unsigned prefix;       /* 0..128 */
};

struct sp_net_list {
	unsigned n;
	struct sp_net net[SP_MAX_NETS];
};

enum sp_auth_mode { SP_AUTH_NONE, SP_AUTH_USERS, SP_AUTH_PASSTHROUGH };
enum sp_upstream_tls { SP_UPSTREAM_STARTTLS, SP_UPSTREAM_TLS, SP_UPSTREAM_NONE };
enum sp_pgp_trust { SP_TRUST_KEYRING, SP_TRUST_ALWAYS };
enum sp_linkserver_mode { SP_LINKSERVER_EMBEDDED, SP_LINKSERVER_OFF };
enum sp_no_key { SP_NOKEY_LINK, SP_NOKEY_REJECT, SP_NOKEY_PLAIN };
/* [proxy] bare_lf: a line of message data ending in LF without CR.  Trusted =
 * a loopback peer or an authenticated client. */
enum sp_bare_lf { SP_BARE_LF_ACCEPT_TRUSTED, SP_BARE_LF_REJECT };
/* [discovery] on_key_change: a lookup that finds another key than the one
 * discovered before for the same address. */
enum sp_key_change { SP_KEY_CHANGE_NEXT_FORM, SP_KEY_CHANGE_ACCEPT };

struct sp_config {
	char *path;                /* the file that was read */
	char *state_dir;           /* /var/lib/sealpost or $XDG_STATE_HOME/sealpost */

	struct {
		struct sp_listen listen[SP_MAX_LISTEN];
		unsigned n_listen;
		char *tls_cert;
		char *tls_key;
		bool tls_generate;     /* neither cert nor key configured: make one */
		enum sp_auth_mode auth;
		char *users_file;
		uint64_t max_message_size;
		uint64_t max_recipients;
		uint64_t max_connections;
		uint64_t max_connections_per_ip;
		char *user;
		int64_t timeout;       /* waiting for a command */
		int64_t data_timeout;  /* waiting for the next chunk of DATA */
		enum sp_bare_lf bare_lf;
	} proxy;

	struct {
		char *host;
		char port[8];
		enum sp_upstream_tls tls;
		char *ca_file;
		char *username;
		char *password_file;
		char *password_command;
		char *helo;
		int64_t timeout;
	} upstream;

	struct {
		char *gnupg_home;
		/* gnupg_home was named (in the config, or by GNUPGHOME): it must
		 * exist.  Only the fallback ~/.gnupg may be absent (no keys). */
		bool gnupg_home_required;
		char *gpg_program;     /* "" = GPGME's default gpg */
		enum sp_pgp_trust trust;
		bool hide_subject;
		bool encrypt_to_self;
		bool sign;
		int64_t timeout;       /* one gpg operation, then it is cancelled */
	} pgp;

	struct {
		char *recipients;
		bool recipients_explicit;
	} sodium;

	struct {
		char *store;
		char *base_url;
		int64_t expiry;
		uint64_t max_views;
		uint64_t max_failed_attempts;
		uint64_t version;      /* 2; 1 only while a remote viewer is older (configuration.md) */
		char *upload_url;
		char *upload_token_file;
		char *templates;       /* "" = the built-in notification templates */
	} link;

	struct {
		enum sp_linkserver_mode mode;
		struct sp_listen listen;
		char *tls_cert;
		char *tls_key;
		bool outbox;
		struct sp_net_list trusted_proxies;
		struct sp_listen outbox_listen; /* loopback only, never `listen` */
		uint64_t reply_max_size;      /* secure reply: bytes of one reply */
		uint64_t reply_max_count;     /* replies per unlock; 0 = no replies */
		int64_t reply_min_interval;   /* seconds between two replies of one unlock */
	} linkserver;

	struct {
		bool wkd;              /* Web Key Directory lookups */
		char *keyserver;       /* VKS base URL; "" = off */
		int64_t timeout;       /* budget of all lookups for one recipient */
		int64_t ttl;           /* a discovered key is looked up again after this */
		int64_t negative_ttl;  /* "no key" is remembered this long */
		enum sp_key_change on_key_change;
		char *ca_file;         /* extra trust anchors (PEM) for lookups */
		char *connect_to;      /* libcurl CONNECT_TO entries, ';'-separated */
	} discovery;

	struct {
		enum sp_no_key no_key;
	} policy;

	struct {
		char *dir;
		int64_t lifetime;
		int64_t min_backoff;
		int64_t max_backoff;
	} queue;

	struct {
		enum sp_log_level level;
	} log;
};

/* Which file to read: explicit (-c), else $XDG_CONFIG_HOME/sealpost/sealpost.conf,
 * else /etc/sealpost/sealpost.conf.  Returns the path (caller frees), or NULL
 * with err set when none exists. */
char *sp_config_find(const char *explicit_path, char *err, size_t errsz);

/* Load and validate.  need_upstream: whether [upstream] host is required
 * (the viewer alone does not need it).  Returns 0, or -1 with err set. */
int sp_config_load(struct sp_config *cfg, const char *path, bool need_upstream,
                   char *err, size_t errsz);
/* Same, from text in memory (tests, fuzzing); `name` is used in messages.
 * Returns 0, or -1 with err set. */
int sp_config_load_data(struct sp_config *cfg, const char *name, const char *data,
                        size_t len, bool need_upstream, char *err, size_t errsz);
void sp_config_free(struct sp_config *cfg);

/* The default state directory for this user (allocated; caller frees). */
char *sp_config_default_state_dir(void);

/* "127.0.0.1:587", "[::1]:587 tls", "localhost:2525".  The parsers below
 * return 0, or -1 with err set. */
int sp_parse_listen(const char *s, struct sp_listen *out, char *err, size_t errsz);

/* An IPv4 or IPv6 address in text ("192.0.2.1", "2001:db8::1") into the
 * 16-byte form of struct sp_net (IPv4 mapped).  Returns false when it is none. */
bool sp_addr_parse(const char *s, unsigned char out[16]);
/* "ADDR" or "ADDR/PREFIX" (IPv4 or IPv6); host bits must be zero. */
int sp_parse_net(const char *s, struct sp_net *out, char *err, size_t errsz);
/* Comma-separated sp_parse_net() items; empty is an empty list. */
int sp_parse_net_list(const char *s, struct sp_net_list *out, char *err, size_t errsz);
/* Is the address (16-byte form) inside one of the list's blocks? */
bool sp_net_list_contains(const struct sp_net_list *l, const unsigned char addr[16]);

/* The config file's word for each value (static strings). */
const char *sp_auth_mode_name(enum sp_auth_mode m);
const char *sp_upstream_tls_name(enum sp_upstream_tls t);
const char *sp_no_key_name(enum sp_no_key n);

#endif
