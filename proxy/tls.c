/* tls.c - OpenSSL contexts and the first-run self-signed certificate. */
#include "tls.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include "util.h"

/* Validity of the generated certificate: long, since clients pin it. */
#define TLS_SELFSIGNED_DAYS 3650

static void
ssl_err(char *err, size_t errsz, const char *what)
{
	unsigned long e = ERR_get_error();
	char buf[256] = "unknown error";

	if (e)
		ERR_error_string_n(e, buf, sizeof buf);
	sp_seterr(err, errsz, "%s: %s", what, buf);
	ERR_clear_error();
}

static int
add_ext(X509 *cert, int nid, const char *value)
{
	X509V3_CTX ctx;
	X509_EXTENSION *ex;

	X509V3_set_ctx_nodb(&ctx);
	X509V3_set_ctx(&ctx, cert, cert, NULL, NULL, 0);
	ex = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
	if (ex == NULL)
		return -1;
	X509_add_ext(cert, ex, -1);
	X509_EXTENSION_free(ex);
	return 0;
}

int
tls_ensure_selfsigned(const char *cert_path, const char *key_path, char *err, size_t errsz)
{
	EVP_PKEY *pkey = NULL;
	X509 *cert = NULL;
	X509_NAME *name;
	FILE *kf = NULL, *cf = NULL;
	unsigned char serial[16];
	BIGNUM *bn = NULL;
	char *tmp = NULL;
	int fd = -1, rv = -1;

	if (access(cert_path, F_OK) == 0 && access(key_path, F_OK) == 0)
		return 0;
	pkey = EVP_EC_gen("P-256");
	if (pkey == NULL) {
		ssl_err(err, errsz, "generating key");
		goto out;
	}
	cert = X509_new();
	X509_set_version(cert, 2);
	if (RAND_bytes(serial, sizeof serial) != 1) {
		ssl_err(err, errsz, "random serial");
		goto out;
	}
	serial[0] &= 0x7f;
	bn = BN_bin2bn(serial, sizeof serial, NULL);
	BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert));
	X509_gmtime_adj(X509_getm_notBefore(cert), -3600);
	X509_gmtime_adj(X509_getm_notAfter(cert), (long)TLS_SELFSIGNED_DAYS * 86400);
	X509_set_pubkey(cert, pkey);
	name = X509_get_subject_name(cert);
	X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, (const unsigned char *)"sealpost", -1, -1, 0);
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"localhost", -1, -1, 0);
	X509_set_issuer_name(cert, name);
	if (add_ext(cert, NID_subject_alt_name, "DNS:localhost,IP:127.0.0.1,IP:::1") < 0 ||
	    add_ext(cert, NID_basic_constraints, "critical,CA:FALSE") < 0 ||
	    add_ext(cert, NID_ext_key_usage, "serverAuth") < 0) {
		ssl_err(err, errsz, "certificate extensions");
		goto out;
	}
	if (X509_sign(cert, pkey, EVP_sha256()) == 0) {
		ssl_err(err, errsz, "signing certificate");
		goto out;
	}
	/* The key first, exclusively, never readable by others. */
	fd = open(key_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		sp_seterr(err, errsz, "%s: %s", key_path, strerror(errno));
		goto out;
	}
	kf = fdopen(fd, "w");
	fd = -1;
	if (kf == NULL || PEM_write_PrivateKey(kf, pkey, NULL, NULL, 0, NULL, NULL) != 1 ||
	    fflush(kf) != 0 || fsync(fileno(kf)) != 0) {
		sp_seterr(err, errsz, "%s: cannot write key", key_path);
		unlink(key_path);
		goto out;
	}
	tmp = sp_xasprintf("%s.tmp", cert_path);
	cf = fopen(tmp, "w");
	if (cf == NULL || PEM_write_X509(cf, cert) != 1 || fflush(cf) != 0 || fsync(fileno(cf)) != 0 ||
	    rename(tmp, cert_path) != 0) {
		sp_seterr(err, errsz, "%s: cannot write certificate: %s", cert_path, strerror(errno));
		unlink(tmp);
		unlink(key_path);
		goto out;
	}
	rv = 0;
out:
	if (kf)
		fclose(kf);
	if (cf)
		fclose(cf);
	if (fd >= 0)
		close(fd);
	free(tmp);
	BN_free(bn);
	X509_free(cert);
	EVP_PKEY_free(pkey);
	return rv;
}

static void
common_ctx_setup(SSL_CTX *ctx)
{
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION |
	                    SSL_OP_IGNORE_UNEXPECTED_EOF | SSL_OP_CIPHER_SERVER_PREFERENCE);
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
}

SSL_CTX *
tls_server_ctx(const char *cert_path, const char *key_path, char *err, size_t errsz)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());

	if (ctx == NULL) {
		ssl_err(err, errsz, "TLS context");
		return NULL;
	}
	common_ctx_setup(ctx);
	if (SSL_CTX_use_certificate_chain_file(ctx, cert_path) != 1) {
		ssl_err(err, errsz, cert_path);
		goto fail;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, key_path, SSL_FILETYPE_PEM) != 1) {
		ssl_err(err, errsz, key_path);
		goto fail;
	}
	if (SSL_CTX_check_private_key(ctx) != 1) {
		ssl_err(err, errsz, "certificate and key do not match");
		goto fail;
	}
	return ctx;
fail:
	SSL_CTX_free(ctx);
	return NULL;
}

SSL_CTX *
tls_client_ctx(const char *ca_file, char *err, size_t errsz)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());

	if (ctx == NULL) {
		ssl_err(err, errsz, "TLS context");
		return NULL;
	}
	common_ctx_setup(ctx);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	if (ca_file && *ca_file) {
		if (SSL_CTX_load_verify_locations(ctx, ca_file, NULL) != 1) {
			ssl_err(err, errsz, ca_file);
			SSL_CTX_free(ctx);
			return NULL;
		}
	} else if (SSL_CTX_set_default_verify_paths(ctx) != 1) {
		ssl_err(err, errsz, "system trust store");
		SSL_CTX_free(ctx);
		return NULL;
	}
	return ctx;
}

int
tls_cert_fingerprint(const char *cert_path, char *out, size_t outsz, char *err, size_t errsz)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0, i;
	FILE *f = fopen(cert_path, "r");
	X509 *cert;
	size_t o = 0;

	if (f == NULL) {
		sp_seterr(err, errsz, "%s: %s", cert_path, strerror(errno));
		return -1;
	}
	cert = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	if (cert == NULL || X509_digest(cert, EVP_sha256(), md, &mdlen) != 1) {
		X509_free(cert);
		ssl_err(err, errsz, cert_path);
		return -1;
	}
	X509_free(cert);
	for (i = 0; i < mdlen && o + 3 < outsz; i++)
		o += (size_t)snprintf(out + o, outsz - o, i ? ":%02X" : "%02X", md[i]);
	return 0;
}

void
tls_peer_summary(SSL *ssl, char *out, size_t outsz)
{
	X509 *cert = SSL_get1_peer_certificate(ssl);
	char subj[256] = "", iss[256] = "", until[64] = "";
	BIO *b;

	if (cert == NULL) {
		snprintf(out, outsz, "no certificate");
		return;
	}
	X509_NAME_oneline(X509_get_subject_name(cert), subj, sizeof subj);
	X509_NAME_oneline(X509_get_issuer_name(cert), iss, sizeof iss);
	b = BIO_new(BIO_s_mem());
	if (b && ASN1_TIME_print(b, X509_get0_notAfter(cert)) == 1) {
		int n = BIO_read(b, until, sizeof until - 1);
		until[n > 0 ? n : 0] = '\0';
	}
	BIO_free(b);
	snprintf(out, outsz, "subject %s, issuer %s, expires %s", subj, iss, until);
	X509_free(cert);
}
