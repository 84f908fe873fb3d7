/* tls.h - OpenSSL contexts for both sides of the proxy.
 *
 * Server side (mail client -> sealpost): the configured certificate, or a
 * self-signed one generated on first run.  Client side (sealpost -> upstream):
 * TLS >= 1.2, chain verified against ca_file or the system store, host name and
 * SNI set per connection (conn_starttls_client).
 */
#ifndef SP_TLS_H
#define SP_TLS_H

#include <stdbool.h>
#include <stddef.h>

#include <openssl/ssl.h>

/* Make a self-signed P-256 certificate for localhost/127.0.0.1/::1 at
 * cert_path/key_path unless both already exist (key written 0600, O_EXCL).
 * The functions here that take err return 0 (or the context), or -1 (NULL)
 * with err set. */
int tls_ensure_selfsigned(const char *cert_path, const char *key_path, char *err, size_t errsz);
SSL_CTX *tls_server_ctx(const char *cert_path, const char *key_path, char *err, size_t errsz);
/* ca_file NULL or "": the system trust store. */
SSL_CTX *tls_client_ctx(const char *ca_file, char *err, size_t errsz);
/* SHA-256 fingerprint of the certificate in a PEM file, "AB:CD:...". */
int tls_cert_fingerprint(const char *cert_path, char *out, size_t outsz, char *err, size_t errsz);
/* Subject, issuer and notAfter of the peer certificate, for `sealpost check`. */
void tls_peer_summary(SSL *ssl, char *out, size_t outsz);

#endif
