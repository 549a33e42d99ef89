/*
 * kms.c - the cosign KMS plugin protocol (see kms.h).
 *
 * Invariant: every path ends in exactly one JSON object on stdout.  cosign
 * log.Fatal()s when defaultAlgorithm or supportedAlgorithms fail, so those
 * two answer even with the agent down (supportedAlgorithms never asks the
 * agent; defaultAlgorithm falls back to P-256 and says so on stderr).
 *
 * Keys in the argument JSON are matched case-insensitively after an exact
 * try: cosign writes them with its struct tags, but Go's decoder (and so
 * any other Go caller) is case-insensitive, and older sigstore drafts
 * used different capitalisation.
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>
#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "client/kms/kms.h"
#include "common/err.h"
#include "common/json.h"
#include "common/payload.h"
#include "common/proto.h"

#define ALG_P256    "ecdsa-sha2-256-nistp256"
#define ALG_ED25519 "ed25519"
#define ALG_RSA2048 "rsa-sign-pkcs1-2048-sha256"
#define ALG_RSA3072 "rsa-sign-pkcs1-3072-sha256"
#define ALG_RSA4096 "rsa-sign-pkcs1-4096-sha256"
#define MSG_MAX	    512

static const char *const supported_algs[] = { ALG_P256, ALG_ED25519,
	ALG_RSA2048, ALG_RSA3072, ALG_RSA4096 };

/* One invocation's state. */
struct kms_call {
	const struct kms_backend *be;
	void *arg;
	json_t *args; /* the whole argv[2] object */
	json_t *method_args; /* args[methodName], may be NULL */
	char *ref; /* agent key reference */
	int init_hash; /* initOptions.hashFunc (Go number), 0 if absent */
	FILE *in;
	uint8_t *msg; /* stdin, read on demand */
	size_t msg_len;
	json_t *result; /* the method's result object */
	char err[MSG_MAX]; /* errorMessage when a method fails */
};

struct kms_method {
	const char *name;
	int (*fn)(struct kms_call *c);
};

/* Exact, then case-insensitive member lookup (Go decoding semantics). */
static json_t *
jget(json_t *o, const char *key)
{
	const char *k;
	json_t *v;

	if (!json_is_object(o))
		return NULL;
	if ((v = json_object_get(o, key)) != NULL)
		return v;
	json_object_foreach(o, k, v)
	{
		if (strcasecmp(k, key) == 0)
			return v;
	}
	return NULL;
}

static int fail(struct kms_call *c, int r, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
fail(struct kms_call *c, int r, const char *fmt, ...)
{
	char what[MSG_MAX / 2];
	const char *detail;
	va_list ap;

	va_start(ap, fmt);
	(void)vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	detail = c->be->last_error != NULL ? c->be->last_error(c->arg) : NULL;
	if (detail != NULL && *detail != '\0')
		(void)snprintf(c->err, sizeof(c->err),
		    "tokensign: %.200s: %.250s", what, detail);
	else
		(void)snprintf(c->err, sizeof(c->err),
		    "tokensign: %.250s: %.200s", what, ts_err(r));
	return r;
}

static int
b64_encode(const uint8_t *data, size_t len, char **out)
{
	size_t n = 4 * ((len + 2) / 3) + 1;

	*out = NULL;
	if ((*out = malloc(n)) == NULL)
		return TS_ERR_ALLOC;
	(void)EVP_EncodeBlock((unsigned char *)*out, data, (int)len);
	return 0;
}

/* Strict standard base64 with padding (Go's StdEncoding). */
static int
b64_decode(const char *s, size_t len, uint8_t **out, size_t *outlen)
{
	size_t i, pad = 0;
	uint8_t *d;
	int n;

	*out = NULL;
	*outlen = 0;
	if (len % 4 != 0 || len > 2 * KMS_MAX_STDIN)
		return TS_ERR_BASE64;
	for (i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)s[i];

		if (ch == '=' && i >= len - 2) {
			pad++;
			continue;
		}
		if (pad != 0 || !(isalnum(ch) || ch == '+' || ch == '/'))
			return TS_ERR_BASE64;
	}
	if ((d = malloc(len / 4 * 3 + 1)) == NULL)
		return TS_ERR_ALLOC;
	n = EVP_DecodeBlock(d, (const unsigned char *)s, (int)len);
	if (n < 0 || (size_t)n < pad) {
		free(d);
		return TS_ERR_BASE64;
	}
	*out = d;
	*outlen = (size_t)n - pad;
	return 0;
}

/* Adds "key": base64(data) to o. */
static int
set_b64(json_t *o, const char *key, const uint8_t *data, size_t len)
{
	char *s = NULL;
	int r;

	if ((r = b64_encode(data, len, &s)) != 0)
		return r;
	r = json_object_set_new(o, key, json_string(s)) == 0 ? 0 : TS_ERR_ALLOC;
	free(s);
	return r;
}

int
kms_keyref_decode(const char *resource_id, char **ref)
{
	const char *s = resource_id;
	char *d;
	size_t i, o = 0, n;

	*ref = NULL;
	if (s == NULL)
		return TS_ERR_INVALID_ARG;
	if (strncmp(s, KMS_SCHEME, strlen(KMS_SCHEME)) == 0)
		s += strlen(KMS_SCHEME);
	n = strlen(s);
	if (n == 0 || n > TS_PROTO_MAX_KEYREF)
		return TS_ERR_INVALID_ARG;
	if ((d = malloc(n + 1)) == NULL)
		return TS_ERR_ALLOC;
	if (strncasecmp(s, "pkcs11%3a", 9) != 0) {
		memcpy(d, s, n + 1);
		*ref = d;
		return 0;
	}
	for (i = 0; i < n; i++) {
		if (s[i] != '%') {
			d[o++] = s[i];
			continue;
		}
		if (i + 2 >= n + 0 || !isxdigit((unsigned char)s[i + 1]) ||
		    !isxdigit((unsigned char)s[i + 2])) {
			free(d);
			return TS_ERR_INVALID_ARG;
		}
		{
			char hex[3] = { s[i + 1], s[i + 2], 0 };
			long v = strtol(hex, NULL, 16);

			if (v == 0) {
				free(d);
				return TS_ERR_INVALID_ARG;
			}
			d[o++] = (char)v;
		}
		i += 2;
	}
	d[o] = '\0';
	*ref = d;
	return 0;
}

static EVP_PKEY *
spki_pkey(const uint8_t *spki, size_t len)
{
	const unsigned char *p = spki;
	EVP_PKEY *pk;

	if ((pk = d2i_PUBKEY(NULL, &p, (long)len)) == NULL || p != spki + len) {
		EVP_PKEY_free(pk);
		ERR_clear_error();
		return NULL;
	}
	return pk;
}

const char *
kms_key_algorithm(const uint8_t *spki, size_t len)
{
	EVP_PKEY *pk;
	const char *alg = NULL;
	char group[64];

	if ((pk = spki_pkey(spki, len)) == NULL)
		return NULL;
	switch (EVP_PKEY_get_base_id(pk)) {
	case EVP_PKEY_EC:
		if (EVP_PKEY_get_utf8_string_param(
			pk, "group", group, sizeof(group), NULL) &&
		    strcmp(group, "prime256v1") == 0)
			alg = ALG_P256;
		break;
	case EVP_PKEY_ED25519:
		alg = ALG_ED25519;
		break;
	case EVP_PKEY_RSA:
		switch (EVP_PKEY_get_bits(pk)) {
		case 2048:
			alg = ALG_RSA2048;
			break;
		case 3072:
			alg = ALG_RSA3072;
			break;
		case 4096:
			alg = ALG_RSA4096;
			break;
		}
		break;
	}
	EVP_PKEY_free(pk);
	return alg;
}

/* Go crypto.Hash -> OpenSSL digest and TS_HASH_* number. */
static const EVP_MD *
go_hash(int h, int *ts_hash)
{
	switch (h) {
	case KMS_GO_SHA256:
		*ts_hash = TS_HASH_SHA256;
		return EVP_sha256();
	case KMS_GO_SHA384:
		*ts_hash = TS_HASH_SHA384;
		return EVP_sha384();
	case KMS_GO_SHA512:
		*ts_hash = TS_HASH_SHA512;
		return EVP_sha512();
	default:
		*ts_hash = 0;
		return NULL;
	}
}

static int
read_stdin(struct kms_call *c)
{
	uint8_t *buf = NULL, *nb;
	size_t cap = 0, n = 0, got;

	if (c->msg != NULL || c->in == NULL)
		return 0;
	for (;;) {
		if (n == cap) {
			cap = cap ? cap * 2 : 4096;
			if (cap > KMS_MAX_STDIN + 1)
				cap = KMS_MAX_STDIN + 1;
			if ((nb = realloc(buf, cap)) == NULL) {
				free(buf);
				return TS_ERR_ALLOC;
			}
			buf = nb;
		}
		got = fread(buf + n, 1, cap - n, c->in);
		n += got;
		if (n > KMS_MAX_STDIN) {
			free(buf);
			return TS_ERR_TOO_LARGE;
		}
		if (got == 0)
			break;
	}
	if (ferror(c->in)) {
		free(buf);
		return TS_ERR_IO;
	}
	if (buf == NULL && (buf = malloc(1)) == NULL)
		return TS_ERR_ALLOC;
	c->msg = buf;
	c->msg_len = n;
	return 0;
}

/* Fetches the key's SPKI; the error names the reference. */
static int
get_key(struct kms_call *c, uint8_t **spki, size_t *len)
{
	int r;

	if ((r = c->be->public_key(c->arg, c->ref, spki, len)) != 0)
		return fail(c, r, "key \"%.200s\"", c->ref);
	return 0;
}

static int
pem_of(const uint8_t *spki, size_t len, uint8_t **pem, size_t *pemlen)
{
	EVP_PKEY *pk = NULL;
	BIO *bio = NULL;
	char *p;
	long n;
	int r = TS_ERR_INTERNAL;

	*pem = NULL;
	*pemlen = 0;
	if ((pk = spki_pkey(spki, len)) == NULL) {
		r = TS_ERR_KEY_INVALID;
		goto out;
	}
	if ((bio = BIO_new(BIO_s_mem())) == NULL ||
	    PEM_write_bio_PUBKEY(bio, pk) != 1 ||
	    (n = BIO_get_mem_data(bio, &p)) <= 0) {
		r = ts_err_ossl("PEM_write_bio_PUBKEY");
		goto out;
	}
	if ((*pem = malloc((size_t)n)) == NULL) {
		r = TS_ERR_ALLOC;
		goto out;
	}
	memcpy(*pem, p, (size_t)n);
	*pemlen = (size_t)n;
	r = 0;
out:
	BIO_free(bio);
	EVP_PKEY_free(pk);
	return r;
}

static int
m_supported(struct kms_call *c)
{
	json_t *a = json_array();
	size_t i;

	if (a == NULL)
		return TS_ERR_ALLOC;
	for (i = 0; i < sizeof(supported_algs) / sizeof(*supported_algs); i++)
		json_array_append_new(a, json_string(supported_algs[i]));
	json_object_set_new(c->result, "supportedAlgorithms", a);
	return 0;
}

static int
m_default(struct kms_call *c)
{
	uint8_t *spki = NULL;
	size_t len = 0;
	const char *alg = NULL;

	if (c->be->public_key(c->arg, c->ref, &spki, &len) == 0)
		alg = kms_key_algorithm(spki, len);
	free(spki);
	if (alg == NULL) {
		/* cosign exits on an error here; answer, and say why */
		fprintf(stderr,
		    "sigstore-kms-tokensign: cannot read key \"%.200s\" "
		    "now; defaultAlgorithm answers %s\n",
		    c->ref, ALG_P256);
		alg = ALG_P256;
	}
	json_object_set_new(c->result, "defaultAlgorithm", json_string(alg));
	return 0;
}

static int
m_public_key(struct kms_call *c, const char *want_alg)
{
	uint8_t *spki = NULL, *pem = NULL;
	size_t len = 0, pemlen = 0;
	const char *alg;
	int r = TS_ERR_INTERNAL;

	if ((r = get_key(c, &spki, &len)) != 0)
		goto out;
	alg = kms_key_algorithm(spki, len);
	if (want_alg != NULL && *want_alg != '\0' &&
	    (alg == NULL || strcmp(alg, want_alg) != 0)) {
		/* no on-token generation through cosign: the key exists */
		r = fail(c, TS_ERR_UNSUPPORTED,
		    "createKey: the token key is not of algorithm %.100s",
		    want_alg);
		goto out;
	}
	if ((r = pem_of(spki, len, &pem, &pemlen)) != 0) {
		r = fail(c, r, "public key of \"%.200s\"", c->ref);
		goto out;
	}
	if ((r = set_b64(c->result, "publicKeyPEM", pem, pemlen)) != 0)
		goto out;
	r = 0;
out:
	free(spki);
	free(pem);
	return r;
}

static int
m_public(struct kms_call *c)
{
	return m_public_key(c, NULL);
}

static int
m_create(struct kms_call *c)
{
	json_t *a = jget(c->method_args, "algorithm");

	return m_public_key(c, json_is_string(a) ? json_string_value(a) : "");
}

/*
 * Reads messageOptions from opts ("signOptions"/"verifyOptions"): the
 * digest (NULL when absent, null or empty: Go sends a nil slice as null)
 * and the hash (messageOptions.hashFunc, else initOptions.hashFunc, else
 * SHA-256).
 */
static int
message_options(struct kms_call *c, const char *opts_name, uint8_t **digest,
    size_t *dlen, int *go_h)
{
	json_t *mo, *d, *h;
	int r;

	*digest = NULL;
	*dlen = 0;
	*go_h = c->init_hash ? c->init_hash : KMS_GO_SHA256;
	mo = jget(jget(c->method_args, opts_name), "messageOptions");
	if ((h = jget(mo, "hashFunc")) != NULL && json_is_integer(h) &&
	    json_integer_value(h) != 0)
		*go_h = (int)json_integer_value(h);
	d = jget(mo, "digest");
	if (d == NULL || json_is_null(d))
		return 0;
	if (!json_is_string(d))
		return fail(c, TS_ERR_PARSE, "messageOptions.digest");
	if (json_string_length(d) == 0)
		return 0;
	if ((r = b64_decode(json_string_value(d), json_string_length(d), digest,
		 dlen)) != 0)
		return fail(c, r, "messageOptions.digest");
	return 0;
}

/*
 * Checks the digest against the hash and, when both came, against stdin.
 * Fills md/mdlen with the digest to sign or verify.
 */
static int
settle_digest(struct kms_call *c, const EVP_MD *md, const uint8_t *digest,
    size_t dlen, uint8_t *out, size_t *outlen)
{
	unsigned int n = 0;
	size_t want = (size_t)EVP_MD_get_size(md);

	if (digest != NULL && dlen != want)
		return fail(c, TS_ERR_DIGEST_INVALID,
		    "digest length does not match hashFunc");
	if (c->msg_len > 0 || digest == NULL) {
		if (EVP_Digest(c->msg, c->msg_len, out, &n, md, NULL) != 1)
			return fail(c, ts_err_ossl("hash"), "hash stdin");
		if (digest != NULL && CRYPTO_memcmp(out, digest, dlen) != 0)
			return fail(c, TS_ERR_DIGEST_MISMATCH,
			    "messageOptions.digest is not the hash of "
			    "stdin");
	} else {
		memcpy(out, digest, dlen);
	}
	*outlen = want;
	return 0;
}

static int
m_sign(struct kms_call *c)
{
	uint8_t *spki = NULL, *digest = NULL, *sig = NULL;
	size_t len = 0, dlen = 0, siglen = 0, mdlen = 0;
	uint8_t md[EVP_MAX_MD_SIZE];
	const char *alg;
	const EVP_MD *evmd;
	struct payload *pl = NULL;
	char why[TSJSON_WHY_MAX];
	int go_h, ts_hash, r = TS_ERR_INTERNAL;

	if ((r = read_stdin(c)) != 0) {
		r = fail(c, r, "read the message on stdin");
		goto out;
	}
	if ((r = message_options(c, "signOptions", &digest, &dlen, &go_h)) != 0)
		goto out;
	if ((r = get_key(c, &spki, &len)) != 0)
		goto out;
	if ((alg = kms_key_algorithm(spki, len)) == NULL) {
		r = fail(c, TS_ERR_UNSUPPORTED,
		    "key \"%.200s\" is not P-256, Ed25519 or "
		    "RSA-2048/3072/4096",
		    c->ref);
		goto out;
	}
	/* A payload goes to the agent whole so it knows what it signs. */
	if (c->msg_len > 0 &&
	    payload_parse(c->msg, c->msg_len, &pl, why, sizeof(why)) == 0 &&
	    (go_h == KMS_GO_SHA256 || strcmp(alg, ALG_ED25519) == 0)) {
		if (digest != NULL && strcmp(alg, ALG_ED25519) != 0 &&
		    (r = settle_digest(
			 c, EVP_sha256(), digest, dlen, md, &mdlen)) != 0)
			goto out;
		if ((r = c->be->sign_payload(c->arg, c->ref, c->msg, c->msg_len,
			 &sig, &siglen)) != 0) {
			r = fail(c, r, "sign payload with \"%.200s\"", c->ref);
			goto out;
		}
	} else if (strcmp(alg, ALG_ED25519) == 0) {
		/* pure Ed25519 needs the message; the agent signs payloads */
		r = fail(c, TS_ERR_UNSUPPORTED,
		    c->msg_len == 0
			? "Ed25519 signs the whole message, but stdin is "
			  "empty"
			: "Ed25519 keys sign simple-signing payloads only");
		goto out;
	} else {
		if ((evmd = go_hash(go_h, &ts_hash)) == NULL) {
			r = fail(c, TS_ERR_UNSUPPORTED,
			    "hashFunc must be SHA256, SHA384 or SHA512");
			goto out;
		}
		if ((r = settle_digest(c, evmd, digest, dlen, md, &mdlen)) != 0)
			goto out;
		if ((r = c->be->sign_digest(c->arg, c->ref, ts_hash, md, mdlen,
			 &sig, &siglen)) != 0) {
			r = fail(c, r, "sign digest with \"%.200s\"", c->ref);
			goto out;
		}
	}
	if ((r = set_b64(c->result, "signature", sig, siglen)) != 0)
		goto out;
	r = 0;
out:
	payload_free(pl);
	free(spki);
	free(digest);
	free(sig);
	return r;
}

static int
m_verify(struct kms_call *c)
{
	uint8_t *spki = NULL, *digest = NULL, *sig = NULL;
	size_t len = 0, dlen = 0, siglen = 0, mdlen = 0;
	uint8_t md[EVP_MAX_MD_SIZE];
	const EVP_MD *evmd;
	EVP_PKEY *pk = NULL;
	EVP_PKEY_CTX *pctx = NULL;
	EVP_MD_CTX *mctx = NULL;
	json_t *js;
	int go_h, ts_hash, ok = 0, r = TS_ERR_INTERNAL;

	if ((r = read_stdin(c)) != 0) {
		r = fail(c, r, "read the message on stdin");
		goto out;
	}
	js = jget(c->method_args, "signature");
	if (!json_is_string(js) || json_string_length(js) == 0 ||
	    b64_decode(json_string_value(js), json_string_length(js), &sig,
		&siglen) != 0) {
		r = fail(c, TS_ERR_BASE64, "verifySignature.signature");
		goto out;
	}
	if ((r = message_options(c, "verifyOptions", &digest, &dlen, &go_h)) !=
	    0)
		goto out;
	if ((r = get_key(c, &spki, &len)) != 0)
		goto out;
	if ((pk = spki_pkey(spki, len)) == NULL) {
		r = fail(c, TS_ERR_KEY_INVALID, "key \"%.200s\"", c->ref);
		goto out;
	}
	if (EVP_PKEY_get_base_id(pk) == EVP_PKEY_ED25519) {
		if ((mctx = EVP_MD_CTX_new()) == NULL ||
		    EVP_DigestVerifyInit(mctx, NULL, NULL, NULL, pk) != 1) {
			r = fail(c, ts_err_ossl("verify"), "verify");
			goto out;
		}
		ok = EVP_DigestVerify(mctx, sig, siglen, c->msg, c->msg_len) ==
		    1;
	} else {
		if ((evmd = go_hash(go_h, &ts_hash)) == NULL) {
			r = fail(c, TS_ERR_UNSUPPORTED,
			    "hashFunc must be SHA256, SHA384 or SHA512");
			goto out;
		}
		if ((r = settle_digest(c, evmd, digest, dlen, md, &mdlen)) != 0)
			goto out;
		if ((pctx = EVP_PKEY_CTX_new(pk, NULL)) == NULL ||
		    EVP_PKEY_verify_init(pctx) != 1 ||
		    (EVP_PKEY_get_base_id(pk) == EVP_PKEY_RSA &&
			EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) !=
			    1) ||
		    EVP_PKEY_CTX_set_signature_md(pctx, evmd) != 1) {
			r = fail(c, ts_err_ossl("verify"), "verify");
			goto out;
		}
		ok = EVP_PKEY_verify(pctx, sig, siglen, md, mdlen) == 1;
	}
	ERR_clear_error();
	if (!ok) {
		r = fail(c, TS_ERR_SIG_INVALID, "key \"%.200s\"", c->ref);
		goto out;
	}
	r = 0;
out:
	EVP_MD_CTX_free(mctx);
	EVP_PKEY_CTX_free(pctx);
	EVP_PKEY_free(pk);
	free(spki);
	free(digest);
	free(sig);
	return r;
}

static const struct kms_method methods[] = {
	{ "defaultAlgorithm", m_default },
	{ "supportedAlgorithms", m_supported },
	{ "createKey", m_create },
	{ "publicKey", m_public },
	{ "signMessage", m_sign },
	{ "verifySignature", m_verify },
};

static int
parse_args(struct kms_call *c, int argc, char *const *argv,
    const struct kms_method **m)
{
	json_t *v, *init;
	const char *name;
	char why[TSJSON_WHY_MAX];
	size_t i;
	int r;

	*m = NULL;
	if (argc < 3)
		return fail(c, TS_ERR_INVALID_ARG,
		    "usage: sigstore-kms-tokensign v1 '<json>'");
	if (strcmp(argv[1], "v1") != 0 && strcmp(argv[1], "1") != 0)
		return fail(c, TS_ERR_WIRE_VERSION,
		    "protocol version %.40s (this plugin speaks v1)", argv[1]);
	if ((r = tsjson_parse(argv[2], strlen(argv[2]), KMS_MAX_ARGS,
		 TSJSON_OBJECT, &c->args, why, sizeof(why))) != 0)
		return fail(c, r, "argument JSON: %.200s", why);
	v = jget(c->args, "methodName");
	if (!json_is_string(v))
		return fail(c, TS_ERR_PARSE, "methodName missing");
	name = json_string_value(v);
	for (i = 0; i < sizeof(methods) / sizeof(*methods); i++) {
		if (strcmp(name, methods[i].name) == 0)
			*m = &methods[i];
	}
	if (*m == NULL)
		return fail(c, TS_ERR_UNSUPPORTED, "method %.100s", name);
	c->method_args = jget(c->args, name);
	init = jget(c->args, "initOptions");
	if ((v = jget(init, "hashFunc")) != NULL && json_is_integer(v))
		c->init_hash = (int)json_integer_value(v);
	v = jget(init, "keyResourceID");
	if (!json_is_string(v) ||
	    (r = kms_keyref_decode(json_string_value(v), &c->ref)) != 0) {
		/* the two algorithm queries need no key */
		if (strcmp(name, "supportedAlgorithms") == 0 ||
		    strcmp(name, "defaultAlgorithm") == 0) {
			c->ref = strdup("");
			return c->ref ? 0 : TS_ERR_ALLOC;
		}
		return fail(c, TS_ERR_INVALID_ARG,
		    "initOptions.keyResourceID must be tokensign://KEY");
	}
	return 0;
}

int
kms_run(const struct kms_backend *be, void *arg, int argc, char *const *argv,
    FILE *in, FILE *out)
{
	struct kms_call c;
	const struct kms_method *m = NULL;
	json_t *resp = NULL;
	char *text = NULL;
	size_t i;
	int r = TS_ERR_INTERNAL;

	memset(&c, 0, sizeof(c));
	c.be = be;
	c.arg = arg;
	c.in = in;
	if ((c.result = json_object()) == NULL ||
	    (resp = json_object()) == NULL) {
		r = TS_ERR_ALLOC;
		(void)snprintf(
		    c.err, sizeof(c.err), "tokensign: %s", ts_err(r));
		goto emit;
	}
	if ((r = parse_args(&c, argc, argv, &m)) != 0)
		goto emit;
	r = m->fn(&c);
	if (r != 0 && c.err[0] == '\0')
		(void)fail(&c, r, "%s", m->name);
emit:
	for (i = 0; c.err[i] != '\0'; i++) {
		/* cut refs may split UTF-8; keep the JSON valid and plain */
		if ((unsigned char)c.err[i] < 0x20 ||
		    (unsigned char)c.err[i] > 0x7e)
			c.err[i] = '?';
	}
	if (resp != NULL) {
		if (r == 0)
			json_object_set(resp, m->name, c.result);
		else
			json_object_set_new(
			    resp, "errorMessage", json_string(c.err));
		text = json_dumps(resp, JSON_COMPACT);
	}
	if (text != NULL)
		fprintf(out, "%s\n", text);
	else /* even out of memory, valid JSON */
		fprintf(
		    out, "{\"errorMessage\":\"tokensign: out of memory\"}\n");
	fflush(out);
	free(text);
	json_decref(resp);
	json_decref(c.result);
	json_decref(c.args);
	free(c.ref);
	if (c.msg != NULL)
		OPENSSL_cleanse(c.msg, c.msg_len);
	free(c.msg);
	return r;
}
