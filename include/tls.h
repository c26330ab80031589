#ifndef RT_TLS_H
#define RT_TLS_H

/*
 * TLS contexts (OpenSSL 3).  One SSL_CTX per configuration generation,
 * built from PEM text held in memory, so that a process which cannot read
 * the key files (workers, after privileges are dropped) can still switch to
 * a certificate the master read and validated.
 */
#include <stddef.h>

#include <openssl/ssl.h>

struct rt_config;

/*
 * The most the certificate chain and the key may take together: what one
 * master message to the workers carries at a reload (IPC_CTL_MAX, less
 * the length word), so that a start takes only what a reload can.
 */
#define TLS_PEMS_MAX	(192 * 1024 - 4)

/* The certificate chain and key as read from tls_certificate(_key). */
struct tls_pem {
	char	*tp_cert;
	size_t	 tp_certlen;
	char	*tp_key;
	size_t	 tp_keylen;
};

/* 1 when the configuration asks for a TLS listener. */
int	tls_enabled(const struct rt_config *conf);

/*
 * Session-ticket keys shared by every process: generated once by the master
 * before it forks, so a ticket from one worker resumes on any other.
 */
void	tls_ticket_keys_init(void);

/* Read both files; -1 with "file: reason" in err. */
int	tls_pem_read(const struct rt_config *conf, struct tls_pem *pem, char *err, size_t errlen);
void	tls_pem_free(struct tls_pem *pem);

/*
 * A server context: protocols, ciphers, ALPN http/1.1, session cache and
 * tickets, SSL_MODE_RELEASE_BUFFERS.  NULL with the reason in err (a bad
 * certificate, a key that does not match, an unknown protocol name...).
 */
SSL_CTX	*tls_ctx_new(const struct rt_config *conf, const struct tls_pem *pem,
	    char *err, size_t errlen);

/* "TLSv1.2 TLSv1.3" -> min and max versions; -1 with err. */
int	tls_parse_protocols(const char *s, int *min, int *max, char *err, size_t errlen);

/* The last OpenSSL error as text (for logs). */
const char *tls_error_string(unsigned long e, char *buf, size_t len);

#endif
