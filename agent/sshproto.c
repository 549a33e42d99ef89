/*
 * sshproto.c - ssh-agent protocol handlers (RFC 9987 sections 4.4, 4.5).
 *
 * Why the agent hashes: ssh sends the whole data to be signed (a session
 * hash exchange blob or an SSHSIG "signed data" structure), so hashing
 * here, not in the client, lets the same policy/confirm/PIN/audit path
 * see exactly what is signed and record its SHA-256.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "agent/audit.h"
#include "agent/dispatch.h"
#include "agent/keystore.h"
#include "agent/peer.h"
#include "agent/sshproto.h"
#include "common/err.h"
#include "common/log.h"
#include "common/proto.h"
#include "common/secmem.h"
#include "common/sshkey.h"
#include "common/wbuf.h"
#include "pkcs11/key.h"

struct blob_cache_entry {
	uint8_t *spki;
	size_t spki_len;
	uint8_t *blob; /* NULL: ssh cannot use this key */
	size_t blob_len;
	int r;
};

static pthread_mutex_t blob_cache_mu = PTHREAD_MUTEX_INITIALIZER;
static struct blob_cache_entry blob_cache[SSHPROTO_BLOB_CACHE];
static size_t blob_cache_n;

int
sshproto_blob_cached(const uint8_t *spki, size_t spki_len, const uint8_t **blob,
    size_t *blob_len)
{
	struct blob_cache_entry *e = NULL;
	struct wbuf *b = NULL;
	size_t i;
	int r = TS_ERR_INTERNAL;

	*blob = NULL;
	*blob_len = 0;
	pthread_mutex_lock(&blob_cache_mu);
	for (i = 0; i < blob_cache_n; i++) {
		if (blob_cache[i].spki_len == spki_len &&
		    memcmp(blob_cache[i].spki, spki, spki_len) == 0) {
			e = &blob_cache[i];
			break;
		}
	}
	if (e == NULL) {
		if ((b = wbuf_new(SSHKEY_BLOB_MAX)) == NULL) {
			r = TS_ERR_ALLOC;
			goto out;
		}
		r = sshkey_blob_from_spki(spki, spki_len, b, NULL);
		if (r == TS_ERR_ALLOC || blob_cache_n == SSHPROTO_BLOB_CACHE)
			goto out; /* not remembered: the caller gets r */
		e = &blob_cache[blob_cache_n];
		memset(e, 0, sizeof(*e));
		if ((e->spki = malloc(spki_len)) == NULL ||
		    (r == 0 && (e->blob = malloc(wbuf_len(b))) == NULL)) {
			free(e->spki);
			e->spki = NULL;
			r = TS_ERR_ALLOC;
			goto out;
		}
		memcpy(e->spki, spki, spki_len);
		e->spki_len = spki_len;
		e->r = r;
		if (r == 0) {
			memcpy(e->blob, wbuf_ptr(b), wbuf_len(b));
			e->blob_len = wbuf_len(b);
		}
		blob_cache_n++;
	}
	if ((r = e->r) == 0) {
		*blob = e->blob;
		*blob_len = e->blob_len;
	}
out:
	pthread_mutex_unlock(&blob_cache_mu);
	wbuf_free(b);
	return r;
}

int
sshproto_is_ssh_type(uint8_t type)
{
	return type > 0 && type < SSHPROTO_TYPE_LIMIT;
}

int
sshproto_key_allowed(
    enum sshproto_key_policy kp, int is_unix, uid_t peer_uid, uid_t agent_uid)
{
	switch (kp) {
	case SSHPROTO_KEY_ON:
		return 1;
	case SSHPROTO_KEY_OFF:
		return 0;
	case SSHPROTO_KEY_DEFAULT:
		return is_unix && peer_uid == agent_uid;
	default:
		return 0;
	}
}

static int
put_failure(struct wbuf *reply, size_t start)
{
	size_t now = wbuf_len(reply);

	/* drop anything half-written, then the one-byte FAILURE */
	if (now > start && wbuf_consume_end(reply, now - start) != 0)
		return TS_ERR_INTERNAL;
	return wbuf_put_u8(reply, SSH_AGENT_FAILURE);
}

static int
identities(const struct sshproto_ops *ops, void *arg, struct wbuf *body,
    struct wbuf *reply)
{
	const struct sshproto_key *keys = NULL;
	struct wbuf *blob = NULL;
	size_t n = 0, i, count_off;
	uint32_t count = 0;
	int r = TS_ERR_INTERNAL;

	if (wbuf_len(body) != 0) {
		r = TS_ERR_WIRE_TRAILING;
		goto out;
	}
	if ((r = ops->list(arg, &keys, &n)) != 0)
		goto out;
	if ((blob = wbuf_new(SSHKEY_BLOB_MAX)) == NULL) {
		r = TS_ERR_ALLOC;
		goto out;
	}
	count_off = wbuf_len(reply) + 1;
	if ((r = wbuf_put_u8(reply, SSH_AGENT_IDENTITIES_ANSWER)) != 0 ||
	    (r = wbuf_put_u32(reply, 0)) != 0)
		goto out;
	for (i = 0; i < n; i++) {
		wbuf_reset(blob);
		/*
		 * A key ssh cannot express (P-384, short RSA) is simply not
		 * offered; it still serves cosign through our own messages.
		 */
		if (keys[i].blob != NULL) {
			if ((r = wbuf_put(
				 blob, keys[i].blob, keys[i].blob_len)) != 0)
				goto out;
		} else if (sshkey_blob_from_spki(
			       keys[i].spki, keys[i].spki_len, blob, NULL) != 0)
			continue;
		if ((r = wbuf_put_stringb(reply, blob)) != 0 ||
		    (r = wbuf_put_cstring(
			 reply, keys[i].comment ? keys[i].comment : "")) != 0)
			goto out;
		count++;
	}
	if ((r = wbuf_poke_u32(reply, count_off, count)) != 0)
		goto out;
	r = 0;
out:
	wbuf_free(blob);
	return r;
}

static int
hash_data(enum sshproto_hash h, const uint8_t *data, size_t len, uint8_t *md,
    size_t *mdlen)
{
	unsigned int n = 0;
	const EVP_MD *alg =
	    h == SSHPROTO_HASH_SHA512 ? EVP_sha512() : EVP_sha256();

	if (EVP_Digest(data, len, md, &n, alg, NULL) != 1)
		return ts_err_ossl("ssh data hash");
	*mdlen = n;
	return 0;
}

static int
sign_request(const struct sshproto_ops *ops, void *arg, struct wbuf *body,
    struct wbuf *reply)
{
	const struct sshproto_key *keys = NULL;
	const uint8_t *kblob, *data;
	size_t kblen, dlen, n = 0, i, mdlen = 0;
	size_t siglen = 0, modlen = 0;
	uint32_t flags;
	enum sshkey_type t = SSHKEY_UNKNOWN;
	struct sshproto_sign req;
	uint8_t md[64];
	uint8_t *sig = NULL;
	struct wbuf *sigblob = NULL;
	int r = TS_ERR_INTERNAL;

	memset(&req, 0, sizeof(req));
	/* RFC 9987 4.5: string key blob, string data, uint32 flags */
	if ((r = wbuf_get_string_direct(body, &kblob, &kblen)) != 0 ||
	    (r = wbuf_get_string_direct(body, &data, &dlen)) != 0 ||
	    (r = wbuf_get_u32(body, &flags)) != 0)
		goto out;
	if (wbuf_len(body) != 0) {
		r = TS_ERR_WIRE_TRAILING;
		goto out;
	}
	if (dlen > SSHPROTO_MAX_DATA) {
		r = TS_ERR_WIRE_TOO_LONG;
		goto out;
	}
	if ((r = sshkey_blob_parse(kblob, kblen, &t)) != 0)
		goto out;
	if ((r = ops->list(arg, &keys, &n)) != 0)
		goto out;
	for (i = 0; i < n; i++) {
		if (keys[i].blob != NULL) {
			/* key blobs are public: a plain compare leaks nothing */
			if (keys[i].blob_len == kblen &&
			    memcmp(keys[i].blob, kblob, kblen) == 0)
				break;
		} else if (sshkey_blob_match(kblob, kblen, keys[i].spki,
			       keys[i].spki_len) == 0)
			break;
	}
	if (i == n) {
		r = TS_ERR_NOT_FOUND; /* not ours, or ssh is off for it */
		goto out;
	}
	req.key_index = i;
	req.flags = flags;
	if ((r = sshkey_sigalg_for(t, flags, &req.alg)) != 0) {
		debug_f("refusing %s signature (SHA-1)",
		    sshkey_sigalg_name(req.alg));
		goto out;
	}
	if ((r = hash_data(SSHPROTO_HASH_SHA256, data, dlen, req.data_sha256,
		 &mdlen)) != 0)
		goto out;
	switch (req.alg) {
	case SSHKEY_SIG_ED25519:
		req.hash = SSHPROTO_HASH_NONE;
		req.in = data;
		req.in_len = dlen;
		break;
	case SSHKEY_SIG_RSA_SHA512:
		req.hash = SSHPROTO_HASH_SHA512;
		if ((r = hash_data(req.hash, data, dlen, md, &mdlen)) != 0)
			goto out;
		req.in = md;
		req.in_len = mdlen;
		break;
	default: /* ECDSA P-256 and rsa-sha2-256 */
		req.hash = SSHPROTO_HASH_SHA256;
		memcpy(md, req.data_sha256, sizeof(req.data_sha256));
		req.in = md;
		req.in_len = sizeof(req.data_sha256);
		break;
	}
	if ((r = ops->sign(arg, &req, &sig, &siglen, &modlen)) != 0)
		goto out;
	if ((sigblob = wbuf_new(SSHKEY_BLOB_MAX)) == NULL) {
		r = TS_ERR_ALLOC;
		goto out;
	}
	if ((r = sshkey_sig_encode(req.alg, sig, siglen, modlen, sigblob)) !=
	    0) {
		error_fr(r, "token signature does not fit %s",
		    sshkey_sigalg_name(req.alg));
		goto out;
	}
	if ((r = wbuf_put_u8(reply, SSH_AGENT_SIGN_RESPONSE)) != 0 ||
	    (r = wbuf_put_stringb(reply, sigblob)) != 0)
		goto out;
	r = 0;
out:
	OPENSSL_cleanse(md, sizeof(md));
	free(sig);
	wbuf_free(sigblob);
	return r;
}

int
sshproto_handle(const struct sshproto_ops *ops, void *arg, uint8_t type,
    struct wbuf *body, struct wbuf *reply)
{
	size_t start;
	int r = TS_ERR_INTERNAL;

	if (ops == NULL || body == NULL || reply == NULL)
		return TS_ERR_INVALID_ARG;
	start = wbuf_len(reply);
	switch (type) {
	case SSH_AGENTC_REQUEST_IDENTITIES:
		r = identities(ops, arg, body, reply);
		break;
	case SSH_AGENTC_SIGN_REQUEST:
		r = sign_request(ops, arg, body, reply);
		break;
	default:
		/*
		 * ADD/REMOVE identities, smartcard, LOCK/UNLOCK, EXTENSION
		 * (e.g. session-bind@openssh.com, which ssh tolerates being
		 * refused) and unknown numbers: FAILURE, as the RFC asks of
		 * an agent that does not implement a message.
		 */
		r = TS_ERR_UNSUPPORTED;
		break;
	}
	if (r == 0)
		return 0;
	debug_fr(r, "ssh-agent message %u refused", (unsigned)type);
	return put_failure(reply, start);
}

/* ---- binding to the agent (dispatch table rows) ------------------------ */

/* The glue hands req->hash straight to keystore_sign_digest(). */
_Static_assert(SSHPROTO_HASH_SHA256 == TS_HASH_SHA256, "hash numbers");
_Static_assert(SSHPROTO_HASH_SHA512 == TS_HASH_SHA512, "hash numbers");

struct glue {
	struct dispatch_ctx *c;
	struct agent_peer *peer;
	struct keystore *ks;
	struct sshproto_key *keys;
	struct ks_key **kk;
	size_t n;
	int listed;
	char *why;
	size_t whylen;
};

static int
glue_list(void *arg, const struct sshproto_key **keys, size_t *n)
{
	struct glue *g = arg;
	struct ks_key *k;
	struct p11_key *pk;
	size_t i, total;

	if (!g->listed) {
		total = keystore_count(g->ks);
		if (total > 0 &&
		    ((g->keys = calloc(total, sizeof(*g->keys))) == NULL ||
			(g->kk = calloc(total, sizeof(*g->kk))) == NULL))
			return TS_ERR_ALLOC;
		for (i = 0; i < total; i++) {
			k = keystore_get(g->ks, i);
			pk = ks_key_p11(k);
			if (!sshproto_key_allowed(
				(enum sshproto_key_policy)ks_key_ssh(k),
				g->peer->transport == PEER_UNIX, g->peer->uid,
				getuid()) ||
			    !p11_key_present(pk))
				continue;
			g->kk[g->n] = k;
			g->keys[g->n].spki =
			    p11_key_spki_der(pk, &g->keys[g->n].spki_len);
			g->keys[g->n].comment = ks_key_label(k);
			/* keys ssh cannot use are left out here already */
			if (sshproto_blob_cached(g->keys[g->n].spki,
				g->keys[g->n].spki_len, &g->keys[g->n].blob,
				&g->keys[g->n].blob_len) != 0)
				continue;
			g->n++;
		}
		g->listed = 1;
	}
	*keys = g->keys;
	*n = g->n;
	return 0;
}

static int
glue_sign(void *arg, const struct sshproto_sign *req, uint8_t **sig,
    size_t *siglen, size_t *modulus_len)
{
	struct glue *g = arg;
	struct ks_key *k = g->kk[req->key_index];
	struct audit_rec rec;
	char hex[2 * 32 + 1], what[200];
	size_t i;
	int r, ra;

	*sig = NULL;
	*siglen = 0;
	*modulus_len = (p11_key_bits(ks_key_p11(k)) + 7) / 8;
	for (i = 0; i < 32; i++) {
		hex[2 * i] = "0123456789abcdef"[req->data_sha256[i] >> 4];
		hex[2 * i + 1] = "0123456789abcdef"[req->data_sha256[i] & 15];
	}
	hex[64] = '\0';
	memset(&rec, 0, sizeof(rec));
	rec.event = "ssh signature";
	rec.peer = g->peer;
	rec.key_id = ks_key_id(k);
	rec.key_fp = ks_key_fingerprint(k);
	rec.hash = "sha256"; /* of the data ssh sent, whatever was signed */
	rec.digest_hex = hex;
	g->why[0] = '\0';
	if (dispatch_is_locked(g->c)) {
		r = TS_ERR_AGENT_LOCKED;
		goto out;
	}
	(void)snprintf(what, sizeof(what),
	    "an ssh signature (%s) of data %.16s...",
	    sshkey_sigalg_name(req->alg), hex);
	if ((r = dispatch_confirm(g->c, g->peer, k, what, g->why, g->whylen)) !=
	    0)
		goto out;
	if (req->hash == SSHPROTO_HASH_NONE)
		r = keystore_sign_message(
		    g->ks, k, req->in, req->in_len, sig, siglen);
	else
		r = keystore_sign_digest(g->ks, k, (int)req->hash, req->in,
		    req->in_len, sig, siglen);
out:
	rec.result = r;
	rec.reason = r != 0 && g->why[0] != '\0' ? g->why : NULL;
	/* a signature whose audit line cannot be written is not returned */
	if ((ra = audit_log(dispatch_audit(g->c), &rec)) != 0 && r == 0) {
		freezero(*sig, *siglen);
		*sig = NULL;
		*siglen = 0;
		r = ra;
	}
	dispatch_count(g->c, r);
	return r;
}

static const struct sshproto_ops glue_ops = { glue_list, glue_sign };

static int
glue_run(struct dispatch_ctx *c, struct agent_peer *peer, uint8_t type,
    struct wbuf *req, struct wbuf *reply, char *why, size_t whylen)
{
	struct glue g;
	int r;

	memset(&g, 0, sizeof(g));
	g.c = c;
	g.peer = peer;
	g.ks = dispatch_keystore(c);
	g.why = why;
	g.whylen = whylen;
	r = sshproto_handle(&glue_ops, &g, type, req, reply);
	/* the reply (answer or FAILURE) is decided: the request is done */
	if (r == 0 && wbuf_consume(req, wbuf_len(req)) != 0)
		r = TS_ERR_INTERNAL;
	free(g.keys);
	free(g.kk);
	return r;
}

int
sshproto_dispatch_identities(struct dispatch_ctx *c, struct agent_peer *peer,
    struct wbuf *req, struct wbuf *reply, char *why, size_t whylen)
{
	return glue_run(
	    c, peer, SSH_AGENTC_REQUEST_IDENTITIES, req, reply, why, whylen);
}

static const struct dispatch_entry sshproto_rows[] = {
	{ SSH_AGENTC_REQUEST_IDENTITIES, "SSH_REQUEST_IDENTITIES",
	    sshproto_dispatch_identities,
	    DISPATCH_F_NO_HELLO | DISPATCH_F_SSH },
	{ SSH_AGENTC_SIGN_REQUEST, "SSH_SIGN_REQUEST", sshproto_dispatch_sign,
	    DISPATCH_F_NO_HELLO | DISPATCH_F_SSH | DISPATCH_F_SIGN },
};

int
sshproto_register(void)
{
	return dispatch_register(
	    sshproto_rows, sizeof(sshproto_rows) / sizeof(sshproto_rows[0]));
}

int
sshproto_dispatch_sign(struct dispatch_ctx *c, struct agent_peer *peer,
    struct wbuf *req, struct wbuf *reply, char *why, size_t whylen)
{
	return glue_run(
	    c, peer, SSH_AGENTC_SIGN_REQUEST, req, reply, why, whylen);
}
