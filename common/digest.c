/*
 * digest.c - OCI digests.  Parsing follows go-digest's Parse/Validate, which
 * containers/image and cosign use: "<alg>:<hex>" where the hex must be
 * lowercase ([a-f0-9]) and exactly the algorithm's length.  Algorithms are
 * the ones go-digest registers: sha256, sha384, sha512.
 */
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "common/digest.h"
#include "common/err.h"

struct digest_alg_info {
	enum digest_alg alg;
	const char *name;
	size_t len;
};

static const struct digest_alg_info alg_table[] = {
	{ DIGEST_ALG_SHA256, "sha256", 32 },
	{ DIGEST_ALG_SHA384, "sha384", 48 },
	{ DIGEST_ALG_SHA512, "sha512", 64 },
};

static const struct digest_alg_info *
alg_info(enum digest_alg alg)
{
	size_t i;

	for (i = 0; i < sizeof(alg_table) / sizeof(alg_table[0]); i++)
		if (alg_table[i].alg == alg)
			return &alg_table[i];
	return NULL;
}

const char *
digest_alg_name(enum digest_alg alg)
{
	const struct digest_alg_info *ai = alg_info(alg);

	return ai == NULL ? "none" : ai->name;
}

size_t
digest_alg_len(enum digest_alg alg)
{
	const struct digest_alg_info *ai = alg_info(alg);

	return ai == NULL ? 0 : ai->len;
}

static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/*
 * go-digest's algorithm grammar: [a-z0-9]+ with separators [+._-]; we only
 * need to tell "unknown algorithm" from "garbage" for the message.
 */
static int
alg_wellformed(const char *s, size_t len)
{
	size_t i;

	if (len == 0 || len > 32)
		return 0;
	for (i = 0; i < len; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
			c == '+' || c == '.' || c == '_' || c == '-'))
			return 0;
	}
	return 1;
}

int
digest_parse(const char *s, size_t len, struct digest *out, const char **why)
{
	const struct digest_alg_info *ai = NULL;
	const char *colon, *hex;
	size_t alen, hlen, i;
	const char *reason = NULL;
	int r = TS_ERR_DIGEST_INVALID;

	if (out != NULL)
		memset(out, 0, sizeof(*out));
	if (why != NULL)
		*why = NULL;
	if (s == NULL || out == NULL) {
		reason = "no digest";
		r = TS_ERR_INVALID_ARG;
		goto out;
	}
	if ((colon = memchr(s, ':', len)) == NULL) {
		reason = "missing ':' between algorithm and hex";
		goto out;
	}
	alen = (size_t)(colon - s);
	hex = colon + 1;
	hlen = len - alen - 1;
	for (i = 0; i < sizeof(alg_table) / sizeof(alg_table[0]); i++) {
		if (strlen(alg_table[i].name) == alen &&
		    memcmp(alg_table[i].name, s, alen) == 0) {
			ai = &alg_table[i];
			break;
		}
	}
	if (ai == NULL) {
		if (alg_wellformed(s, alen)) {
			reason = "unsupported digest algorithm "
				 "(sha256, sha384 and sha512 are supported)";
			r = TS_ERR_UNSUPPORTED;
		} else
			reason = "malformed digest algorithm";
		goto out;
	}
	if (hlen != 2 * ai->len) {
		reason = "hex part has the wrong length for the algorithm";
		goto out;
	}
	for (i = 0; i < hlen; i += 2) {
		int hi = hexval(hex[i]), lo = hexval(hex[i + 1]);

		if (hi < 0 || lo < 0) {
			reason = "hex part is not lowercase hexadecimal";
			goto out;
		}
		out->v[i / 2] = (uint8_t)(hi << 4 | lo);
	}
	out->alg = ai->alg;
	out->len = ai->len;
	r = 0;
out:
	if (r != 0 && out != NULL)
		memset(out, 0, sizeof(*out));
	if (why != NULL)
		*why = reason;
	return r;
}

int
digest_parse_str(const char *s, struct digest *out, const char **why)
{
	return digest_parse(s, s == NULL ? 0 : strlen(s), out, why);
}

int
digest_hex(const struct digest *d, char *buf, size_t buflen)
{
	static const char xd[] = "0123456789abcdef";
	size_t i;

	if (buf != NULL && buflen > 0)
		buf[0] = '\0';
	if (d == NULL || alg_info(d->alg) == NULL || d->len > DIGEST_MAX_BYTES)
		return TS_ERR_INVALID_ARG;
	if (buf == NULL || buflen < 2 * d->len + 1)
		return TS_ERR_TOO_LARGE;
	for (i = 0; i < d->len; i++) {
		buf[2 * i] = xd[d->v[i] >> 4];
		buf[2 * i + 1] = xd[d->v[i] & 0xf];
	}
	buf[2 * d->len] = '\0';
	return 0;
}

/* Writes "<alg><sep><hex><suffix>". */
static int
digest_write(const struct digest *d, char sep, const char *suffix, char *buf,
    size_t buflen)
{
	const struct digest_alg_info *ai;
	size_t nlen, slen;
	int r;

	if (buf != NULL && buflen > 0)
		buf[0] = '\0';
	if (d == NULL || (ai = alg_info(d->alg)) == NULL)
		return TS_ERR_INVALID_ARG;
	nlen = strlen(ai->name);
	slen = strlen(suffix);
	if (buf == NULL || buflen < nlen + 1 + 2 * d->len + slen + 1)
		return TS_ERR_TOO_LARGE;
	memcpy(buf, ai->name, nlen);
	buf[nlen] = sep;
	if ((r = digest_hex(d, buf + nlen + 1, buflen - nlen - 1)) != 0)
		return r;
	memcpy(buf + nlen + 1 + 2 * d->len, suffix, slen + 1);
	return 0;
}

int
digest_format(const struct digest *d, char *buf, size_t buflen)
{
	return digest_write(d, ':', "", buf, buflen);
}

int
digest_tag(const struct digest *d, const char *suffix, char *buf, size_t buflen)
{
	return digest_write(d, '-', suffix == NULL ? "" : suffix, buf, buflen);
}

int
digest_compute(
    enum digest_alg alg, const void *data, size_t len, struct digest *out)
{
	const struct digest_alg_info *ai;
	const EVP_MD *md = NULL;
	unsigned int mdlen = 0;

	if (out != NULL)
		memset(out, 0, sizeof(*out));
	if (out == NULL || (data == NULL && len > 0) ||
	    (ai = alg_info(alg)) == NULL)
		return TS_ERR_INVALID_ARG;
	switch (alg) {
	case DIGEST_ALG_SHA256:
		md = EVP_sha256();
		break;
	case DIGEST_ALG_SHA384:
		md = EVP_sha384();
		break;
	case DIGEST_ALG_SHA512:
		md = EVP_sha512();
		break;
	default:
		return TS_ERR_INVALID_ARG;
	}
	if (EVP_Digest(
		data == NULL ? "" : data, len, out->v, &mdlen, md, NULL) != 1 ||
	    mdlen != ai->len) {
		memset(out, 0, sizeof(*out));
		return ts_err_ossl("EVP_Digest");
	}
	out->alg = alg;
	out->len = mdlen;
	return 0;
}

int
digest_verify(const struct digest *d, const void *data, size_t len)
{
	struct digest got;
	int r;

	if (d == NULL)
		return TS_ERR_INVALID_ARG;
	if ((r = digest_compute(d->alg, data, len, &got)) != 0)
		return r;
	if (got.len != d->len || CRYPTO_memcmp(got.v, d->v, d->len) != 0)
		return TS_ERR_DIGEST_MISMATCH;
	return 0;
}

int
digest_equal(const struct digest *a, const struct digest *b)
{
	if (a == NULL || b == NULL || a->alg != b->alg || a->len != b->len ||
	    alg_info(a->alg) == NULL)
		return 0;
	return memcmp(a->v, b->v, a->len) == 0;
}
