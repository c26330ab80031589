/*
 * TLS server contexts; see tls.h.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "config.h"
#include "log.h"
#include "tls.h"

#define TLS_TICKET_KEYS_LEN	80	/* name 16 + HMAC 32 + AES 32 */
#define TLS_PEM_MAX		(1024 * 1024)

static unsigned char	 tls_ticket_keys[TLS_TICKET_KEYS_LEN];
static int		 tls_have_ticket_keys;

int
tls_enabled(const struct rt_config *conf)
{
	return conf->c_listen_tls[0] != '\0' && conf->c_tls_certificate[0] != '\0';
}

void
tls_ticket_keys_init(void)
{
	if (RAND_bytes(tls_ticket_keys, sizeof(tls_ticket_keys)) != 1)
		fatalx("%s: no randomness for TLS ticket keys", __func__);
	tls_have_ticket_keys = 1;
}

const char *
tls_error_string(unsigned long e, char *buf, size_t len)
{
	if (e == 0)
		snprintf(buf, len, "unknown error");
	else
		ERR_error_string_n(e, buf, len);
	return buf;
}

static int
tls_file_read(const char *path, char **out, size_t *outlen, char *err, size_t errlen)
{
	FILE	*fp;
	char	*buf;
	size_t	 n;

	if ((fp = fopen(path, "r")) == NULL) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	if ((buf = malloc(TLS_PEM_MAX + 1)) == NULL)
		fatal("malloc");
	n = fread(buf, 1, TLS_PEM_MAX + 1, fp);
	fclose(fp);
	if (n == 0 || n > TLS_PEM_MAX) {
		snprintf(err, errlen, "%s: %s", path, n == 0 ? "empty or unreadable" :
		    "larger than 1 MiB");
		free(buf);
		return -1;
	}
	buf[n] = '\0';
	*out = buf;
	*outlen = n;
	return 0;
}

int
tls_pem_read(const struct rt_config *conf, struct tls_pem *pem, char *err, size_t errlen)
{
	const char	*keyfile = conf->c_tls_certificate_key[0] != '\0' ?
			    conf->c_tls_certificate_key : conf->c_tls_certificate;

	memset(pem, 0, sizeof(*pem));
	if (tls_file_read(conf->c_tls_certificate, &pem->tp_cert, &pem->tp_certlen,
	    err, errlen) == -1)
		return -1;
	if (tls_file_read(keyfile, &pem->tp_key, &pem->tp_keylen, err, errlen) == -1) {
		tls_pem_free(pem);
		return -1;
	}
	if (pem->tp_certlen + pem->tp_keylen > TLS_PEMS_MAX) {
		snprintf(err, errlen, "%s: the certificate and the key together take %zu "
		    "bytes, over %d", conf->c_tls_certificate, pem->tp_certlen +
		    pem->tp_keylen, TLS_PEMS_MAX);
		tls_pem_free(pem);
		return -1;
	}
	return 0;
}

void
tls_pem_free(struct tls_pem *pem)
{
	if (pem->tp_key != NULL) {
		OPENSSL_cleanse(pem->tp_key, pem->tp_keylen);
		free(pem->tp_key);
	}
	free(pem->tp_cert);
	memset(pem, 0, sizeof(*pem));
}

static int
tls_version(const char *name)
{
	if (strcasecmp(name, "TLSv1.2") == 0)
		return TLS1_2_VERSION;
	if (strcasecmp(name, "TLSv1.3") == 0)
		return TLS1_3_VERSION;
	return -1;
}

int
tls_parse_protocols(const char *s, int *min, int *max, char *err, size_t errlen)
{
	char	 copy[256], *p, *tok, *save = NULL;
	int	 v;

	*min = *max = 0;
	snprintf(copy, sizeof(copy), "%s", s);
	for (p = copy; (tok = strtok_r(p, " \t,", &save)) != NULL; p = NULL) {
		if ((v = tls_version(tok)) == -1) {
			snprintf(err, errlen, "tls_protocols: '%s' is not TLSv1.2 or TLSv1.3"
			    " (older versions are not offered)", tok);
			return -1;
		}
		if (*min == 0 || v < *min)
			*min = v;
		if (v > *max)
			*max = v;
	}
	if (*min == 0) {
		snprintf(err, errlen, "tls_protocols: no protocol named");
		return -1;
	}
	return 0;
}

/* ALPN: we speak HTTP/1.1 (the WebSocket upgrade) and nothing else. */
static int
tls_alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen,
    const unsigned char *in, unsigned int inlen, void *arg)
{
	unsigned int	 i;

	(void)ssl;
	(void)arg;
	for (i = 0; i < inlen && i + 1 + in[i] <= inlen; i += 1 + in[i])
		if (in[i] == 8 && memcmp(in + i + 1, "http/1.1", 8) == 0) {
			*out = in + i + 1;
			*outlen = 8;
			return SSL_TLSEXT_ERR_OK;
		}
	return SSL_TLSEXT_ERR_NOACK;
}

static int
tls_load_chain(SSL_CTX *ctx, const struct tls_pem *pem, char *err, size_t errlen)
{
	BIO	*bio;
	X509	*x;
	int	 n = 0;

	if ((bio = BIO_new_mem_buf(pem->tp_cert, (int)pem->tp_certlen)) == NULL)
		fatalx("BIO_new_mem_buf() failed");
	if ((x = PEM_read_bio_X509_AUX(bio, NULL, NULL, NULL)) == NULL ||
	    SSL_CTX_use_certificate(ctx, x) != 1) {
		snprintf(err, errlen, "no usable certificate in the PEM file");
		X509_free(x);
		BIO_free(bio);
		return -1;
	}
	X509_free(x);
	/* the rest of a full-chain file are intermediates */
	while ((x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
		if (SSL_CTX_add0_chain_cert(ctx, x) != 1) {
			X509_free(x);
			BIO_free(bio);
			snprintf(err, errlen, "bad intermediate certificate %d", n + 1);
			return -1;
		}
		n++;
	}
	ERR_clear_error();	/* the loop ends on "no start line" */
	BIO_free(bio);
	return 0;
}

/* A passphrase is asked for: there is none (*(int *)u records the asking). */
static int
tls_no_passphrase(char *buf, int size, int rwflag, void *u)
{
	(void)buf;
	(void)size;
	(void)rwflag;
	*(int *)u = 1;
	return -1;
}

static int
tls_load_key(SSL_CTX *ctx, const struct tls_pem *pem, char *err, size_t errlen)
{
	BIO		*bio;
	EVP_PKEY	*k;
	int		 asked = 0;

	if ((bio = BIO_new_mem_buf(pem->tp_key, (int)pem->tp_keylen)) == NULL)
		fatalx("BIO_new_mem_buf() failed");
	/* never OpenSSL's own prompt on the terminal: that would hang a start,
	 * -t, or a master reloading */
	k = PEM_read_bio_PrivateKey(bio, NULL, tls_no_passphrase, &asked);
	BIO_free(bio);
	if (k == NULL) {
		ERR_clear_error();
		snprintf(err, errlen, asked ? "the private key is encrypted, and a passphrase "
		    "is not supported (store it decrypted: openssl pkey -in KEY -out NEW)" :
		    "no usable private key in the file");
		return -1;
	}
	/* say "does not match" whatever the key type, before OpenSSL says less */
	if (SSL_CTX_get0_certificate(ctx) == NULL ||
	    X509_check_private_key(SSL_CTX_get0_certificate(ctx), k) != 1) {
		snprintf(err, errlen, "the private key does not match the certificate");
		EVP_PKEY_free(k);
		return -1;
	}
	if (SSL_CTX_use_PrivateKey(ctx, k) != 1 || SSL_CTX_check_private_key(ctx) != 1) {
		snprintf(err, errlen, "the private key cannot be used with the certificate");
		EVP_PKEY_free(k);
		return -1;
	}
	EVP_PKEY_free(k);
	return 0;
}

static int
tls_ctx_settings(SSL_CTX *ctx, const struct rt_config *conf, char *err, size_t errlen)
{
	int	 min, max;

	if (tls_parse_protocols(conf->c_tls_protocols, &min, &max, err, errlen) == -1)
		return -1;
	SSL_CTX_set_min_proto_version(ctx, min);
	SSL_CTX_set_max_proto_version(ctx, max);
	if (conf->c_tls_ciphers[0] != '\0' &&
	    SSL_CTX_set_cipher_list(ctx, conf->c_tls_ciphers) != 1) {
		snprintf(err, errlen, "tls_ciphers: no usable cipher in '%s'", conf->c_tls_ciphers);
		return -1;
	}
	if (conf->c_tls_ciphersuites[0] != '\0' &&
	    SSL_CTX_set_ciphersuites(ctx, conf->c_tls_ciphersuites) != 1) {
		snprintf(err, errlen, "tls_ciphersuites: no usable suite in '%s'",
		    conf->c_tls_ciphersuites);
		return -1;
	}
	SSL_CTX_set_options(ctx, SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_RENEGOTIATION |
	    SSL_OP_NO_COMPRESSION);
	/*
	 * Idle connections give their read/write buffers back.  The chain sent
	 * is the certificate file's, as loaded: without NO_AUTO_CHAIN OpenSSL
	 * would try to build one from the (empty) store on every handshake.
	 */
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_NO_AUTO_CHAIN);
	SSL_CTX_set_alpn_select_cb(ctx, tls_alpn_select, NULL);
	SSL_CTX_set_session_id_context(ctx, (const unsigned char *)"realtimed", 9);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
	SSL_CTX_sess_set_cache_size(ctx, conf->c_tls_session_cache_size);
	SSL_CTX_set_timeout(ctx, (long)(conf->c_tls_session_timeout / 1000));
	SSL_CTX_set_num_tickets(ctx, 1);
	if (tls_have_ticket_keys &&
	    SSL_CTX_set_tlsext_ticket_keys(ctx, tls_ticket_keys, sizeof(tls_ticket_keys)) != 1) {
		snprintf(err, errlen, "cannot set the session ticket keys");
		return -1;
	}
	return 0;
}

SSL_CTX *
tls_ctx_new(const struct rt_config *conf, const struct tls_pem *pem, char *err, size_t errlen)
{
	SSL_CTX	*ctx;
	char	 why[256];

	if ((ctx = SSL_CTX_new(TLS_server_method())) == NULL) {
		snprintf(err, errlen, "SSL_CTX_new() failed");
		return NULL;
	}
	/* a settings error names the setting, a file's error the file */
	if (tls_ctx_settings(ctx, conf, err, errlen) == -1)
		goto fail;
	if (tls_load_chain(ctx, pem, why, sizeof(why)) == -1) {
		snprintf(err, errlen, "%s: %s", conf->c_tls_certificate, why);
		goto fail;
	}
	if (tls_load_key(ctx, pem, why, sizeof(why)) == -1) {
		snprintf(err, errlen, "%s: %s", conf->c_tls_certificate_key[0] != '\0' ?
		    conf->c_tls_certificate_key : conf->c_tls_certificate, why);
		goto fail;
	}
	return ctx;
 fail:
	SSL_CTX_free(ctx);
	ERR_clear_error();
	return NULL;
}
