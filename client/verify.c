/*
 * verify.c - key loading, signature verification over the raw payload,
 * strict payload checks, identity matching and reports (see verify.h for
 * the order of checks; design in docs/internals/payload.md).
 *
 * Hash: always SHA-256, whatever the key, as containers/image does
 * (sigstoreHarcodedHashAlgorithm) and released cosign did (formats.md 9).
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "client/commands.h"
#include "client/verify.h"
#include "common/err.h"
#include "common/log.h"

#define VERIFY_RSA_MIN_BITS 2048 /* sigstore cryptoutils.ValidatePubKey */
#define VERIFY_REF_MAX	    255 /* docker's NameTotalLengthMax */
#define VERIFY_TAG_MAX	    128

struct verify_key {
	EVP_PKEY *pkey;
	int kind; /* EVP_PKEY_EC, EVP_PKEY_RSA, EVP_PKEY_ED25519 */
	size_t ec_field_bytes; /* r and s length for the P1363 fallback */
	const char *desc;
};

/* ---- keys ---- */

void
verify_key_free(struct verify_key *k)
{
	if (k == NULL)
		return;
	EVP_PKEY_free(k->pkey);
	free(k);
}

const char *
verify_key_type(const struct verify_key *k)
{
	return k->desc;
}

/* Accepts the key types sigstore's LoadVerifier handles, with sane sizes. */
static int
key_classify(struct verify_key *k, char *why, size_t why_len)
{
	char curve[64];
	size_t clen = 0;
	int bits;

	switch (EVP_PKEY_get_base_id(k->pkey)) {
	case EVP_PKEY_EC:
		if (EVP_PKEY_get_utf8_string_param(k->pkey,
			OSSL_PKEY_PARAM_GROUP_NAME, curve, sizeof(curve),
			&clen) != 1) {
			ts_errbuf(why, why_len, "EC key with unnamed curve");
			return TS_ERR_KEY_INVALID;
		}
		k->kind = EVP_PKEY_EC;
		if (strcmp(curve, "prime256v1") == 0) {
			k->desc = "ecdsa-p256";
			k->ec_field_bytes = 32;
		} else if (strcmp(curve, "secp384r1") == 0) {
			k->desc = "ecdsa-p384";
			k->ec_field_bytes = 48;
		} else if (strcmp(curve, "secp521r1") == 0) {
			k->desc = "ecdsa-p521";
			k->ec_field_bytes = 66;
		} else {
			ts_errbuf(why, why_len,
			    "EC curve %.40s is not supported (P-256, P-384, "
			    "P-521 are)",
			    curve);
			return TS_ERR_KEY_INVALID;
		}
		return 0;
	case EVP_PKEY_RSA:
		bits = EVP_PKEY_get_bits(k->pkey);
		if (bits < VERIFY_RSA_MIN_BITS) {
			ts_errbuf(why, why_len,
			    "RSA key of %d bits is too small "
			    "(minimum %d)",
			    bits, VERIFY_RSA_MIN_BITS);
			return TS_ERR_KEY_INVALID;
		}
		k->kind = EVP_PKEY_RSA;
		k->desc = "rsa";
		return 0;
	case EVP_PKEY_ED25519:
		k->kind = EVP_PKEY_ED25519;
		k->desc = "ed25519";
		return 0;
	default:
		ts_errbuf(why, why_len,
		    "public key type is not supported "
		    "(ECDSA, RSA and Ed25519 are)");
		return TS_ERR_KEY_INVALID;
	}
}

int
verify_key_load_pem(const uint8_t *pem, size_t len, struct verify_key **out,
    char *why, size_t why_len)
{
	struct verify_key *k = NULL;
	BIO *bio = NULL;
	char *name = NULL, *header = NULL;
	unsigned char *der = NULL;
	const unsigned char *p;
	long dlen = 0;
	int r = TS_ERR_KEY_INVALID;

	if (out != NULL)
		*out = NULL;
	if (why != NULL && why_len > 0)
		why[0] = '\0';
	if (out == NULL || pem == NULL || len > VERIFY_KEY_MAX_LEN) {
		ts_errbuf(why, why_len, "no key or key file too large");
		goto out;
	}
	if ((bio = BIO_new_mem_buf(pem, (int)len)) == NULL) {
		r = TS_ERR_ALLOC;
		goto out;
	}
	/* Only the first PEM block, as sigstore's UnmarshalPEMToPublicKey. */
	if (PEM_read_bio(bio, &name, &header, &der, &dlen) != 1) {
		ERR_clear_error();
		ts_errbuf(why, why_len, "no PEM block found");
		goto out;
	}
	if (header != NULL && header[0] != '\0') {
		ts_errbuf(why, why_len, "PEM block has headers (encrypted?)");
		goto out;
	}
	p = der;
	if ((k = calloc(1, sizeof(*k))) == NULL) {
		r = TS_ERR_ALLOC;
		goto out;
	}
	if (strcmp(name, "PUBLIC KEY") == 0)
		k->pkey = d2i_PUBKEY(NULL, &p, dlen);
	else if (strcmp(name, "RSA PUBLIC KEY") == 0)
		k->pkey = d2i_PublicKey(EVP_PKEY_RSA, NULL, &p, dlen);
	else {
		ts_errbuf(why, why_len,
		    "PEM block \"%.40s\" is not a public key (want PUBLIC KEY "
		    "or RSA PUBLIC KEY)",
		    name);
		goto out;
	}
	if (k->pkey == NULL) {
		ERR_clear_error();
		ts_errbuf(why, why_len, "cannot decode the %s DER", name);
		goto out;
	}
	if (p != der + dlen) {
		ts_errbuf(why, why_len, "trailing bytes after the key DER");
		goto out;
	}
	if ((r = key_classify(k, why, why_len)) != 0)
		goto out;
	*out = k;
	k = NULL;
	r = 0;
out:
	verify_key_free(k);
	OPENSSL_free(name);
	OPENSSL_free(header);
	OPENSSL_free(der);
	BIO_free(bio);
	return r;
}

int
verify_key_load_file(
    const char *path, struct verify_key **out, char *why, size_t why_len)
{
	uint8_t *buf = NULL;
	size_t n = 0;
	ssize_t got;
	struct stat st;
	int fd = -1, r = TS_ERR_KEY_INVALID;

	if (out != NULL)
		*out = NULL;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1) {
		ts_errbuf(why, why_len, "cannot open %.200s: %s", path,
		    strerror(errno));
		goto out;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		ts_errbuf(why, why_len, "%.200s is not a regular file", path);
		goto out;
	}
	if ((buf = malloc(VERIFY_KEY_MAX_LEN + 1)) == NULL) {
		r = TS_ERR_ALLOC;
		goto out;
	}
	while (n <= VERIFY_KEY_MAX_LEN &&
	    (got = read(fd, buf + n, VERIFY_KEY_MAX_LEN + 1 - n)) != 0) {
		if (got < 0) {
			if (errno == EINTR)
				continue;
			ts_errbuf(why, why_len, "reading %.200s: %s", path,
			    strerror(errno));
			goto out;
		}
		n += (size_t)got;
	}
	if (n > VERIFY_KEY_MAX_LEN) {
		ts_errbuf(why, why_len, "%.200s is larger than %d bytes", path,
		    VERIFY_KEY_MAX_LEN);
		goto out;
	}
	r = verify_key_load_pem(buf, n, out, why, why_len);
out:
	if (fd != -1)
		close(fd);
	free(buf);
	return r;
}

/* ---- base64 ---- */

static int
b64val(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

int
verify_base64_decode(const char *in, size_t in_len, size_t max_out,
    uint8_t **out, size_t *out_len)
{
	uint8_t *buf = NULL;
	int quad[4], nq = 0, pad = 0, v;
	size_t i, o = 0;
	int r = TS_ERR_BASE64;

	*out = NULL;
	*out_len = 0;
	if (in == NULL)
		return TS_ERR_BASE64;
	if ((buf = malloc(in_len / 4 * 3 + 3)) == NULL)
		return TS_ERR_ALLOC;
	for (i = 0; i < in_len; i++) {
		unsigned char c = (unsigned char)in[i];

		if (c == '\r' || c == '\n')
			continue; /* Go's decoder skips these */
		if (pad > 0 && c != '=')
			goto out; /* data after padding */
		if (c == '=') {
			/* '=' only in the last one or two places of a quad */
			if (nq < 2)
				goto out;
			pad++;
			quad[nq++] = 0;
		} else {
			if ((v = b64val(c)) < 0)
				goto out;
			quad[nq++] = v;
		}
		if (nq == 4) {
			if (pad > 2)
				goto out;
			buf[o++] = (uint8_t)(quad[0] << 2 | quad[1] >> 4);
			if (pad < 2)
				buf[o++] =
				    (uint8_t)(quad[1] << 4 | quad[2] >> 2);
			if (pad < 1)
				buf[o++] = (uint8_t)(quad[2] << 6 | quad[3]);
			nq = 0;
			if (pad > 0) {
				/* nothing but CR/LF may follow */
				for (i++; i < in_len; i++)
					if (in[i] != '\r' && in[i] != '\n')
						goto out;
				break;
			}
		}
	}
	if (nq != 0 || o == 0)
		goto out; /* truncated quad, or empty */
	if (o > max_out) {
		r = TS_ERR_TOO_LARGE;
		goto out;
	}
	*out = buf;
	*out_len = o;
	buf = NULL;
	r = 0;
out:
	free(buf);
	return r;
}

/* ---- signatures ---- */

/* 1 verified, 0 not, <0 error */
static int
evp_verify(EVP_PKEY *pkey, const EVP_MD *md, const uint8_t *sig, size_t sig_len,
    const uint8_t *msg, size_t msg_len)
{
	EVP_MD_CTX *ctx;
	int ok;

	if ((ctx = EVP_MD_CTX_new()) == NULL)
		return TS_ERR_ALLOC;
	if (EVP_DigestVerifyInit(ctx, NULL, md, NULL, pkey) != 1) {
		EVP_MD_CTX_free(ctx);
		return ts_err_ossl("EVP_DigestVerifyInit");
	}
	ok = EVP_DigestVerify(ctx, sig, sig_len, msg, msg_len);
	EVP_MD_CTX_free(ctx);
	/* A failed verify leaves errors queued: they are not ours to log. */
	ERR_clear_error();
	return ok == 1 ? 1 : 0;
}

/*
 * IEEE P1363 r||s -> DER, for sigstore's fallback (formats.md 9.1).  Only
 * the exact length for the key's curve is considered.
 */
static int
p1363_to_der(const struct verify_key *k, const uint8_t *sig, size_t len,
    uint8_t **der, size_t *der_len)
{
	ECDSA_SIG *es = NULL;
	BIGNUM *br = NULL, *bs = NULL;
	unsigned char *d = NULL;
	int n, r = TS_ERR_SIG_INVALID;

	*der = NULL;
	*der_len = 0;
	if (len != 2 * k->ec_field_bytes)
		return TS_ERR_SIG_INVALID;
	if ((es = ECDSA_SIG_new()) == NULL ||
	    (br = BN_bin2bn(sig, (int)k->ec_field_bytes, NULL)) == NULL ||
	    (bs = BN_bin2bn(sig + k->ec_field_bytes, (int)k->ec_field_bytes,
		 NULL)) == NULL) {
		r = TS_ERR_ALLOC;
		goto out;
	}
	if (ECDSA_SIG_set0(es, br, bs) != 1) {
		r = TS_ERR_CRYPTO;
		goto out;
	}
	br = bs = NULL;
	if ((n = i2d_ECDSA_SIG(es, &d)) <= 0) {
		r = ts_err_ossl("i2d_ECDSA_SIG");
		goto out;
	}
	*der = d;
	*der_len = (size_t)n;
	d = NULL;
	r = 0;
out:
	BN_free(br);
	BN_free(bs);
	ECDSA_SIG_free(es);
	OPENSSL_free(d);
	return r;
}

static int
check_signature(const struct verify_key *k, const uint8_t *payload,
    size_t payload_len, const uint8_t *sig, size_t sig_len, char *why,
    size_t why_len)
{
	uint8_t *der = NULL;
	size_t der_len;
	int ok, r;

	if (k->kind == EVP_PKEY_ED25519)
		ok = evp_verify(
		    k->pkey, NULL, sig, sig_len, payload, payload_len);
	else
		ok = evp_verify(
		    k->pkey, EVP_sha256(), sig, sig_len, payload, payload_len);
	if (ok == 0 && k->kind == EVP_PKEY_EC &&
	    (r = p1363_to_der(k, sig, sig_len, &der, &der_len)) == 0) {
		ok = evp_verify(
		    k->pkey, EVP_sha256(), der, der_len, payload, payload_len);
		OPENSSL_free(der);
	}
	if (ok < 0)
		return ok;
	if (ok != 1) {
		ts_errbuf(why, why_len,
		    "the %s key does not match it over the raw payload bytes",
		    k->desc);
		return TS_ERR_SIG_INVALID;
	}
	return 0;
}

/* ---- docker references ---- */

static int
lower_alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

/* docker's path component: [a-z0-9]+((\.|_|__|-+)[a-z0-9]+)* */
static int
path_component_ok(const char *s, size_t n)
{
	size_t i = 0, run;

	for (;;) {
		for (run = 0; i < n && lower_alnum(s[i]); i++)
			run++;
		if (run == 0)
			return 0;
		if (i == n)
			return 1;
		if (s[i] == '.')
			i++;
		else if (s[i] == '_')
			i += (i + 1 < n && s[i + 1] == '_') ? 2 : 1;
		else if (s[i] == '-')
			while (i < n && s[i] == '-')
				i++;
		else
			return 0;
	}
}

static int
domain_ok(const char *s, size_t n)
{
	size_t i;

	if (n == 0)
		return 0;
	for (i = 0; i < n; i++) {
		char c = s[i];

		if (!(isalnum((unsigned char)c) || c == '.' || c == '-' ||
			c == ':' || c == '[' || c == ']'))
			return 0;
	}
	return 1;
}

static int
tag_ok(const char *s, size_t n)
{
	size_t i;

	/* [\w][\w.-]{0,127} */
	if (n == 0 || n > VERIFY_TAG_MAX ||
	    !(isalnum((unsigned char)s[0]) || s[0] == '_'))
		return 0;
	for (i = 1; i < n; i++)
		if (!(isalnum((unsigned char)s[i]) || s[i] == '_' ||
			s[i] == '.' || s[i] == '-'))
			return 0;
	return 1;
}

int
verify_ref_normalize(const char *ref, char **name, char **tag, char **dig)
{
	const char *at, *slash, *rest, *colon, *p, *end;
	char *n = NULL, *t = NULL, *d = NULL;
	const char *domain = "docker.io", *lib = "";
	size_t dlen = 9, rlen, nlen;
	struct digest dd;
	int r = TS_ERR_REF_INVALID;

	*name = *tag = *dig = NULL;
	if (ref == NULL || strlen(ref) > 4 * VERIFY_REF_MAX)
		goto out;
	end = ref + strlen(ref);
	if ((at = strchr(ref, '@')) != NULL) {
		if (digest_parse(at + 1, (size_t)(end - at - 1), &dd, NULL) !=
		    0)
			goto out;
		if ((d = strdup(at + 1)) == NULL) {
			r = TS_ERR_ALLOC;
			goto out;
		}
		end = at;
	}
	/* tag: after the last ':' that follows the last '/' */
	for (p = end, slash = NULL; p > ref; p--)
		if (p[-1] == '/') {
			slash = p - 1;
			break;
		}
	colon = NULL;
	for (p = slash == NULL ? ref : slash + 1; p < end; p++)
		if (*p == ':')
			colon = p;
	if (colon != NULL) {
		if (!tag_ok(colon + 1, (size_t)(end - colon - 1)))
			goto out;
		if ((t = strndup(colon + 1, (size_t)(end - colon - 1))) ==
		    NULL) {
			r = TS_ERR_ALLOC;
			goto out;
		}
		end = colon;
	}
	/* domain: first component with '.' or ':', "localhost", or capitals */
	rest = ref;
	if ((slash = memchr(ref, '/', (size_t)(end - ref))) != NULL) {
		size_t fl = (size_t)(slash - ref);
		int is_domain = fl == 9 && memcmp(ref, "localhost", 9) == 0;

		for (p = ref; p < slash && !is_domain; p++)
			if (*p == '.' || *p == ':' ||
			    isupper((unsigned char)*p))
				is_domain = 1;
		if (is_domain) {
			if (!domain_ok(ref, fl))
				goto out;
			domain = ref;
			dlen = fl;
			rest = slash + 1;
			if (fl == 15 &&
			    memcmp(ref, "index.docker.io", 15) == 0) {
				domain = "docker.io";
				dlen = 9;
			}
		}
	}
	rlen = (size_t)(end - rest);
	if (dlen == 9 && memcmp(domain, "docker.io", 9) == 0 &&
	    memchr(rest, '/', rlen) == NULL)
		lib = "library/";
	/* every path component */
	for (p = rest; p <= end;) {
		const char *q = memchr(p, '/', (size_t)(end - p));

		if (q == NULL)
			q = end;
		if (!path_component_ok(p, (size_t)(q - p)))
			goto out;
		p = q + 1;
	}
	nlen = dlen + 1 + strlen(lib) + rlen;
	if (nlen > VERIFY_REF_MAX)
		goto out;
	if ((n = malloc(nlen + 1)) == NULL) {
		r = TS_ERR_ALLOC;
		goto out;
	}
	snprintf(n, nlen + 1, "%.*s/%s%.*s", (int)dlen, domain, lib, (int)rlen,
	    rest);
	*name = n;
	*tag = t;
	*dig = d;
	n = t = d = NULL;
	r = 0;
out:
	free(n);
	free(t);
	free(d);
	return r;
}

static int
streq_opt(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	return strcmp(a, b) == 0;
}

static int
check_identity(const struct verify_policy *pol, const char *sigref, char *why,
    size_t why_len)
{
	char *en = NULL, *et = NULL, *ed = NULL, *sn = NULL, *st = NULL,
	     *sd = NULL;
	int exact, r = TS_ERR_SIG_IDENTITY;

	if ((r = verify_ref_normalize(pol->identity, &en, &et, &ed)) != 0) {
		ts_errbuf(why, why_len,
		    "expected identity \"%.200s\" is not a "
		    "valid docker reference",
		    pol->identity);
		r = r == TS_ERR_ALLOC ? r : TS_ERR_INVALID_ARG;
		goto out;
	}
	if ((r = verify_ref_normalize(sigref, &sn, &st, &sd)) != 0) {
		ts_errbuf(why, why_len,
		    "docker-reference \"%.200s\" in the signature is not a "
		    "valid docker reference",
		    sigref);
		r = r == TS_ERR_ALLOC ? r : TS_ERR_SIG_IDENTITY;
		goto out;
	}
	exact =
	    pol->identity_mode == VERIFY_ID_AUTO && (et != NULL || ed != NULL);
	if (strcmp(en, sn) != 0 ||
	    (exact && (!streq_opt(et, st) || !streq_opt(ed, sd)))) {
		ts_errbuf(why, why_len,
		    "signature identity \"%.200s\" does not match %s "
		    "\"%.200s\"",
		    sigref, exact ? "the exact reference" : "the repository",
		    exact ? pol->identity : en);
		r = TS_ERR_SIG_IDENTITY;
		goto out;
	}
	r = 0;
out:
	free(en);
	free(et);
	free(ed);
	free(sn);
	free(st);
	free(sd);
	return r;
}

/* ---- one signature ---- */

int
verify_one_raw(const struct verify_key *k, const uint8_t *payload,
    size_t payload_len, const uint8_t *sig, size_t sig_len,
    const struct verify_policy *pol, struct payload **parsed, char *why,
    size_t why_len)
{
	struct payload *p = NULL;
	char pwhy[256], want[DIGEST_STR_MAX];
	const char *v;
	size_t i;
	int r = TS_ERR_INTERNAL;

	if (parsed != NULL)
		*parsed = NULL;
	if (why != NULL && why_len > 0)
		why[0] = '\0';
	if (k == NULL || pol == NULL || pol->digest == NULL ||
	    (payload == NULL && payload_len > 0) || sig == NULL ||
	    (pol->annotations == NULL && pol->n_annotations > 0)) {
		ts_errbuf(why, why_len, "missing key, policy or digest");
		r = TS_ERR_INVALID_ARG;
		goto out;
	}
	if (payload_len > PAYLOAD_MAX_LEN) {
		ts_errbuf(why, why_len, "payload of %zu bytes exceeds %d",
		    payload_len, PAYLOAD_MAX_LEN);
		r = TS_ERR_PAYLOAD_INVALID;
		goto out;
	}
	/* 2. over the raw stored bytes, before parsing anything */
	if ((r = check_signature(
		 k, payload, payload_len, sig, sig_len, why, why_len)) != 0)
		goto out;
	/* 3. */
	if ((r = payload_parse(payload, payload_len, &p, pwhy, sizeof(pwhy))) !=
	    0) {
		ts_errbuf(why, why_len, "signed payload is invalid: %s", pwhy);
		goto out;
	}
	/* 4. */
	if (!digest_equal(payload_manifest_digest(p), pol->digest)) {
		if (digest_format(pol->digest, want, sizeof(want)) != 0)
			want[0] = '\0';
		ts_errbuf(why, why_len,
		    "signature is for manifest %.100s, not %s",
		    payload_manifest_digest_str(p), want);
		r = TS_ERR_DIGEST_MISMATCH;
		goto out;
	}
	/* 5. */
	if (pol->identity != NULL &&
	    (r = check_identity(
		 pol, payload_docker_reference(p), why, why_len)) != 0)
		goto out;
	/* 6. */
	for (i = 0; i < pol->n_annotations; i++) {
		const struct payload_kv *kv = &pol->annotations[i];

		if (payload_optional_string(p, kv->key, &v) != 0) {
			ts_errbuf(why, why_len,
			    "required annotation \"%.100s\" is missing",
			    kv->key);
			r = TS_ERR_SIG_ANNOTATION;
			goto out;
		}
		if (strcmp(v, kv->value) != 0) {
			ts_errbuf(why, why_len,
			    "annotation \"%.100s\" is \"%.100s\", not "
			    "\"%.100s\"",
			    kv->key, v, kv->value);
			r = TS_ERR_SIG_ANNOTATION;
			goto out;
		}
	}
	if (parsed != NULL) {
		*parsed = p;
		p = NULL;
	}
	r = 0;
out:
	payload_free(p);
	return r;
}

int
verify_one(const struct verify_key *k, const uint8_t *payload,
    size_t payload_len, const char *sig_b64, const struct verify_policy *pol,
    struct payload **parsed, char *why, size_t why_len)
{
	uint8_t *sig = NULL;
	size_t sig_len = 0, blen;
	int r;

	if (parsed != NULL)
		*parsed = NULL;
	if (sig_b64 == NULL) {
		ts_errbuf(why, why_len, "layer has no %s annotation",
		    "dev.cosignproject.cosign/signature");
		return TS_ERR_SIG_INVALID;
	}
	blen = strlen(sig_b64);
	if (blen > VERIFY_SIG_B64_MAX) {
		ts_errbuf(why, why_len,
		    "signature annotation of %zu bytes is "
		    "too long",
		    blen);
		return TS_ERR_BASE64;
	}
	if ((r = verify_base64_decode(
		 sig_b64, blen, VERIFY_SIG_MAX_LEN, &sig, &sig_len)) != 0) {
		ts_errbuf(why, why_len,
		    "signature annotation is not valid standard base64");
		return r == TS_ERR_ALLOC ? r : TS_ERR_BASE64;
	}
	r = verify_one_raw(
	    k, payload, payload_len, sig, sig_len, pol, parsed, why, why_len);
	free(sig);
	return r;
}

/* ---- reports ---- */

struct verify_item {
	char *source;
	int r;
	char *why; /* NULL when verified */
	uint8_t *payload; /* copy, verified ones only */
	size_t payload_len;
	char *identity;
};

struct verify_report {
	struct verify_item *items;
	size_t n_items; /* signatures seen */
	size_t n_valid;
	size_t n_others;
	size_t n_skipped;
};

void
verify_report_free(struct verify_report *rep)
{
	size_t i;

	if (rep == NULL)
		return;
	for (i = 0; i < rep->n_items; i++) {
		free(rep->items[i].source);
		free(rep->items[i].why);
		free(rep->items[i].payload);
		free(rep->items[i].identity);
	}
	free(rep->items);
	free(rep);
}

size_t
verify_report_valid(const struct verify_report *rep)
{
	return rep->n_valid;
}

size_t
verify_report_signatures(const struct verify_report *rep)
{
	return rep->n_items;
}

size_t
verify_report_others(const struct verify_report *rep)
{
	return rep->n_others;
}

void
verify_report_add_skipped(struct verify_report *rep, size_t n)
{
	rep->n_skipped += n;
}

int
verify_report_exit_status(const struct verify_report *rep)
{
	if (rep->n_valid > 0)
		return TS_EXIT_OK;
	if (rep->n_items == 0)
		return TS_EXIT_NO_SIGNATURES;
	return TS_EXIT_INVALID;
}

int
verify_candidates(const struct verify_key *k, const struct verify_candidate *c,
    size_t n, const struct verify_policy *pol, struct verify_report **out)
{
	struct verify_report *rep = NULL;
	struct payload *p;
	char why[512], src[32];
	size_t i;
	int r = TS_ERR_INTERNAL, vr;

	if (out != NULL)
		*out = NULL;
	if (out == NULL || k == NULL || pol == NULL || (c == NULL && n > 0) ||
	    n > VERIFY_MAX_CANDIDATES)
		return TS_ERR_INVALID_ARG;
	if ((rep = calloc(1, sizeof(*rep))) == NULL ||
	    (n > 0 && (rep->items = calloc(n, sizeof(*rep->items))) == NULL)) {
		r = TS_ERR_ALLOC;
		goto out;
	}
	for (i = 0; i < n; i++) {
		struct verify_item *it;

		/* containers/image: "non-signature attachments" are skipped */
		if (c[i].media_type == NULL ||
		    strcmp(c[i].media_type, PAYLOAD_MEDIA_TYPE) != 0) {
			rep->n_others++;
			continue;
		}
		it = &rep->items[rep->n_items++];
		snprintf(src, sizeof(src), "signature %zu", i + 1);
		if ((it->source = strdup(
			 c[i].source != NULL ? c[i].source : src)) == NULL) {
			r = TS_ERR_ALLOC;
			goto out;
		}
		why[0] = '\0';
		p = NULL;
		vr = verify_one(k, c[i].payload, c[i].payload_len, c[i].sig_b64,
		    pol, &p, why, sizeof(why));
		if (vr == TS_ERR_ALLOC) {
			r = vr;
			goto out;
		}
		it->r = vr;
		if (vr == 0) {
			rep->n_valid++;
			it->identity = strdup(payload_docker_reference(p));
			payload_free(p);
			if (it->identity == NULL ||
			    (it->payload = malloc(c[i].payload_len + 1)) ==
				NULL) {
				r = TS_ERR_ALLOC;
				goto out;
			}
			memcpy(it->payload, c[i].payload, c[i].payload_len);
			it->payload_len = c[i].payload_len;
			continue;
		}
		if (vr == TS_ERR_SIG_INVALID && c[i].certificate != NULL) {
			size_t wl = strlen(why);

			snprintf(why + wl, sizeof(why) - wl,
			    "; it is a certificate-based (Fulcio/PKI) "
			    "signature, which needs certificate verification: "
			    "not supported, no key file verifies it");
		}
		if ((it->why = strdup(why)) == NULL) {
			r = TS_ERR_ALLOC;
			goto out;
		}
	}
	*out = rep;
	rep = NULL;
	r = 0;
out:
	verify_report_free(rep);
	return r;
}

void
verify_report_print(const struct verify_report *rep, FILE *out, FILE *summary)
{
	size_t i, shown = 0;

	if (out != NULL) {
		/* The raw, signed payload objects: what cosign verify shows. */
		fputc('[', out);
		for (i = 0; i < rep->n_items; i++) {
			if (rep->items[i].r != 0)
				continue;
			if (shown++ > 0)
				fputc(',', out);
			fwrite(rep->items[i].payload, 1,
			    rep->items[i].payload_len, out);
		}
		fputs("]\n", out);
		fflush(out);
	}
	if (summary == NULL)
		return;
	for (i = 0; i < rep->n_items; i++) {
		const struct verify_item *it = &rep->items[i];

		if (it->r == 0)
			fprintf(summary, "%s: verified (identity %.200s)\n",
			    it->source, it->identity);
		else
			fprintf(summary, "%s: rejected: %s: %s\n", it->source,
			    ts_err(it->r), it->why);
	}
	if (rep->n_items == 0)
		fprintf(summary, "no signatures found");
	else
		fprintf(summary, "%zu of %zu signature%s verified",
		    rep->n_valid, rep->n_items, rep->n_items == 1 ? "" : "s");
	if (rep->n_others > 0)
		fprintf(summary, ", %zu non-signature attachment%s skipped",
		    rep->n_others, rep->n_others == 1 ? "" : "s");
	if (rep->n_skipped > 0)
		fprintf(summary, ", %zu non-sigstore (GPG) signature%s skipped",
		    rep->n_skipped, rep->n_skipped == 1 ? "" : "s");
	fputc('\n', summary);
}

int
verify_and_report(const struct verify_key *k, const struct verify_candidate *c,
    size_t n, const struct verify_policy *pol, size_t skipped, FILE *out,
    FILE *summary)
{
	struct verify_report *rep = NULL;
	int r, status;

	if ((r = verify_candidates(k, c, n, pol, &rep)) != 0) {
		error_fr(r, "verifying signatures");
		return TS_EXIT_FAILURE;
	}
	verify_report_add_skipped(rep, skipped);
	verify_report_print(rep, out, summary);
	status = verify_report_exit_status(rep);
	verify_report_free(rep);
	return status;
}
