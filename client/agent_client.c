/*
 * agent_client.c - the client side of the agent protocol.  All reply
 * parsing goes through wbuf; a reply longer than TS_PROTO_MAX_FRAME is
 * refused before it is read.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "client/agent_client.h"
#include "client/commands.h"
#include "client/tls_client.h"
#include "common/err.h"
#include "common/log.h"
#include "common/proto.h"
#include "common/secmem.h"
#include "common/wbuf.h"
#include "pkcs11/uri.h"

struct agent_conn {
	int fd;
	struct tls_client *tls; /* issue 5: tls:// agent, or NULL */
	int retried;
	int timeout_ms;
	char *name;
	char errmsg[TS_PROTO_MAX_MESSAGE + 1];
};

static int
wait_fd(int fd, short ev, int timeout_ms)
{
	struct pollfd p = { fd, ev, 0 };
	int n;

	for (;;) {
		n = poll(&p, 1, timeout_ms);
		if (n > 0)
			return 0;
		if (n == 0)
			return TS_ERR_TIMEOUT;
		if (errno != EINTR)
			return TS_ERR_IO;
	}
}

static int
send_all(struct agent_conn *c, const uint8_t *p, size_t len)
{
	ssize_t n;
	int r;

	if (c->tls != NULL)
		return tls_client_write(c->tls, p, len);
	while (len > 0) {
		n = send(c->fd, p, len, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN) {
				if ((r = wait_fd(
					 c->fd, POLLOUT, c->timeout_ms)) != 0)
					return r;
				continue;
			}
			return errno == EPIPE || errno == ECONNRESET
			    ? TS_ERR_AGENT_CLOSED
			    : TS_ERR_IO;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int
recv_all(struct agent_conn *c, uint8_t *p, size_t len)
{
	ssize_t n;
	int r;

	if (c->tls != NULL)
		return tls_client_read(c->tls, p, len);
	while (len > 0) {
		n = recv(c->fd, p, len, 0);
		if (n == 0)
			return TS_ERR_AGENT_CLOSED;
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN) {
				if ((r = wait_fd(
					 c->fd, POLLIN, c->timeout_ms)) != 0)
					return r;
				continue;
			}
			return errno == ECONNRESET ? TS_ERR_AGENT_CLOSED
						   : TS_ERR_IO;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Reads one frame into *replyp (type byte first). */
static int
read_frame(struct agent_conn *c, struct wbuf **replyp)
{
	struct wbuf *b = NULL;
	uint8_t hdr[4], *p;
	uint32_t len;
	int r;

	*replyp = NULL;
	/* A reply is never there at once: poll first, no recv for EAGAIN. */
	if (c->tls == NULL && (r = wait_fd(c->fd, POLLIN, c->timeout_ms)) != 0)
		return r;
	if ((r = recv_all(c, hdr, sizeof(hdr))) != 0)
		return r;
	len = (uint32_t)hdr[0] << 24 | (uint32_t)hdr[1] << 16 |
	    (uint32_t)hdr[2] << 8 | hdr[3];
	if (len == 0)
		return TS_ERR_WIRE_TRUNCATED;
	if (len > TS_PROTO_MAX_FRAME)
		return TS_ERR_WIRE_TOO_LONG;
	if ((b = wbuf_new(len)) == NULL)
		return TS_ERR_ALLOC;
	if ((r = wbuf_reserve(b, len, &p)) != 0 ||
	    (r = recv_all(c, p, len)) != 0) {
		wbuf_free(b);
		return r;
	}
	*replyp = b;
	return 0;
}

/*
 * A PROGRESS notice ("Touch your ts-main to sign ..."): shown on stderr
 * when it is a terminal, control bytes made '?'; otherwise skipped.
 */
static void
progress_print(struct wbuf *rep)
{
	uint32_t kind;
	char *msg = NULL;
	size_t mlen, i;

	if (!isatty(STDERR_FILENO) || wbuf_get_u32(rep, &kind) != 0 ||
	    wbuf_get_cstring(rep, &msg, &mlen) != 0)
		goto out;
	if (mlen > TS_PROTO_MAX_MESSAGE)
		mlen = TS_PROTO_MAX_MESSAGE;
	for (i = 0; i < mlen; i++)
		if ((unsigned char)msg[i] < 0x20 || msg[i] == 0x7f)
			msg[i] = '?';
	fprintf(stderr, "%.*s\n", (int)mlen, msg);
out:
	free(msg);
}

/*
 * Sends type+body, reads the reply (printing PROGRESS), turns FAILURE
 * into its code.  On success *replyp is positioned after the type byte,
 * which must equal want.
 */
static int
rpc_once(struct agent_conn *c, uint8_t type, const struct wbuf *body,
    uint8_t want, struct wbuf **replyp)
{
	struct wbuf *req = NULL, *rep = NULL;
	uint8_t t;
	uint32_t code;
	char *msg = NULL;
	size_t mlen;
	int r = TS_ERR_INTERNAL;

	*replyp = NULL;
	c->errmsg[0] = '\0';
	if ((req = wbuf_new(TS_PROTO_MAX_FRAME + TS_PROTO_LEN_SIZE)) == NULL) {
		r = TS_ERR_ALLOC;
		goto out;
	}
	if ((r = wbuf_put_u32(req,
		 (uint32_t)(1 + (body != NULL ? wbuf_len(body) : 0)))) != 0 ||
	    (r = wbuf_put_u8(req, type)) != 0 ||
	    (body != NULL &&
		(r = wbuf_put(req, wbuf_ptr(body), wbuf_len(body))) != 0))
		goto out;
	if (wbuf_len(req) - TS_PROTO_LEN_SIZE > TS_PROTO_MAX_FRAME) {
		r = TS_ERR_TOO_LARGE;
		goto out;
	}
	if ((r = send_all(c, wbuf_ptr(req), wbuf_len(req))) != 0)
		goto out;
	for (;;) {
		wbuf_free(rep);
		if ((r = read_frame(c, &rep)) != 0 ||
		    (r = wbuf_get_u8(rep, &t)) != 0)
			goto out;
		if (t != TS_MSG_PROGRESS)
			break;
		progress_print(rep);
	}
	if (t == TS_MSG_FAILURE) {
		if ((r = wbuf_get_u32(rep, &code)) != 0 ||
		    (r = wbuf_get_cstring(rep, &msg, &mlen)) != 0)
			goto out;
		if (mlen > TS_PROTO_MAX_MESSAGE)
			mlen = TS_PROTO_MAX_MESSAGE;
		memcpy(c->errmsg, msg, mlen);
		c->errmsg[mlen] = '\0';
		/* Our codes are -1..-199; anything else is the generic one. */
		r = code >= 1 && code < 200 ? -(int)code : TS_ERR_AGENT_FAILURE;
		goto out;
	}
	if (t != want) {
		r = TS_ERR_WIRE_BAD_TYPE;
		goto out;
	}
	*replyp = rep;
	rep = NULL;
	r = 0;
out:
	free(msg);
	wbuf_free(req);
	wbuf_free(rep);
	return r;
}

static int hello(struct agent_conn *c);

/*
 * Issue 5: over TLS a connection that died before answering (agent
 * restarted behind the load balancer, idle connection dropped) is
 * re-established once and the request resent; signing the same bytes
 * again is harmless.
 */
static int
rpc(struct agent_conn *c, uint8_t type, const struct wbuf *body, uint8_t want,
    struct wbuf **replyp)
{
	int r;

	r = rpc_once(c, type, body, want, replyp);
	if (r != TS_ERR_AGENT_CLOSED || c->tls == NULL || c->retried ||
	    type == TS_MSG_HELLO)
		return r;
	c->retried = 1;
	verbose("agent connection lost; reconnecting once");
	tls_client_close(c->tls);
	tls_client_retry_pause();
	if ((r = tls_client_connect(c->tls)) != 0 || (r = hello(c)) != 0)
		return r;
	return rpc_once(c, type, body, want, replyp);
}

/* tls://… in path: connect with credentials from env or config file. */
static int
connect_tls(struct agent_conn *c, const char *path)
{
	struct tls_client_opts o;
	struct tls_client_opts_store st;
	int r;

	memset(&o, 0, sizeof(o));
	o.timeout_ms = c->timeout_ms;
	if ((r = tls_client_opts_resolve(&o, &st)) != 0)
		return r;
	r = tls_client_new(path, &o, &c->tls);
	tls_client_opts_cleanup(&st);
	if (r != 0)
		return r;
	return tls_client_connect(c->tls);
}

static int
hello(struct agent_conn *c)
{
	struct wbuf *body = NULL, *rep = NULL;
	uint32_t version, maxf, maxb;
	int r;

	free(c->name);
	c->name = NULL;
	if ((body = wbuf_new(1024)) == NULL)
		return TS_ERR_ALLOC;
	if ((r = wbuf_put_u32(body, TS_PROTO_VERSION)) != 0 ||
	    (r = wbuf_put_cstring(body, "tokensign " TOKENSIGN_VERSION)) != 0 ||
	    (r = rpc(c, TS_MSG_HELLO, body, TS_MSG_HELLO_REPLY, &rep)) != 0)
		goto out;
	if ((r = wbuf_get_u32(rep, &version)) != 0 ||
	    (r = wbuf_get_cstring(rep, &c->name, NULL)) != 0 ||
	    (r = wbuf_get_u32(rep, &maxf)) != 0 ||
	    (r = wbuf_get_u32(rep, &maxb)) != 0)
		goto out;
	if (version != TS_PROTO_VERSION)
		r = TS_ERR_WIRE_VERSION;
out:
	wbuf_free(body);
	wbuf_free(rep);
	return r;
}

int
agent_connect(const char *path, struct agent_conn **cp)
{
	struct agent_conn *c = NULL;
	struct sockaddr_un sun;
	struct wbuf *body = NULL, *rep = NULL;
	uint32_t version, maxf, maxb;
	int r = TS_ERR_INTERNAL;

	*cp = NULL;
	/* TOKENSIGN_AGENT (issue 5) names a tls:// agent or a socket */
	if (path == NULL)
		path = getenv("TOKENSIGN_AGENT");
	if (tls_client_is_target(path)) {
		if ((c = calloc(1, sizeof(*c))) == NULL)
			return TS_ERR_ALLOC;
		c->fd = -1;
		c->timeout_ms = AGENT_CLIENT_TIMEOUT_MS;
		if ((r = connect_tls(c, path)) == 0)
			r = hello(c);
		/* An agent that died under the load balancer: once more. */
		if (r == TS_ERR_AGENT_CLOSED && c->tls != NULL) {
			verbose("agent connection lost; reconnecting once");
			tls_client_close(c->tls);
			tls_client_retry_pause();
			c->retried = 1;
			if ((r = tls_client_connect(c->tls)) == 0)
				r = hello(c);
		}
		if (r == 0) {
			*cp = c;
			return 0;
		}
		agent_close(c);
		return r;
	}
	if (path == NULL || path[0] == '\0')
		path = getenv(TS_ENV_AUTH_SOCK);
	if (path == NULL || path[0] == '\0') {
		debug_f("%s is not set", TS_ENV_AUTH_SOCK);
		return TS_ERR_AGENT_CONNECT;
	}
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sun.sun_path))
		return TS_ERR_AGENT_CONNECT;
	memcpy(sun.sun_path, path, strlen(path) + 1);
	if ((c = calloc(1, sizeof(*c))) == NULL)
		return TS_ERR_ALLOC;
	c->timeout_ms = AGENT_CLIENT_TIMEOUT_MS;
	if ((c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0) {
		r = TS_ERR_SYSTEM;
		goto out;
	}
	if (connect(c->fd, (struct sockaddr *)&sun, sizeof(sun)) != 0) {
		debug_f("connect %.200s: %s", path, strerror(errno));
		r = TS_ERR_AGENT_CONNECT;
		goto out;
	}
	if (fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) | O_NONBLOCK) != 0) {
		r = TS_ERR_SYSTEM;
		goto out;
	}
	if ((body = wbuf_new(1024)) == NULL) {
		r = TS_ERR_ALLOC;
		goto out;
	}
	if ((r = wbuf_put_u32(body, TS_PROTO_VERSION)) != 0 ||
	    (r = wbuf_put_cstring(body, "tokensign " TOKENSIGN_VERSION)) != 0 ||
	    (r = rpc(c, TS_MSG_HELLO, body, TS_MSG_HELLO_REPLY, &rep)) != 0)
		goto out;
	if ((r = wbuf_get_u32(rep, &version)) != 0 ||
	    (r = wbuf_get_cstring(rep, &c->name, NULL)) != 0 ||
	    (r = wbuf_get_u32(rep, &maxf)) != 0 ||
	    (r = wbuf_get_u32(rep, &maxb)) != 0)
		goto out;
	if (version != TS_PROTO_VERSION) {
		r = TS_ERR_WIRE_VERSION;
		goto out;
	}
	*cp = c;
	c = NULL;
	r = 0;
out:
	wbuf_free(body);
	wbuf_free(rep);
	agent_close(c);
	return r;
}

void
agent_close(struct agent_conn *c)
{
	if (c == NULL)
		return;
	tls_client_free(c->tls);
	if (c->fd >= 0)
		close(c->fd);
	free(c->name);
	free(c);
}

void
agent_set_timeout(struct agent_conn *c, int timeout_ms)
{
	c->timeout_ms = timeout_ms;
}

const char *
agent_last_error(const struct agent_conn *c)
{
	return c->errmsg;
}

const char *
agent_name(const struct agent_conn *c)
{
	return c->name != NULL ? c->name : "";
}

int
agent_perror(const struct agent_conn *c, int r, const char *what)
{
	const char *msg =
	    c != NULL && c->errmsg[0] != '\0' ? c->errmsg : ts_err(r);

	if (r == TS_ERR_AGENT_CONNECT)
		fprintf(stderr,
		    "tokensign: %s: %s (is %s set and the agent "
		    "running?)\n",
		    what, msg, TS_ENV_AUTH_SOCK);
	else
		fprintf(stderr, "tokensign: %s: %s\n", what, msg);
	if (r <= -60 && r >= -99)
		return TS_EXIT_TOKEN;
	return TS_EXIT_AGENT;
}

void
agent_keylist_free(struct agent_keylist *l)
{
	size_t i;

	if (l == NULL)
		return;
	for (i = 0; i < l->n; i++) {
		free(l->keys[i].id);
		free(l->keys[i].type);
		free(l->keys[i].label);
		free(l->keys[i].uri);
		free(l->keys[i].token);
		free(l->keys[i].spki);
	}
	free(l->keys);
	free(l);
}

int
agent_list_keys(struct agent_conn *c, struct agent_keylist **lp)
{
	struct agent_keylist *l = NULL;
	struct agent_key *k;
	struct wbuf *rep = NULL;
	const uint8_t *fp;
	uint32_t n, i, bits;
	size_t fplen;
	int r = TS_ERR_INTERNAL;

	*lp = NULL;
	if ((r = rpc(c, TS_MSG_LIST_KEYS, NULL, TS_MSG_KEYS, &rep)) != 0)
		goto out;
	if ((r = wbuf_get_u32(rep, &n)) != 0)
		goto out;
	/* Each entry is at least 9 strings/ints: bound n by the bytes. */
	if (n > wbuf_len(rep) / 36) {
		r = TS_ERR_WIRE_TRUNCATED;
		goto out;
	}
	if ((l = calloc(1, sizeof(*l))) == NULL ||
	    (n > 0 && (l->keys = calloc(n, sizeof(*l->keys))) == NULL)) {
		r = TS_ERR_ALLOC;
		goto out;
	}
	for (i = 0; i < n; i++) {
		k = &l->keys[i];
		l->n++;
		if ((r = wbuf_get_cstring(rep, &k->id, NULL)) != 0 ||
		    (r = wbuf_get_cstring(rep, &k->type, NULL)) != 0 ||
		    (r = wbuf_get_u32(rep, &bits)) != 0 ||
		    (r = wbuf_get_cstring(rep, &k->label, NULL)) != 0 ||
		    (r = wbuf_get_cstring(rep, &k->uri, NULL)) != 0 ||
		    (r = wbuf_get_string(rep, &k->spki, &k->spki_len)) != 0 ||
		    (r = wbuf_get_string_direct(rep, &fp, &fplen)) != 0 ||
		    (r = wbuf_get_cstring(rep, &k->token, NULL)) != 0 ||
		    (r = wbuf_get_u32(rep, &k->flags)) != 0)
			goto out;
		if (fplen != sizeof(k->fingerprint)) {
			r = TS_ERR_WIRE_BAD_FIELD;
			goto out;
		}
		memcpy(k->fingerprint, fp, fplen);
		k->bits = bits;
	}
	if (wbuf_len(rep) != 0) {
		r = TS_ERR_WIRE_TRAILING;
		goto out;
	}
	*lp = l;
	l = NULL;
	r = 0;
out:
	agent_keylist_free(l);
	wbuf_free(rep);
	return r;
}

/* Returns 1 when every attribute of want is present and equal in have. */
static int
uri_subset(const struct p11_uri *want, const struct p11_uri *have)
{
	const char *w, *h;
	const uint8_t *wid, *hid;
	size_t wl, hl;
	uint64_t ws, hs;
	int a;
	enum p11_uri_type t = p11_uri_get_type(want);

	for (a = P11_URI_TOKEN; a <= P11_URI_OBJECT; a++) {
		if ((w = p11_uri_get(want, (enum p11_uri_attr)a)) == NULL)
			continue;
		if ((h = p11_uri_get(have, (enum p11_uri_attr)a)) == NULL ||
		    strcmp(w, h) != 0)
			return 0;
	}
	if ((wid = p11_uri_get_id(want, &wl)) != NULL) {
		hid = p11_uri_get_id(have, &hl);
		if (hid == NULL || hl != wl || memcmp(wid, hid, wl) != 0)
			return 0;
	}
	if (p11_uri_get_slot_id(want, &ws) &&
	    (!p11_uri_get_slot_id(have, &hs) || ws != hs))
		return 0;
	return t == P11_URI_TYPE_ANY || t == P11_URI_TYPE_PRIVATE ||
	    t == P11_URI_TYPE_PUBLIC;
}

int
agent_keylist_find(
    const struct agent_keylist *l, const char *ref, const struct agent_key **kp)
{
	struct p11_uri *want = NULL, *have = NULL;
	const struct agent_key *found = NULL;
	char errbuf[P11_URI_ERRBUF_SIZE];
	size_t i, n = 0;
	int r = TS_ERR_INTERNAL;

	*kp = NULL;
	if (ref == NULL) {
		if (l->n == 1) {
			*kp = &l->keys[0];
			return 0;
		}
		return l->n == 0 ? TS_ERR_P11_KEY_NOT_FOUND
				 : TS_ERR_P11_KEY_AMBIGUOUS;
	}
	if (strncasecmp(ref, "pkcs11:", 7) == 0) {
		if ((r = p11_uri_parse(ref, &want, errbuf, sizeof(errbuf))) !=
		    0) {
			error("key URI: %s", errbuf);
			goto out;
		}
		for (i = 0; i < l->n; i++) {
			p11_uri_free(have);
			have = NULL;
			if (p11_uri_parse(l->keys[i].uri, &have, NULL, 0) != 0)
				continue;
			if (uri_subset(want, have)) {
				found = &l->keys[i];
				n++;
			}
		}
	} else {
		for (i = 0; i < l->n; i++)
			if (strcmp(l->keys[i].id, ref) == 0) {
				found = &l->keys[i];
				n++;
			}
		if (n == 0)
			for (i = 0; i < l->n; i++)
				if (strcmp(l->keys[i].label, ref) == 0) {
					found = &l->keys[i];
					n++;
				}
	}
	if (n == 0)
		r = TS_ERR_P11_KEY_NOT_FOUND;
	else if (n > 1)
		r = TS_ERR_P11_KEY_AMBIGUOUS;
	else {
		*kp = found;
		r = 0;
	}
out:
	p11_uri_free(want);
	p11_uri_free(have);
	return r;
}

int
agent_key_pem(const struct agent_key *k, char **pemp)
{
	const unsigned char *p = k->spki;
	EVP_PKEY *pk = NULL;
	BIO *bio = NULL;
	BUF_MEM *mem;
	char *s = NULL;
	int r = TS_ERR_INTERNAL;

	*pemp = NULL;
	if ((pk = d2i_PUBKEY(NULL, &p, (long)k->spki_len)) == NULL ||
	    p != k->spki + k->spki_len) {
		r = TS_ERR_KEY_INVALID;
		goto out;
	}
	if ((bio = BIO_new(BIO_s_mem())) == NULL ||
	    PEM_write_bio_PUBKEY(bio, pk) != 1) {
		r = ts_err_ossl("PEM_write_bio_PUBKEY");
		goto out;
	}
	BIO_get_mem_ptr(bio, &mem);
	if ((s = malloc(mem->length + 1)) == NULL) {
		r = TS_ERR_ALLOC;
		goto out;
	}
	memcpy(s, mem->data, mem->length);
	s[mem->length] = '\0';
	*pemp = s;
	r = 0;
out:
	BIO_free(bio);
	EVP_PKEY_free(pk);
	return r;
}

static int
get_signature(struct wbuf *rep, uint8_t **sigp, size_t *siglenp)
{
	uint8_t *sig = NULL;
	char *id = NULL;
	size_t len = 0;
	int r;

	if ((r = wbuf_get_string(rep, &sig, &len)) != 0 ||
	    (r = wbuf_get_cstring(rep, &id, NULL)) != 0)
		goto out;
	if (wbuf_len(rep) != 0) {
		r = TS_ERR_WIRE_TRAILING;
		goto out;
	}
	*sigp = sig;
	*siglenp = len;
	sig = NULL;
out:
	free(sig);
	free(id);
	return r;
}

int
agent_sign_payload(struct agent_conn *c, const char *key,
    const uint8_t *payload, size_t len, uint8_t **sigp, size_t *siglenp)
{
	struct wbuf *body = NULL, *rep = NULL;
	int r = TS_ERR_INTERNAL;

	*sigp = NULL;
	*siglenp = 0;
	if ((body = wbuf_new(TS_PROTO_MAX_FRAME)) == NULL)
		return TS_ERR_ALLOC;
	if ((r = wbuf_put_cstring(body, key)) != 0 ||
	    (r = wbuf_put_string(body, payload, len)) != 0 ||
	    (r = wbuf_put_u32(body, 0)) != 0) {
		if (r == TS_ERR_WIRE_BUF_FULL)
			r = TS_ERR_TOO_LARGE;
		goto out;
	}
	if ((r = rpc(c, TS_MSG_SIGN_PAYLOAD, body, TS_MSG_SIGNATURE, &rep)) !=
	    0)
		goto out;
	r = get_signature(rep, sigp, siglenp);
out:
	wbuf_free(body);
	wbuf_free(rep);
	return r;
}

int
agent_sign_digest(struct agent_conn *c, const char *key, int hash,
    const uint8_t *digest, size_t dlen, uint8_t **sigp, size_t *siglenp)
{
	struct wbuf *body = NULL, *rep = NULL;
	int r = TS_ERR_INTERNAL;

	*sigp = NULL;
	*siglenp = 0;
	if ((body = wbuf_new(TS_PROTO_MAX_FRAME)) == NULL)
		return TS_ERR_ALLOC;
	if ((r = wbuf_put_cstring(body, key)) != 0 ||
	    (r = wbuf_put_u8(body, (uint8_t)hash)) != 0 ||
	    (r = wbuf_put_string(body, digest, dlen)) != 0 ||
	    (r = wbuf_put_u32(body, 0)) != 0)
		goto out;
	if ((r = rpc(c, TS_MSG_SIGN_DIGEST, body, TS_MSG_SIGNATURE, &rep)) != 0)
		goto out;
	r = get_signature(rep, sigp, siglenp);
out:
	wbuf_free(body);
	wbuf_free(rep);
	return r;
}

int
agent_sign_batch(struct agent_conn *c, const char *key,
    struct agent_batch_item *items, size_t n)
{
	struct wbuf *body = NULL, *rep = NULL;
	uint32_t rn, status;
	char *msg = NULL;
	size_t i;
	int r = TS_ERR_INTERNAL;

	for (i = 0; i < n; i++) {
		items[i].r = TS_ERR_INTERNAL;
		items[i].sig = NULL;
		items[i].siglen = 0;
	}
	if (n == 0 || n > TS_PROTO_MAX_BATCH)
		return TS_ERR_INVALID_ARG;
	if ((body = wbuf_new(TS_PROTO_MAX_FRAME)) == NULL)
		return TS_ERR_ALLOC;
	if ((r = wbuf_put_cstring(body, key)) != 0 ||
	    (r = wbuf_put_u32(body, 0)) != 0 ||
	    (r = wbuf_put_u32(body, (uint32_t)n)) != 0)
		goto out;
	for (i = 0; i < n; i++) {
		if ((r = wbuf_put_u8(body, (uint8_t)items[i].kind)) != 0 ||
		    (items[i].kind == TS_BATCH_DIGEST &&
			(r = wbuf_put_u8(body, (uint8_t)items[i].hash)) != 0) ||
		    (r = wbuf_put_string(body, items[i].data, items[i].len)) !=
			0) {
			if (r == TS_ERR_WIRE_BUF_FULL)
				r = TS_ERR_TOO_LARGE;
			goto out;
		}
	}
	if ((r = rpc(c, TS_MSG_SIGN_BATCH, body, TS_MSG_BATCH_REPLY, &rep)) !=
	    0)
		goto out;
	if ((r = wbuf_get_u32(rep, &rn)) != 0)
		goto out;
	if (rn != n) {
		r = TS_ERR_WIRE_BAD_FIELD;
		goto out;
	}
	for (i = 0; i < n; i++) {
		if ((r = wbuf_get_u32(rep, &status)) != 0)
			goto out;
		if (status == 0) {
			if ((r = wbuf_get_string(
				 rep, &items[i].sig, &items[i].siglen)) != 0)
				goto out;
			items[i].r = 0;
		} else {
			if ((r = wbuf_get_cstring(rep, &msg, NULL)) != 0)
				goto out;
			free(msg);
			msg = NULL;
			items[i].r =
			    status < 200 ? -(int)status : TS_ERR_AGENT_FAILURE;
		}
	}
	r = wbuf_len(rep) == 0 ? 0 : TS_ERR_WIRE_TRAILING;
out:
	wbuf_free(body);
	wbuf_free(rep);
	return r;
}

static int
lock_op(struct agent_conn *c, uint8_t type, const void *pass, size_t len)
{
	struct wbuf *body = NULL, *rep = NULL;
	int r;

	if ((body = wbuf_new(TS_PROTO_MAX_PASS + 8)) == NULL)
		return TS_ERR_ALLOC;
	if ((r = wbuf_put_string(body, pass, len)) == 0)
		r = rpc(c, type, body, TS_MSG_SUCCESS, &rep);
	if (r == 0 && wbuf_len(rep) != 0)
		r = TS_ERR_WIRE_TRAILING;
	wbuf_free(body); /* wipes the passphrase */
	wbuf_free(rep);
	return r;
}

int
agent_lock(struct agent_conn *c, const void *pass, size_t len)
{
	return lock_op(c, TS_MSG_LOCK, pass, len);
}

int
agent_unlock(struct agent_conn *c, const void *pass, size_t len)
{
	return lock_op(c, TS_MSG_UNLOCK, pass, len);
}

void
agent_status_free(struct agent_status *s)
{
	size_t i;

	if (s == NULL)
		return;
	for (i = 0; i < s->ntokens; i++) {
		free(s->tokens[i].label);
		free(s->tokens[i].uri);
	}
	for (i = 0; i < s->nkeys; i++) {
		free(s->keys[i].id);
		free(s->keys[i].label);
	}
	free(s->tokens);
	free(s->keys);
	free(s);
}

int
agent_status(struct agent_conn *c, struct agent_status **sp)
{
	struct agent_status *s = NULL;
	struct wbuf *rep = NULL;
	uint32_t n, i;
	uint8_t present, logged;
	int r = TS_ERR_INTERNAL;

	*sp = NULL;
	if ((r = rpc(c, TS_MSG_STATUS, NULL, TS_MSG_STATUS_REPLY, &rep)) != 0)
		goto out;
	if ((s = calloc(1, sizeof(*s))) == NULL) {
		r = TS_ERR_ALLOC;
		goto out;
	}
	if ((r = wbuf_get_u32(rep, &s->version)) != 0 ||
	    (r = wbuf_get_u32(rep, &s->flags)) != 0 ||
	    (r = wbuf_get_u64(rep, &s->uptime)) != 0 ||
	    (r = wbuf_get_u64(rep, &s->signatures)) != 0 ||
	    (r = wbuf_get_u64(rep, &s->errors)) != 0 ||
	    (r = wbuf_get_u32(rep, &s->connections)) != 0 ||
	    (r = wbuf_get_u32(rep, &n)) != 0)
		goto out;
	if (n > wbuf_len(rep) / 10) {
		r = TS_ERR_WIRE_TRUNCATED;
		goto out;
	}
	if (n > 0 && (s->tokens = calloc(n, sizeof(*s->tokens))) == NULL) {
		r = TS_ERR_ALLOC;
		goto out;
	}
	for (i = 0; i < n; i++) {
		s->ntokens++;
		if ((r = wbuf_get_cstring(rep, &s->tokens[i].label, NULL)) !=
			0 ||
		    (r = wbuf_get_cstring(rep, &s->tokens[i].uri, NULL)) != 0 ||
		    (r = wbuf_get_u8(rep, &present)) != 0 ||
		    (r = wbuf_get_u8(rep, &logged)) != 0)
			goto out;
		s->tokens[i].present = present;
		s->tokens[i].logged_in = logged;
	}
	if ((r = wbuf_get_u32(rep, &n)) != 0)
		goto out;
	if (n > wbuf_len(rep) / 24) {
		r = TS_ERR_WIRE_TRUNCATED;
		goto out;
	}
	if (n > 0 && (s->keys = calloc(n, sizeof(*s->keys))) == NULL) {
		r = TS_ERR_ALLOC;
		goto out;
	}
	for (i = 0; i < n; i++) {
		s->nkeys++;
		if ((r = wbuf_get_cstring(rep, &s->keys[i].id, NULL)) != 0 ||
		    (r = wbuf_get_cstring(rep, &s->keys[i].label, NULL)) != 0 ||
		    (r = wbuf_get_u64(rep, &s->keys[i].signatures)) != 0 ||
		    (r = wbuf_get_u64(rep, &s->keys[i].errors)) != 0)
			goto out;
	}
	if (wbuf_len(rep) != 0) {
		r = TS_ERR_WIRE_TRAILING;
		goto out;
	}
	*sp = s;
	s = NULL;
	r = 0;
out:
	agent_status_free(s);
	wbuf_free(rep);
	return r;
}
