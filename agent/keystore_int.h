/*
 * keystore_int.h - the keystore's private state, shared by keystore.c
 * (tokens, login, signing, presence) and keystore_late.c (tokens that
 * arrive after the agent started).  Not for use outside those two files.
 *
 * Publication: tokens[0, ntokens) and view[0, nkeys) are what readers
 * (workers, the event loop) see; both counts only grow after serving
 * starts, each entry is complete before its count is stored (release)
 * and readers load the counts with acquire.  Keys are never removed
 * once shared, so a borrowed struct ks_key stays valid.
 */
#ifndef TS_AGENT_KEYSTORE_INT_H
#define TS_AGENT_KEYSTORE_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "agent/keystore.h"
#include "common/proto.h"

#define KS_MAX_TOKENS	 64
#define KS_MAX_PROVIDERS 16
#define KS_MAX_KEYS	 4096

struct p11_pin;
struct p11_token;
struct p11_uri;

struct ks_token {
	struct p11_token *tok;
	enum ks_pin_kind kind;
	char *value; /* file path or variable name */
	uint64_t logged_in_ms; /* 0: not logged in by us */
	int needs_unlock; /* written under mu (__atomic: STATUS reads it bare) */
	/*
	 * An env PIN cannot be read again: a copy is held (secmem) while
	 * logged in, for logging in again after a removal or a dropped
	 * session; the PIN timeout and a rejection forget it.
	 */
	struct p11_pin *held;
	int pin_rejected; /* the source's PIN was refused: never retry */
	int unlock_only; /* reinserted under reinsert_login unlock */
	int active; /* logged in on purpose: log in again after a reset */
	/* hung module: signatures in flight, and when the watcher's check began */
	atomic_uint inflight;
	atomic_uint_fast64_t check_since_ms; /* 0: no check running */
	atomic_uint_fast64_t progress_ms; /* last sign done / first started */
	atomic_uint_fast64_t done_ms; /* last sign call that came back */
	int burst; /* quick re-checks left after a reader event (ks->wmu) */
	/* PIN timeout: the watcher logs the token out (keystore_expire) */
	atomic_int logout_due;
	char serial[17]; /* the token added: another card is not it */
	char label[33];
};

struct ks_key {
	char id[TS_PROTO_KEY_ID_LEN + 1];
	struct p11_key *key;
	size_t token; /* index into ks->tokens */
	int confirm;
	int ssh; /* enum sshproto_key_policy */
	unsigned touch_ms; /* touch timeout, 0: none (__atomic) */
	atomic_uint_fast64_t sigs;
	atomic_uint_fast64_t errors;
};

enum ks_wait_state {
	KS_WAIT_OPEN = 0, /* no token matched yet: looked for again */
	KS_WAIT_DONE, /* its tokens arrived */
	KS_WAIT_FAILED /* a token arrived and its login failed: not retried */
};

/* A token spec that matched nothing at start (keystore_add_tokens). */
struct ks_wait {
	struct p11_provider *prov; /* borrowed: ks->provs holds it */
	struct p11_uri *uri; /* NULL: any labelled token */
	char *text; /* the URI as given, "pkcs11:" for any */
	enum ks_pin_kind kind;
	char *value;
	struct p11_pin *pin; /* an env PIN, read at start (secmem) */
	_Atomic int state; /* enum ks_wait_state; the hunter changes it */
};

struct keystore {
	pthread_mutex_t mu;
	struct p11_provider *provs[KS_MAX_PROVIDERS];
	size_t nprovs;
	struct ks_token tokens[KS_MAX_TOKENS];
	atomic_size_t ntokens; /* published */
	struct ks_key *slab; /* every key made, KS_MAX_KEYS */
	size_t nslab;
	struct ks_key **view; /* the table clients see, KS_MAX_KEYS */
	atomic_size_t nkeys; /* published */
	unsigned pin_timeout;
	int final_try; /* config pin_final_try allow */
	int reinsert_unlock; /* config reinsert_login unlock */
	unsigned token_cap; /* signatures in flight per token (0: no cap) */
	/* presence watcher (keystore_watch_start): one thread per token */
	pthread_mutex_t wmu;
	pthread_cond_t wcv;
	int wstop;
	unsigned watch_ms;
	pthread_t wthreads[KS_MAX_TOKENS + KS_MAX_PROVIDERS + 1];
	size_t nwthreads;
	/*
	 * Late tokens (keystore_late.c).  lmu guards nprepared, nslab once
	 * serving began and nadopted; tokens[ntokens,
	 * nprepared) and slab[nadopted, nslab) are logged in and loaded by
	 * the hunter thread, waiting for the loop to adopt them.
	 */
	pthread_mutex_t lmu;
	struct ks_wait waits[KS_MAX_PROVIDERS];
	size_t nwaits;
	size_t nprepared;
	size_t nadopted; /* slab entries the loop has looked at */
	int late_fd; /* eventfd: prepared tokens wait; -1 */
	int hunt; /* wmu: look for waited tokens now */
};

/* keystore.c */
int ks_take_token(struct keystore *ks, size_t idx, struct p11_token *tok,
    enum ks_pin_kind kind, const char *value, const struct p11_pin *given);
/*
 * Whether tok is present and matches a token spec: uri, or for "any
 * token" (NULL) one with a label; say: debug-log an unlabelled skip.
 */
int ks_token_wanted(
    const struct p11_token *tok, const struct p11_uri *uri, int say);
/* Whether tok is one of tokens[0, nprepared); lmu held, or before serving. */
int ks_token_taken(const struct keystore *ks, const struct p11_token *tok);
size_t ks_make_keys(struct keystore *ks, size_t ti);
int ks_watch_token(struct keystore *ks, size_t ti);
/* Waits on wcv for at most ms (wmu held); a broadcast ends it early. */
void ks_wait_ms_locked(struct keystore *ks, unsigned ms);
int ks_key_matches_uri(const struct ks_key *k, const struct p11_uri *uri);

/* keystore_late.c */
int keystore_wait_tokens(struct keystore *ks, struct p11_provider *prov,
    struct p11_uri *uri, const char *text, enum ks_pin_kind kind,
    const char *value);
void ks_late_free(struct keystore *ks);
/* Starts the hunter thread when something waits; wmu held. */
int ks_late_start(struct keystore *ks);
#endif /* TS_AGENT_KEYSTORE_INT_H */
