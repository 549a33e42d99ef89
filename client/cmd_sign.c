/*
 * cmd_sign.c - tokensign sign: cosign-compatible ".sig" signatures made by
 * a token key (docs/registry.md; design in docs/internals/registry.md).
 *
 * Phases, each run by up to --jobs threads, each thread with its own http
 * client (one keep-alive connection per registry):
 *   1. pre-flight: resolve every image to a digest (and, with --recursive,
 *      list an index's children), then prove push access by starting a
 *      blob upload whose Location is kept for the payload;
 *   2. sign every payload at once (one batch to the signer) -- only now,
 *      because a signature may cost a PIN entry or a touch;
 *   3. upload: read the .sig manifest, append our layer (no duplicate),
 *      upload payload and config blobs, PUT the manifest last;
 *   4. settle: the tag is read-modify-write without compare-and-swap, so
 *      after a short delay each tag is checked again; when a concurrent
 *      writer dropped our layer (or one we had seen), merge and re-PUT, with
 *      jitter, until a check finds the tag unchanged.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>

#include "client/commands.h"
#include "client/http.h"
#include "client/oci.h"
#include "client/ref.h"
#include "client/registry_auth.h"
#include "client/sigmanifest.h"
#include "client/sign_backend.h"
#include "client/sign_upload.h"
#include "common/digest.h"
#include "common/err.h"
#include "common/log.h"
#include "common/payload.h"
#include "common/secmem.h"
#include "common/xmalloc.h"

#define SIGN_MAX_JOBS	   64
#define SIGN_MAX_IMAGES	   100000
#define SIGN_SETTLE_MS	   150 /* default wait before a tag is re-checked */
#define SIGN_SETTLE_ROUNDS 40
#define SIGN_SETTLE_JITTER 150

struct target {
	char *input; /* as the user wrote it (or child of input) */
	struct ref *ref; /* pinned to the digest */
	struct digest digest;
	int from_tag;
	uint8_t *payload;
	size_t payload_len;
	uint8_t *sig;
	size_t sig_len;
	char *location; /* upload session from the pre-flight */
	struct siglayer *layer;
	struct siglayer **seen; /* layers read before our PUT */
	size_t nseen;
	struct digest put_digest; /* last manifest we PUT (or saw with us) */
	double put_time;
	double read_time; /* when the .sig was read for this write */
	double window; /* longest read..PUT seen, seconds */
	int already; /* our signature was already there */
	struct digest *children; /* --recursive: an index's children */
	size_t nchildren;
	int rc;
};

struct session {
	char *registry;
	struct oci *oci;
};

struct job {
	struct http_client *http;
	struct session *sess;
	size_t nsess;
};

struct sign_ctx {
	struct target *t;
	size_t nt;
	struct job *jobs;
	int njobs;
	atomic_size_t next;
	atomic_size_t done;
	const char *phase;
	int (*fn)(struct sign_ctx *, struct job *, struct target *);
	int upload;
	int recursive;
	long settle_ms;
	int progress;
	pthread_mutex_t lock;
	const struct payload_kv *kv;
	size_t nkv;
	const struct sign_backend *backend;
};

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void
sleep_ms(long ms)
{
	struct timespec ts;

	if (ms <= 0)
		return;
	ts.tv_sec = ms / 1000;
	ts.tv_nsec = (ms % 1000) * 1000000L;
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

static long
jitter_ms(long max)
{
	unsigned char b[2] = { 0, 0 };

	if (max <= 0)
		return 0;
	(void)RAND_bytes(b, sizeof(b));
	return ((b[0] << 8) | b[1]) % max;
}

static struct oci *
job_oci(struct job *j, const struct ref *ref)
{
	size_t i;
	struct session *ns;

	for (i = 0; i < j->nsess; i++)
		if (strcmp(j->sess[i].registry, ref_registry(ref)) == 0)
			return j->sess[i].oci;
	ns = xreallocarray(j->sess, j->nsess + 1, sizeof(*ns));
	j->sess = ns;
	ns[j->nsess].registry = xstrdup(ref_registry(ref));
	if ((ns[j->nsess].oci = oci_new(j->http, ref, "pull,push")) == NULL)
		fatal_f("out of memory");
	return ns[j->nsess++].oci;
}

static void
progress(struct sign_ctx *c)
{
	size_t d;

	if (!c->progress)
		return;
	d = atomic_fetch_add(&c->done, 1) + 1;
	pthread_mutex_lock(&c->lock);
	fprintf(stderr, "\r%s: %zu/%zu", c->phase, d, c->nt);
	if (d == c->nt)
		fprintf(stderr, "\n");
	fflush(stderr);
	pthread_mutex_unlock(&c->lock);
}

struct worker_arg {
	struct sign_ctx *c;
	struct job *j;
};

static void *
worker(void *arg)
{
	struct worker_arg *w = arg;
	struct sign_ctx *c = w->c;
	size_t i;

	for (;;) {
		i = atomic_fetch_add(&c->next, 1);
		if (i >= c->nt)
			break;
		if (c->t[i].rc == 0)
			c->t[i].rc = c->fn(c, w->j, &c->t[i]);
		progress(c);
	}
	return NULL;
}

/*
 * Runs fn over every target with up to njobs threads; thread i uses job i
 * (its own http client and sessions) for the whole phase.
 */
static void
run_phase(struct sign_ctx *c, const char *phase,
    int (*fn)(struct sign_ctx *, struct job *, struct target *))
{
	pthread_t th[SIGN_MAX_JOBS];
	struct worker_arg wa[SIGN_MAX_JOBS];
	int i, n;

	c->fn = fn;
	c->phase = phase;
	atomic_store(&c->next, 0);
	atomic_store(&c->done, 0);
	n = c->njobs < (int)c->nt ? c->njobs : (int)c->nt;
	if (n < 1)
		n = 1;
	for (i = 0; i < n; i++) {
		wa[i].c = c;
		wa[i].j = &c->jobs[i];
	}
	if (n == 1) {
		worker(&wa[0]);
		return;
	}
	for (i = 0; i < n; i++)
		if (pthread_create(&th[i], NULL, worker, &wa[i]) != 0)
			fatal_f("pthread_create failed");
	for (i = 0; i < n; i++)
		pthread_join(th[i], NULL);
}

/* ---- phase 1: pre-flight ------------------------------------------------ */

static int
preflight(struct sign_ctx *c, struct job *j, struct target *t)
{
	struct oci *o = job_oci(j, t->ref);
	int r;

	if (!c->upload)
		return 0;
	/* push access: auth for pull,push and a started upload (kept) */
	if ((r = oci_upload_start(o, ref_repository(t->ref), &t->location)) !=
	    0) {
		error("%s: no push access to %s/%s: %s", t->input,
		    ref_registry(t->ref), ref_repository(t->ref), ts_err(r));
		return r;
	}
	return 0;
}

/* Phase 1a, per input: resolve to a digest; list an index's children. */
static int
resolve_one(struct sign_ctx *c, struct job *j, struct target *t)
{
	struct oci_manifest *m = NULL;
	struct ref *pin;
	char ds[DIGEST_STR_MAX];
	int r;

	if ((r = oci_manifest_get(job_oci(j, t->ref), t->ref, &m)) != 0) {
		error("%s: cannot resolve the image: %s", ref_string(t->ref),
		    ts_err(r));
		return r;
	}
	if (ref_digest(t->ref) == NULL) {
		if (digest_format(&m->digest, ds, sizeof(ds)) != 0)
			ds[0] = '\0';
		/* cosign warns the same way */
		logit("WARNING: %s is a tag, not a digest: signing %s, the "
		      "digest it names now. Sign by digest (IMAGE@%s) to be "
		      "sure of what you sign.",
		    ref_string(t->ref), ds, ds);
		t->from_tag = 1;
	}
	t->digest = m->digest;
	if (c->recursive && oci_manifest_is_index(m) &&
	    (r = oci_index_children(m, &t->children, &t->nchildren)) != 0) {
		error("%s: %s", ref_string(t->ref), ts_err(r));
		oci_manifest_free(m);
		return r;
	}
	oci_manifest_free(m);
	if ((pin = ref_with_digest(t->ref, &t->digest)) == NULL)
		fatal_f("out of memory");
	ref_free(t->ref);
	t->ref = pin;
	return 0;
}

/*
 * Parses every input first (usage errors before any network), resolves
 * them in parallel, then adds each index's children after it.
 */
static int
resolve_inputs(struct sign_ctx *c, char **inputs, size_t n)
{
	struct target *t, *all = NULL;
	size_t i, k, nt = 0;
	char why[256];
	int r = 0;

	t = xcalloc(n, sizeof(*t));
	c->t = t;
	c->nt = n;
	for (i = 0; i < n; i++) {
		if ((r = ref_parse(inputs[i], &t[i].ref, why, sizeof(why))) !=
		    0) {
			error("%.200s: %s", inputs[i], why);
			return r;
		}
		t[i].input = xstrdup(ref_string(t[i].ref));
	}
	run_phase(c, "resolving images", resolve_one);
	for (i = 0; i < n; i++)
		if (t[i].rc != 0)
			return t[i].rc;
	for (i = 0; i < n; i++) {
		if (nt + 1 + t[i].nchildren > SIGN_MAX_IMAGES) {
			error("more than %d images", SIGN_MAX_IMAGES);
			return TS_ERR_TOO_LARGE;
		}
		all = xreallocarray(all, nt + 1 + t[i].nchildren, sizeof(*all));
		all[nt++] = t[i];
		for (k = 0; k < t[i].nchildren; k++) {
			memset(&all[nt], 0, sizeof(*all));
			if ((all[nt].ref = ref_with_digest(
				 t[i].ref, &t[i].children[k])) == NULL)
				fatal_f("out of memory");
			all[nt].input = xstrdup(ref_string(all[nt].ref));
			all[nt].digest = t[i].children[k];
			nt++;
		}
		free(t[i].children);
		all[nt - 1 - t[i].nchildren].children = NULL;
		all[nt - 1 - t[i].nchildren].nchildren = 0;
	}
	free(t);
	c->t = all;
	c->nt = nt;
	return 0;
}

/*
 * cosign's rule (pkg/cosign/remote/remote.go): a layer with our payload
 * digest and media type, the same annotations apart from the signature,
 * and a signature that verifies with our key is the same signature.
 */
static int
already_signed(const struct sign_ctx *c, const struct sigmanifest *sm,
    const struct target *t)
{
	const struct siglayer *l;
	const char *k, *v, *k2, *v2;
	size_t i, a, n;

	if (c->backend == NULL)
		return 0; /* attach: only an identical layer is a duplicate */
	for (i = 0; i < sigmanifest_layer_count(sm); i++) {
		l = sigmanifest_layer(sm, i);
		if (!siglayer_is_signature(l) ||
		    !digest_equal(
			siglayer_digest(l), siglayer_digest(t->layer)) ||
		    (n = siglayer_annotation_count(l)) !=
			siglayer_annotation_count(t->layer))
			continue;
		for (a = 0; a < n; a++) {
			if (siglayer_annotation_at(l, a, &k, &v) != 0 ||
			    siglayer_annotation_at(t->layer, a, &k2, &v2) !=
				0 ||
			    strcmp(k, k2) != 0 ||
			    (strcmp(k, SIG_ANN_SIGNATURE) != 0 &&
				strcmp(v, v2) != 0))
				break;
		}
		if (a == n &&
		    sign_backend_verifies(c->backend, t->payload,
			t->payload_len,
			siglayer_annotation(l, SIG_ANN_SIGNATURE)))
			return 1;
	}
	return 0;
}

/* ---- phase 3: upload ------------------------------------------------ */

/* Reads the .sig manifest (an empty one when there is none). */
static int
read_sig(struct oci *o, struct target *t, struct sigmanifest **out,
    struct digest *dg)
{
	struct oci_manifest *m = NULL;
	char why[256];
	int r;

	*out = NULL;
	memset(dg, 0, sizeof(*dg));
	r = oci_sig_get(o, ref_repository(t->ref), &t->digest, &m);
	if (r == TS_ERR_SIG_NONE) {
		if ((*out = sigmanifest_new()) == NULL)
			return TS_ERR_ALLOC;
		return 0;
	}
	if (r != 0)
		return r;
	*dg = m->digest;
	r = sigmanifest_parse(
	    m->data, m->len, m->media_type, out, why, sizeof(why));
	if (r != 0)
		error("%s: the existing signature manifest is not one we can "
		      "append to, refusing to overwrite it: %s",
		    t->input, why);
	oci_manifest_free(m);
	return r;
}

static int
put_sig(struct oci *o, struct target *t, const struct sigmanifest *sm)
{
	uint8_t *man = NULL, *cfg = NULL;
	size_t ml = 0, cl = 0;
	struct digest cd;
	char tag[DIGEST_TAG_MAX];
	int r;

	if ((r = digest_tag(&t->digest, ".sig", tag, sizeof(tag))) != 0)
		return r;
	if ((r = sigmanifest_render(sm, &man, &ml, &cfg, &cl)) != 0)
		goto out;
	if ((r = digest_compute(DIGEST_ALG_SHA256, cfg, cl, &cd)) != 0)
		goto out;
	/* blobs first, the manifest last: a failure leaves no manifest */
	if ((r = oci_blob_put(
		 o, ref_repository(t->ref), cfg, cl, &cd, 0, NULL)) != 0)
		goto out;
	if ((r = oci_manifest_put(o, ref_repository(t->ref), tag,
		 OCI_MT_MANIFEST, man, ml, &t->put_digest)) != 0)
		goto out;
	t->put_time = now_s();
	if (t->put_time - t->read_time > t->window)
		t->window = t->put_time - t->read_time;
out:
	free(man);
	free(cfg);
	return r;
}

static int
upload(struct sign_ctx *c, struct job *j, struct target *t)
{
	struct oci *o = job_oci(j, t->ref);
	struct sigmanifest *sm = NULL;
	const struct siglayer *l;
	struct digest dg;
	size_t i;
	int r, added = 0;

	(void)c;
	/*
	 * The payload blob first: it does not depend on the .sig, and the
	 * read-modify-write window below (GET .sig .. PUT manifest) must be
	 * as short as possible.  Re-uploading an existing blob is harmless.
	 */
	if ((r = oci_blob_put(o, ref_repository(t->ref), t->payload,
		 t->payload_len, siglayer_digest(t->layer), 0, &t->location)) !=
	    0)
		goto out;
	t->read_time = now_s();
	if ((r = read_sig(o, t, &sm, &dg)) != 0)
		goto out;
	/* remember what we saw: a lost update must not drop them either */
	t->nseen = sigmanifest_layer_count(sm);
	t->seen = xcalloc(t->nseen ? t->nseen : 1, sizeof(*t->seen));
	for (i = 0; i < t->nseen; i++) {
		l = sigmanifest_layer(sm, i);
		if ((t->seen[i] = siglayer_dup(l)) == NULL)
			fatal_f("out of memory");
	}
	if (already_signed(c, sm, t)) {
		t->already = 1;
		verbose(
		    "%s: already signed with this key and payload", t->input);
		goto out;
	}
	if ((r = sigmanifest_append(sm, t->layer, &added)) != 0)
		goto out;
	if (!added) {
		t->already = 1;
		verbose("%s: already signed with this signature", t->input);
		goto out;
	}
	r = put_sig(o, t, sm);
out:
	free(t->location);
	t->location = NULL;
	sigmanifest_free(sm);
	if (r != 0)
		error("%s: signature not stored: %s", t->input, ts_err(r));
	return r;
}

/* ---- phase 4: settle --------------------------------------------------- */

static int
settle(struct sign_ctx *c, struct job *j, struct target *t)
{
	struct oci *o = job_oci(j, t->ref);
	struct sigmanifest *fresh = NULL, *merged = NULL;
	const struct siglayer **ours = NULL;
	char tag[DIGEST_TAG_MAX];
	struct digest cur, fdg;
	size_t missing, i;
	long wait;
	int r = 0, round, stable = 0, need = 1;

	if (t->already)
		return 0;
	if ((r = digest_tag(&t->digest, ".sig", tag, sizeof(tag))) != 0)
		return r;
	ours = xcalloc(t->nseen + 1, sizeof(*ours));
	for (i = 0; i < t->nseen; i++)
		ours[i] = t->seen[i];
	ours[t->nseen] = t->layer;
	for (round = 0; round < SIGN_SETTLE_ROUNDS; round++) {
		/*
		 * A writer that read before our PUT writes within about one
		 * read..PUT window (others' windows are like ours under the
		 * same load): wait for that, and longer once contention shows.
		 */
		wait = (long)((t->put_time - now_s()) * 1000.0) + c->settle_ms +
		    (long)(2000.0 * t->window) * need +
		    (round > 0 ? jitter_ms(SIGN_SETTLE_JITTER) : 0);
		sleep_ms(wait);
		r = oci_manifest_head(o, ref_repository(t->ref), tag, &cur);
		if (r == 0 && digest_equal(&cur, &t->put_digest)) {
			if (++stable >= need)
				goto out; /* unchanged since our write */
			t->put_time = now_s();
			continue;
		}
		if (r != 0 && r != TS_ERR_REG_NOT_FOUND)
			goto out;
		stable = 0;
		need = 2;
		/* someone wrote after us (or deleted it): look closer */
		t->read_time = now_s();
		if ((r = read_sig(o, t, &fresh, &fdg)) != 0)
			goto out;
		if ((r = sigmanifest_merge(fresh,
			 (const struct siglayer *const *)ours, t->nseen + 1,
			 &merged, &missing)) != 0)
			goto out;
		if (missing == 0) {
			/* a later writer kept ours: watch its version now */
			t->put_digest = fdg;
			t->put_time = now_s();
		} else {
			verbose("%s: %zu signature(s) lost to a concurrent "
				"writer; merging (round %d)",
			    t->input, missing, round + 1);
			if ((r = put_sig(o, t, merged)) != 0)
				goto out;
		}
		sigmanifest_free(fresh);
		sigmanifest_free(merged);
		fresh = merged = NULL;
	}
	error("%s: the signature tag kept changing; giving up after %d "
	      "rounds",
	    t->input, SIGN_SETTLE_ROUNDS);
	r = TS_ERR_CONCURRENT;
out:
	free(ours);
	sigmanifest_free(fresh);
	sigmanifest_free(merged);
	if (r != 0 && r != TS_ERR_CONCURRENT)
		error("%s: checking the stored signature failed: %s", t->input,
		    ts_err(r));
	return r;
}

/* ---- shared by sign and attach ------------------------------------- */

/* TOKENSIGN_SETTLE_MS: tests shorten the settle wait (0 skips it). */
static int
settle_from_env(long *out)
{
	const char *s;
	char *end;

	*out = SIGN_SETTLE_MS;
	if ((s = getenv("TOKENSIGN_SETTLE_MS")) == NULL || s[0] == '\0')
		return 0;
	errno = 0;
	*out = strtol(s, &end, 10);
	if (errno != 0 || *end != '\0' || *out < 0 || *out > 60000) {
		error("TOKENSIGN_SETTLE_MS wants 0..60000");
		return TS_ERR_INVALID_ARG;
	}
	return 0;
}

/* Makes c's njobs http clients (one per job, sharing caches). */
static int
ctx_open(struct sign_ctx *c, const struct http_opts *hopts, int njobs)
{
	int i;

	c->njobs = njobs;
	if (http_global_init() != 0)
		return TS_ERR_INTERNAL;
	c->jobs = xcalloc((size_t)c->njobs, sizeof(*c->jobs));
	if ((c->jobs[0].http = http_client_new(hopts)) == NULL)
		return TS_ERR_INVALID_ARG;
	for (i = 1; i < c->njobs; i++)
		if ((c->jobs[i].http =
			    http_client_new_sibling(c->jobs[0].http)) == NULL)
			fatal_f("out of memory");
	return 0;
}

/* Frees every target and job of c (not c itself). */
static void
ctx_cleanup(struct sign_ctx *c)
{
	size_t i, q;
	int j;

	for (i = 0; i < c->nt; i++) {
		free(c->t[i].input);
		ref_free(c->t[i].ref);
		free(c->t[i].payload);
		if (c->t[i].sig != NULL)
			freezero(c->t[i].sig, c->t[i].sig_len);
		free(c->t[i].location);
		siglayer_free(c->t[i].layer);
		for (q = 0; q < c->t[i].nseen; q++)
			siglayer_free(c->t[i].seen[q]);
		free(c->t[i].seen);
		free(c->t[i].children);
	}
	free(c->t);
	c->t = NULL;
	c->nt = 0;
	for (j = 0; c->jobs != NULL && j < c->njobs; j++) {
		for (q = 0; q < c->jobs[j].nsess; q++) {
			oci_free(c->jobs[j].sess[q].oci);
			free(c->jobs[j].sess[q].registry);
		}
		free(c->jobs[j].sess);
		http_client_free(c->jobs[j].http);
	}
	free(c->jobs);
	c->jobs = NULL;
}

/* Runs the pre-flight; returns the first target's error (logged). */
static int
ctx_preflight(struct sign_ctx *c, const char *what)
{
	size_t i;

	run_phase(c, "checking push access", preflight);
	for (i = 0; i < c->nt; i++)
		if (c->t[i].rc != 0) {
			error("pre-flight failed: nothing was %s", what);
			return c->t[i].rc;
		}
	return 0;
}

/*
 * Phases 3 and 4 for every target with a layer: upload (manifest last),
 * then settle.  Returns 0 or the first target's error; *ok and *already
 * count stored and already-present signatures.
 */
static int
ctx_store(struct sign_ctx *c, size_t *ok, size_t *already)
{
	uint64_t nreq = 0;
	int first_err = 0, jn;
	size_t i;

	*ok = *already = 0;
	run_phase(c, "uploading signatures", upload);
	if (c->settle_ms > 0)
		run_phase(c, "checking stored signatures", settle);
	for (i = 0; i < c->nt; i++) {
		if (c->t[i].rc != 0) {
			if (first_err == 0)
				first_err = c->t[i].rc;
			continue;
		}
		(*ok)++;
		if (c->t[i].already)
			(*already)++;
		verbose("stored the signature of %s", c->t[i].input);
	}
	if (c->nt > 1 || first_err != 0)
		logit("%zu of %zu signature(s) stored%s", *ok, c->nt,
		    *already ? " (some were already present)" : "");
	for (jn = 0; jn < c->njobs; jn++)
		if (c->jobs[jn].http != NULL)
			nreq += http_client_requests(c->jobs[jn].http);
	verbose("%llu HTTP requests for %zu signature(s)",
	    (unsigned long long)nreq, c->nt);
	if (getenv("TOKENSIGN_STATS") != NULL)
		fprintf(stderr,
		    "tokensign-stats: requests=%llu signatures=%zu\n",
		    (unsigned long long)nreq, c->nt);
	return first_err;
}

int
sign_attach(const struct http_opts *hopts, const char *image,
    const uint8_t *payload, size_t payload_len, const uint8_t *sig,
    size_t sig_len, const struct digest *expect, int *already)
{
	struct sign_ctx c;
	struct target *t;
	char *in[1], *b64 = NULL, want[DIGEST_STR_MAX], got[DIGEST_STR_MAX];
	size_t ok = 0, nalready = 0;
	int r = TS_ERR_INTERNAL;

	*already = 0;
	memset(&c, 0, sizeof(c));
	pthread_mutex_init(&c.lock, NULL);
	c.upload = 1;
	if ((r = settle_from_env(&c.settle_ms)) != 0)
		goto out;
	if ((r = ctx_open(&c, hopts, 1)) != 0)
		goto out;
	in[0] = (char *)(uintptr_t)image;
	if ((r = resolve_inputs(&c, in, 1)) != 0)
		goto out;
	t = &c.t[0];
	/* the payload must be about this image, checked before any write */
	if (!digest_equal(&t->digest, expect)) {
		if (digest_format(expect, want, sizeof(want)) != 0)
			want[0] = '\0';
		if (digest_format(&t->digest, got, sizeof(got)) != 0)
			got[0] = '\0';
		error("%s is %s, but the payload names %s: refusing to attach "
		      "a signature for another image",
		    t->input, got, want);
		r = TS_ERR_DIGEST_MISMATCH;
		goto out;
	}
	if ((r = ctx_preflight(&c, "attached")) != 0)
		goto out;
	t->payload = xmalloc(payload_len ? payload_len : 1);
	memcpy(t->payload, payload, payload_len);
	t->payload_len = payload_len;
	if ((b64 = regauth_b64_encode(sig, sig_len)) == NULL)
		fatal_f("out of memory");
	if ((r = siglayer_new_signature(
		 t->payload, t->payload_len, b64, &t->layer)) != 0)
		goto out;
	if ((r = ctx_store(&c, &ok, &nalready)) != 0)
		goto out;
	*already = nalready != 0;
	r = 0;
out:
	free(b64);
	ctx_cleanup(&c);
	pthread_mutex_destroy(&c.lock);
	return r;
}

/* ---- the command ----------------------------------------------------- */

int
sign_exit_status(int r)
{
	if (r == 0)
		return TS_EXIT_OK;
	if (r == TS_ERR_REF_INVALID || r == TS_ERR_INVALID_ARG ||
	    r == TS_ERR_KEY_INVALID)
		return TS_EXIT_USAGE;
	if (r <= -30 && r >= -59)
		return TS_EXIT_AGENT;
	if (r <= -60 && r >= -99)
		return TS_EXIT_TOKEN;
	if ((r <= -160 && r >= -199) || r == TS_ERR_TLS || r == TS_ERR_IO ||
	    r == TS_ERR_CONN_REFUSED || r == TS_ERR_PERMISSION ||
	    r == TS_ERR_TOO_LARGE || r == TS_ERR_TIMEOUT)
		return TS_EXIT_REGISTRY;
	return TS_EXIT_FAILURE;
}

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: tokensign sign [--key KEY] [-a key=value]... "
	    "[--recursive]\n"
	    "                      [--jobs N] [--upload=false "
	    "--output-signature F\n"
	    "                      --output-payload F] IMAGE...\n"
	    "  --key KEY                  agent key (id, label or PKCS#11 "
	    "URI), or file:PEM\n"
	    "  -a, --annotations k=v      add k=v to the payload's optional "
	    "map\n"
	    "  --recursive                also sign every child of an index\n"
	    "  --jobs N                   parallel uploads (default 4)\n"
	    "  --upload=false             do not upload; write the files "
	    "below\n"
	    "  --output-signature FILE    base64 signature (one image)\n"
	    "  --output-payload FILE      payload bytes (one "
	    "image)\n" HTTP_OPTS_USAGE
	    "  -v                         more messages\n");
}

static int
write_file(const char *path, const void *data, size_t len)
{
	int fd;
	size_t off = 0;
	ssize_t n;

	if ((fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)) ==
	    -1) {
		error("cannot create %.200s: %s", path, strerror(errno));
		return TS_ERR_SYSTEM;
	}
	while (off < len) {
		n = write(fd, (const char *)data + off, len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			error("cannot write %.200s: %s", path, strerror(errno));
			close(fd);
			return TS_ERR_SYSTEM;
		}
		off += (size_t)n;
	}
	if (close(fd) != 0) {
		error("cannot write %.200s: %s", path, strerror(errno));
		return TS_ERR_SYSTEM;
	}
	return 0;
}

int
cmd_sign_image(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "key", 1, NULL, 'k' },
		{ "annotations", 1, NULL, 'a' },
		{ "recursive", 0, NULL, 'r' },
		{ "jobs", 1, NULL, 'j' },
		{ "upload", 2, NULL, 'u' },
		{ "output-signature", 1, NULL, 'S' },
		{ "output-payload", 1, NULL, 'P' },
		{ "verbose", 0, NULL, 'v' },
		{ "help", 0, NULL, 'h' },
		HTTP_LONGOPTS,
		{ NULL, 0, NULL, 0 },
	};
	struct http_opts hopts = { 0 };
	struct sign_ctx c;
	struct payload_kv *kv = NULL;
	struct sign_backend *be = NULL;
	const uint8_t **pl = NULL;
	size_t *pll = NULL, nkv = 0, i, ok = 0, already = 0;
	const char *key = NULL, *out_sig = NULL, *out_payload = NULL;
	char *k, *v, *b64 = NULL, *end;
	int opt, r, rc = TS_EXIT_FAILURE, first_err = 0, h, verbosity = 0;
	long jobs = 4;

	memset(&c, 0, sizeof(c));
	c.upload = 1;
	c.settle_ms = SIGN_SETTLE_MS;
	pthread_mutex_init(&c.lock, NULL);
	optind = 1;
	while ((opt = getopt_long(argc, argv, "a:vh", longopts, NULL)) != -1) {
		if ((h = http_opts_handle(&hopts, opt, optarg)) != 0) {
			if (h < 0) {
				rc = TS_EXIT_USAGE;
				goto out;
			}
			continue;
		}
		switch (opt) {
		case 'k':
			key = optarg;
			break;
		case 'a':
			if (payload_kv_parse(optarg, &k, &v) != 0) {
				error("-a '%.100s': want key=value", optarg);
				rc = TS_EXIT_USAGE;
				goto out;
			}
			kv = xreallocarray(kv, nkv + 1, sizeof(*kv));
			kv[nkv].key = k;
			kv[nkv].value = v;
			nkv++;
			break;
		case 'r':
			c.recursive = 1;
			break;
		case 'j':
			errno = 0;
			jobs = strtol(optarg, &end, 10);
			if (errno != 0 || *end != '\0' || jobs < 1 ||
			    jobs > SIGN_MAX_JOBS) {
				error("--jobs wants 1..%d", SIGN_MAX_JOBS);
				rc = TS_EXIT_USAGE;
				goto out;
			}
			break;
		case 'u':
			if (optarg == NULL || strcmp(optarg, "true") == 0)
				c.upload = 1;
			else if (strcmp(optarg, "false") == 0)
				c.upload = 0;
			else {
				error("--upload wants true or false");
				rc = TS_EXIT_USAGE;
				goto out;
			}
			break;
		case 'S':
			out_sig = optarg;
			break;
		case 'P':
			out_payload = optarg;
			break;
		case 'v':
			verbosity++;
			break;
		case 'h':
			usage(stdout);
			rc = TS_EXIT_OK;
			goto out;
		default:
			usage(stderr);
			rc = TS_EXIT_USAGE;
			goto out;
		}
	}
	if (verbosity > 0)
		ts_log_set_level(verbosity > 1 ? TS_LOG_DEBUG : TS_LOG_VERBOSE);
	if (optind >= argc) {
		error("sign: no IMAGE given");
		usage(stderr);
		rc = TS_EXIT_USAGE;
		goto out;
	}
	if (!c.upload && (out_sig == NULL && out_payload == NULL)) {
		error("--upload=false needs --output-signature and/or "
		      "--output-payload");
		rc = TS_EXIT_USAGE;
		goto out;
	}
	if ((out_sig != NULL || out_payload != NULL) && c.upload == 1 &&
	    argc - optind > 1) {
		error("--output-signature/--output-payload take one IMAGE");
		rc = TS_EXIT_USAGE;
		goto out;
	}
	if ((r = settle_from_env(&c.settle_ms)) != 0) {
		rc = TS_EXIT_USAGE;
		goto out;
	}
	c.kv = kv;
	c.nkv = nkv;
	c.progress = isatty(2) && argc - optind > 1;
	if ((r = ctx_open(&c, &hopts, (int)jobs)) != 0) {
		rc = sign_exit_status(r);
		goto out;
	}

	/* 1. resolve and pre-flight: nothing is signed before this passes */
	if ((r = resolve_inputs(&c, argv + optind, (size_t)(argc - optind))) !=
	    0) {
		rc = sign_exit_status(r);
		goto out;
	}
	if (!c.upload && c.nt != 1) {
		error("--upload=false writes one signature; %zu images given",
		    c.nt);
		rc = TS_EXIT_USAGE;
		goto out;
	}
	/* the signer is opened (agent connection, key lookup) before uploads */
	if ((r = sign_backend_open(key, &be)) != 0) {
		rc = sign_exit_status(r);
		goto out;
	}
	c.backend = be;
	if ((r = ctx_preflight(&c, "signed")) != 0) {
		rc = sign_exit_status(r);
		goto out;
	}

	/* 2. payloads and one signing batch */
	pl = xcalloc(c.nt, sizeof(*pl));
	pll = xcalloc(c.nt, sizeof(*pll));
	for (i = 0; i < c.nt; i++) {
		if ((r = payload_build(ref_identity(c.t[i].ref), &c.t[i].digest,
			 kv, nkv, &c.t[i].payload, &c.t[i].payload_len)) != 0) {
			error("%s: cannot build the payload: %s", c.t[i].input,
			    ts_err(r));
			rc = sign_exit_status(r);
			goto out;
		}
		pl[i] = c.t[i].payload;
		pll[i] = c.t[i].payload_len;
	}
	{
		uint8_t **sigs = xcalloc(c.nt, sizeof(*sigs));
		size_t *sl = xcalloc(c.nt, sizeof(*sl));

		r = sign_backend_sign(be, pl, pll, c.nt, sigs, sl);
		for (i = 0; i < c.nt; i++) {
			c.t[i].sig = sigs[i];
			c.t[i].sig_len = sl[i];
		}
		free(sigs);
		free(sl);
		if (r != 0) {
			error("signing failed: %s", ts_err(r));
			rc = sign_exit_status(r);
			goto out;
		}
	}
	for (i = 0; i < c.nt; i++) {
		if ((b64 = regauth_b64_encode(c.t[i].sig, c.t[i].sig_len)) ==
		    NULL)
			fatal_f("out of memory");
		if ((r = siglayer_new_signature(c.t[i].payload,
			 c.t[i].payload_len, b64, &c.t[i].layer)) != 0) {
			rc = sign_exit_status(r);
			goto out;
		}
		if (i == 0 && out_sig != NULL &&
		    (r = write_file(out_sig, b64, strlen(b64))) != 0) {
			rc = TS_EXIT_FAILURE;
			goto out;
		}
		if (i == 0 && out_payload != NULL &&
		    (r = write_file(out_payload, c.t[i].payload,
			 c.t[i].payload_len)) != 0) {
			rc = TS_EXIT_FAILURE;
			goto out;
		}
		free(b64);
		b64 = NULL;
	}
	if (!c.upload) {
		rc = TS_EXIT_OK;
		goto out;
	}

	/* 3. upload, manifest last; 4. settle */
	first_err = ctx_store(&c, &ok, &already);
	rc = first_err == 0 ? TS_EXIT_OK : sign_exit_status(first_err);
out:
	free(b64);
	ctx_cleanup(&c);
	free(pl);
	free(pll);
	for (i = 0; i < nkv; i++) {
		free((void *)(uintptr_t)kv[i].key);
		free((void *)(uintptr_t)kv[i].value);
	}
	free(kv);
	sign_backend_close(be);
	http_opts_cleanup(&hopts);
	pthread_mutex_destroy(&c.lock);
	return rc;
}
