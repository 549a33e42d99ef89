/*
 * cmd_tree.c - tokensign tree IMAGE: the image's cosign signatures, each
 * with its payload digest, identity, annotations and the SHA-256
 * fingerprint of the key it verifies with, among the --key public keys or,
 * without --key, the keys of the agent at $TOKENSIGN_AUTH_SOCK.
 * Nothing is "verified" in the policy sense here; use tokensign verify.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/sha.h>
#include <openssl/x509.h>

#include "client/agent_client.h"
#include "client/commands.h"
#include "client/http.h"
#include "client/oci.h"
#include "client/ref.h"
#include "client/sign_upload.h"
#include "client/registry_auth.h"
#include "client/sigmanifest.h"
#include "common/digest.h"
#include "common/err.h"
#include "common/log.h"
#include "common/payload.h"
#include "common/xmalloc.h"

#define TREE_MAX_KEYS 32

struct tree_key {
	EVP_PKEY *pk;
	char fpr[200]; /* "SHA256:<hex>" of the SPKI DER [(agent: label)] */
};

static void
set_fpr(
    struct tree_key *k, const unsigned char *der, size_t n, const char *label)
{
	unsigned char h[SHA256_DIGEST_LENGTH];
	size_t off;
	int i;

	SHA256(der, n, h);
	memcpy(k->fpr, "SHA256:", 7);
	for (i = 0; i < SHA256_DIGEST_LENGTH; i++)
		snprintf(k->fpr + 7 + 2 * i, 3, "%02x", h[i]);
	off = strlen(k->fpr);
	if (label != NULL)
		snprintf(k->fpr + off, sizeof(k->fpr) - off,
		    " (agent key %.100s)", label);
}

/*
 * Without --key, the agent's keys (when an agent is reachable) say which
 * key made each signature.  Returns the number of keys added.
 */
static size_t
agent_keys(struct tree_key *keys, size_t max)
{
	struct agent_conn *c = NULL;
	struct agent_keylist *l = NULL;
	const unsigned char *p;
	size_t i, n = 0;

	if (getenv("TOKENSIGN_AUTH_SOCK") == NULL ||
	    agent_connect(NULL, &c) != 0)
		return 0;
	if (agent_list_keys(c, &l) == 0) {
		for (i = 0; i < l->n && n < max; i++) {
			p = l->keys[i].spki;
			keys[n].pk =
			    d2i_PUBKEY(NULL, &p, (long)l->keys[i].spki_len);
			if (keys[n].pk == NULL)
				continue;
			set_fpr(&keys[n], l->keys[i].spki, l->keys[i].spki_len,
			    l->keys[i].label);
			n++;
		}
		agent_keylist_free(l);
	}
	agent_close(c);
	return n;
}

static int
load_key(const char *path, struct tree_key *k)
{
	FILE *f;
	unsigned char *der = NULL;
	int n;

	if ((f = fopen(path, "re")) == NULL) {
		error("cannot open %.200s", path);
		return TS_ERR_KEY_INVALID;
	}
	k->pk = PEM_read_PUBKEY(f, NULL, NULL, NULL);
	fclose(f);
	if (k->pk == NULL || (n = i2d_PUBKEY(k->pk, &der)) <= 0) {
		error("%.200s is not a PEM public key", path);
		return TS_ERR_KEY_INVALID;
	}
	set_fpr(k, der, (size_t)n, NULL);
	OPENSSL_free(der);
	return 0;
}

static const char *
which_key(const struct tree_key *keys, size_t nk, const uint8_t *payload,
    size_t plen, const char *b64)
{
	unsigned char *sig = NULL;
	size_t sl = 0, i;
	const char *found = NULL;
	EVP_MD_CTX *md;

	if (b64 == NULL || regauth_b64_decode(b64, &sig, &sl) != 0)
		return NULL;
	for (i = 0; i < nk && found == NULL; i++) {
		const EVP_MD *h =
		    EVP_PKEY_get_id(keys[i].pk) == EVP_PKEY_ED25519
		    ? NULL
		    : EVP_sha256();

		if ((md = EVP_MD_CTX_new()) == NULL)
			break;
		if (EVP_DigestVerifyInit(md, NULL, h, NULL, keys[i].pk) == 1 &&
		    EVP_DigestVerify(md, sig, sl, payload, plen) == 1)
			found = keys[i].fpr;
		EVP_MD_CTX_free(md);
	}
	free(sig);
	return found;
}

int
cmd_tree(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "key", 1, NULL, 'k' },
		{ "help", 0, NULL, 'h' },
		HTTP_LONGOPTS,
		{ NULL, 0, NULL, 0 },
	};
	struct http_opts hopts = { 0 };
	struct http_client *http = NULL;
	struct oci *o = NULL;
	struct ref *ref = NULL;
	struct oci_manifest *m = NULL, *sm = NULL;
	struct sigmanifest *sig = NULL;
	struct tree_key keys[TREE_MAX_KEYS];
	struct payload *p = NULL;
	size_t nk = 0, i, a, plen;
	uint8_t *pb = NULL;
	char why[256], ds[DIGEST_STR_MAX], tag[DIGEST_TAG_MAX];
	const char *fpr, *k, *v;
	int opt, h, r, rc = TS_EXIT_FAILURE;

	memset(keys, 0, sizeof(keys));
	optind = 1;
	while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		if ((h = http_opts_handle(&hopts, opt, optarg)) != 0) {
			if (h < 0) {
				rc = TS_EXIT_USAGE;
				goto out;
			}
			continue;
		}
		if (opt == 'k') {
			if (nk == TREE_MAX_KEYS) {
				error("at most %d --key", TREE_MAX_KEYS);
				rc = TS_EXIT_USAGE;
				goto out;
			}
			if (load_key(optarg, &keys[nk]) != 0) {
				rc = TS_EXIT_USAGE;
				goto out;
			}
			nk++;
			continue;
		}
		if (opt == 'h') {
			printf("usage: tokensign tree [--key PUB.pem]... "
			       "IMAGE\n%s",
			    HTTP_OPTS_USAGE);
			rc = TS_EXIT_OK;
			goto out;
		}
		rc = TS_EXIT_USAGE;
		goto out;
	}
	if (argc - optind != 1) {
		error("usage: tokensign tree [--key PUB.pem]... IMAGE");
		rc = TS_EXIT_USAGE;
		goto out;
	}
	if (ref_parse(argv[optind], &ref, why, sizeof(why)) != 0) {
		error("%.200s: %s", argv[optind], why);
		rc = TS_EXIT_USAGE;
		goto out;
	}
	if (nk == 0)
		nk = agent_keys(keys, TREE_MAX_KEYS);
	if (http_global_init() != 0 ||
	    (http = http_client_new(&hopts)) == NULL ||
	    (o = oci_new(http, ref, "pull")) == NULL)
		goto out;
	if ((r = oci_manifest_get(o, ref, &m)) != 0) {
		error("%s: cannot resolve the image: %s", ref_string(ref),
		    ts_err(r));
		rc = sign_exit_status(r);
		goto out;
	}
	if (digest_format(&m->digest, ds, sizeof(ds)) != 0 ||
	    digest_tag(&m->digest, ".sig", tag, sizeof(tag)) != 0)
		goto out;
	printf("%s/%s@%s (%s)\n", ref_registry(ref), ref_repository(ref), ds,
	    m->media_type);
	r = oci_sig_get(o, ref_repository(ref), &m->digest, &sm);
	if (r == TS_ERR_SIG_NONE) {
		printf("└── no signatures (%s:%s does not exist)\n",
		    ref_identity(ref), tag);
		rc = TS_EXIT_NO_SIGNATURES;
		goto out;
	}
	if (r != 0) {
		rc = sign_exit_status(r);
		goto out;
	}
	if ((r = sigmanifest_parse(sm->data, sm->len, sm->media_type, &sig, why,
		 sizeof(why))) != 0) {
		error("%s:%s: %s", ref_identity(ref), tag, why);
		rc = TS_EXIT_REGISTRY;
		goto out;
	}
	printf("└── signatures in %s:%s: %zu (other attachments: %zu)\n",
	    ref_identity(ref), tag, sigmanifest_signature_count(sig),
	    sigmanifest_other_count(sig));
	for (i = 0; i < sigmanifest_layer_count(sig); i++) {
		const struct siglayer *l = sigmanifest_layer(sig, i);

		if (digest_format(siglayer_digest(l), ds, sizeof(ds)) != 0)
			ds[0] = '\0';
		printf("    └── %s (%s, %lld bytes)\n", ds,
		    siglayer_is_signature(l) ? "signature"
					     : siglayer_media_type(l),
		    (long long)siglayer_size(l));
		if (!siglayer_is_signature(l))
			continue;
		if ((r = oci_blob_get(o, ref_repository(ref),
			 siglayer_digest(l), PAYLOAD_MAX_LEN, &pb, &plen)) !=
		    0) {
			printf("        payload: unreadable (%s)\n", ts_err(r));
			continue;
		}
		if (payload_parse(pb, plen, &p, why, sizeof(why)) != 0)
			printf("        payload: invalid (%s)\n", why);
		else {
			printf("        identity: %s\n",
			    payload_docker_reference(p));
			printf("        digest: %s\n",
			    payload_manifest_digest_str(p));
			for (a = 0; a < payload_optional_count(p); a++)
				if (payload_optional_at(p, a, &k, &v) == 0)
					printf("        annotation: %s=%s\n", k,
					    v ? v : "(not a string)");
		}
		fpr = which_key(keys, nk, pb, plen,
		    siglayer_annotation(l, SIG_ANN_SIGNATURE));
		if (nk > 0)
			printf("        key: %s\n",
			    fpr ? fpr : "none of the known keys");
		payload_free(p);
		p = NULL;
		free(pb);
		pb = NULL;
	}
	rc = TS_EXIT_OK;
out:
	payload_free(p);
	free(pb);
	for (i = 0; i < nk; i++)
		EVP_PKEY_free(keys[i].pk);
	sigmanifest_free(sig);
	oci_manifest_free(sm);
	oci_manifest_free(m);
	oci_free(o);
	http_client_free(http);
	ref_free(ref);
	http_opts_cleanup(&hopts);
	return rc;
}
