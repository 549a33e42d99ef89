/*
 * provider.c - allow-listed module loading, one instance per module per
 * process, slot enumeration.
 *
 * Why raw PKCS#11 and not libp11 (see docs/internals/pkcs11.md): libp11
 * 0.4.12 has no EdDSA and does not enumerate CKK_EC_EDWARDS keys, does not
 * expose the module's function list, and loading the module a second time
 * beside a PKCS11_CTX would give one process two users of one
 * C_Initialize/C_Finalize pair (SoftHSM breaks; a C_Finalize from either
 * kills the other's sessions).  Everything we need (slots, attributes,
 * C_Sign, C_Login) is a dozen calls, so the layer uses the function list
 * directly and owns the module's lifetime.
 */
#include <dlfcn.h>
#include <fnmatch.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/log.h"
#include "pkcs11/internal.h"
#include "pkcs11/provider.h"
#include "pkcs11/sign.h"
#include "pkcs11/token.h"
#include "pkcs11/uri.h"

/* All open providers, so a module is initialised once per process. */
static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static struct p11_provider *registry;

int
p11_provider_check_allowed(
    const char *path, const char *allowlist, char **realp)
{
	char *real = NULL, *list = NULL, *pat, *save = NULL;
	int r = TS_ERR_INTERNAL;

	if (realp != NULL)
		*realp = NULL;
	if (path == NULL || *path == '\0') {
		r = TS_ERR_INVALID_ARG;
		goto out;
	}
	if (allowlist == NULL)
		allowlist = P11_PROVIDER_ALLOW_DEFAULT;
	if ((real = realpath(path, NULL)) == NULL) {
		error_f("PKCS#11 module %.200s: %m", path);
		r = TS_ERR_P11_MODULE;
		goto out;
	}
	if ((list = strdup(allowlist)) == NULL) {
		r = TS_ERR_ALLOC;
		goto out;
	}
	r = TS_ERR_P11_MODULE_DENIED;
	for (pat = strtok_r(list, ",", &save); pat != NULL;
	     pat = strtok_r(NULL, ",", &save)) {
		/* no FNM_PATHNAME: '*' crosses '/', as ssh-agent -P */
		if (*pat != '\0' && fnmatch(pat, real, 0) == 0) {
			r = 0;
			break;
		}
	}
	if (r != 0) {
		error_f("PKCS#11 module %.200s is not on the allow-list "
			"(%.200s)",
		    real, allowlist);
		goto out;
	}
	if (realp != NULL) {
		*realp = real;
		real = NULL;
	}
out:
	free(real);
	free(list);
	return r;
}

static void
provider_destroy(struct p11_provider *prov)
{
	size_t i;

	if (prov == NULL)
		return;
	for (i = 0; i < prov->ntokens; i++)
		p11_token_free(prov->tokens[i]);
	free(prov->tokens);
	if (prov->f != NULL && prov->own_init)
		prov->f->C_Finalize(NULL);
	if (prov->dl != NULL)
		dlclose(prov->dl);
	if (prov->lock != NULL) {
		pthread_mutex_destroy(prov->lock);
		free(prov->lock);
	}
	free(prov->path);
	free(prov);
}

static int
provider_load(const char *real, struct p11_provider **provp)
{
	struct p11_provider *prov = NULL;
	CK_C_GetFunctionList gfl;
	CK_C_INITIALIZE_ARGS ia;
	CK_INFO info;
	CK_RV rv;
	int r = TS_ERR_P11_MODULE;

	*provp = NULL;
	if ((prov = calloc(1, sizeof(*prov))) == NULL ||
	    (prov->path = strdup(real)) == NULL) {
		free(prov);
		return TS_ERR_ALLOC;
	}
	if ((prov->lock = malloc(sizeof(*prov->lock))) == NULL) {
		free(prov->path);
		free(prov);
		return TS_ERR_ALLOC;
	}
	pthread_mutex_init(prov->lock, NULL);
	prov->refs = 1;
	if ((prov->dl = dlopen(real, RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE)) ==
	    NULL) {
		error_f("cannot load %.200s: %.200s", real, dlerror());
		goto out;
	}
	if ((gfl = (CK_C_GetFunctionList)dlsym(
		 prov->dl, "C_GetFunctionList")) == NULL) {
		error_f("%.200s is not a PKCS#11 module (no "
			"C_GetFunctionList)",
		    real);
		goto out;
	}
	if ((rv = gfl(&prov->f)) != CKR_OK || prov->f == NULL) {
		error_f("%.200s: C_GetFunctionList: %s", real, p11_rv_name(rv));
		prov->f = NULL;
		goto out;
	}
	if (prov->f->version.major < 2) {
		error_f("%.200s: Cryptoki %u.%u is too old", real,
		    prov->f->version.major, prov->f->version.minor);
		prov->f = NULL;
		goto out;
	}
	/* threads call the module at once: ask it to use OS locking */
	memset(&ia, 0, sizeof(ia));
	ia.flags = CKF_OS_LOCKING_OK;
	rv = prov->f->C_Initialize(&ia);
	if (rv == CKR_OK) {
		prov->own_init = 1;
	} else if (rv == CKR_CRYPTOKI_ALREADY_INITIALIZED) {
		/* someone else in this process owns it; never finalize */
		debug_f("%.200s was already initialised", real);
	} else {
		error_f("%.200s: C_Initialize: %s", real, p11_rv_name(rv));
		goto out;
	}
	if ((rv = prov->f->C_GetInfo(&info)) != CKR_OK) {
		error_f("%.200s: C_GetInfo: %s", real, p11_rv_name(rv));
		goto out;
	}
	p11_ck_strcpy(prov->manufacturer, sizeof(prov->manufacturer),
	    info.manufacturerID, sizeof(info.manufacturerID));
	p11_ck_strcpy(prov->description, sizeof(prov->description),
	    info.libraryDescription, sizeof(info.libraryDescription));
	prov->ck_major = info.cryptokiVersion.major;
	prov->ck_minor = info.cryptokiVersion.minor;
	prov->lib_major = info.libraryVersion.major;
	prov->lib_minor = info.libraryVersion.minor;
	if ((r = p11_provider_refresh(prov)) != 0)
		goto out;
	*provp = prov;
	prov = NULL;
	r = 0;
out:
	provider_destroy(prov);
	return r;
}

int
p11_provider_open(
    const char *path, const char *allowlist, struct p11_provider **provp)
{
	struct p11_provider *prov;
	char *real = NULL;
	int r = TS_ERR_INTERNAL;

	*provp = NULL;
	if ((r = p11_provider_check_allowed(path, allowlist, &real)) != 0)
		goto out;
	pthread_mutex_lock(&registry_lock);
	for (prov = registry; prov != NULL; prov = prov->next) {
		if (strcmp(prov->path, real) == 0) {
			prov->refs++;
			*provp = prov;
			r = 0;
			break;
		}
	}
	if (*provp == NULL && (r = provider_load(real, &prov)) == 0) {
		prov->next = registry;
		registry = prov;
		*provp = prov;
	}
	pthread_mutex_unlock(&registry_lock);
out:
	free(real);
	return r;
}

void
p11_provider_free(struct p11_provider *prov)
{
	struct p11_provider **pp;

	if (prov == NULL)
		return;
	pthread_mutex_lock(&registry_lock);
	if (--prov->refs > 0) {
		pthread_mutex_unlock(&registry_lock);
		return;
	}
	for (pp = &registry; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == prov) {
			*pp = prov->next;
			break;
		}
	}
	pthread_mutex_unlock(&registry_lock);
	provider_destroy(prov);
}

const char *
p11_provider_path(const struct p11_provider *prov)
{
	return prov->path;
}

const char *
p11_provider_manufacturer(const struct p11_provider *prov)
{
	return prov->manufacturer;
}

const char *
p11_provider_description(const struct p11_provider *prov)
{
	return prov->description;
}

void
p11_provider_cryptoki_version(
    const struct p11_provider *prov, unsigned *majorp, unsigned *minorp)
{
	*majorp = prov->ck_major;
	*minorp = prov->ck_minor;
}

int
p11_provider_refresh(struct p11_provider *prov)
{
	CK_SLOT_ID *slots = NULL;
	CK_ULONG n = 0, i;
	struct p11_token *tok, **nt;
	unsigned char *seen = NULL;
	size_t j, ntok;
	CK_RV rv;
	int tries, r = TS_ERR_INTERNAL;

	/* the list can grow between the two calls: retry a few times */
	for (tries = 0; tries < 3; tries++) {
		free(slots);
		slots = NULL;
		if ((rv = prov->f->C_GetSlotList(CK_FALSE, NULL, &n)) !=
		    CKR_OK) {
			error_f("C_GetSlotList: %s", p11_rv_name(rv));
			r = p11_rv_to_err(rv);
			goto out;
		}
		if (n > P11_MAX_SLOTS) {
			error_f("module reports %lu slots; looking at the "
				"first %d",
			    (unsigned long)n, P11_MAX_SLOTS);
			n = P11_MAX_SLOTS;
		}
		if ((slots = calloc(n + 1, sizeof(*slots))) == NULL) {
			r = TS_ERR_ALLOC;
			goto out;
		}
		rv = prov->f->C_GetSlotList(CK_FALSE, slots, &n);
		if (rv != CKR_BUFFER_TOO_SMALL)
			break;
	}
	if (rv != CKR_OK) {
		error_f("C_GetSlotList: %s", p11_rv_name(rv));
		r = p11_rv_to_err(rv);
		goto out;
	}
	pthread_mutex_lock(prov->lock);
	ntok = prov->ntokens;
	pthread_mutex_unlock(prov->lock);
	if ((seen = calloc(ntok + n + 1, 1)) == NULL) {
		r = TS_ERR_ALLOC;
		goto out;
	}
	for (i = 0; i < n; i++) {
		tok = NULL;
		pthread_mutex_lock(prov->lock);
		for (j = 0; j < prov->ntokens; j++) {
			if (prov->tokens[j]->slot == slots[i]) {
				tok = prov->tokens[j];
				if (j < ntok)
					seen[j] = 1;
				break;
			}
		}
		pthread_mutex_unlock(prov->lock);
		if (tok == NULL) {
			if ((tok = p11_token_new(prov, slots[i])) == NULL) {
				r = TS_ERR_ALLOC;
				goto out;
			}
			pthread_mutex_lock(prov->lock);
			nt = reallocarray(
			    prov->tokens, prov->ntokens + 1, sizeof(*nt));
			if (nt == NULL) {
				pthread_mutex_unlock(prov->lock);
				p11_token_free(tok);
				r = TS_ERR_ALLOC;
				goto out;
			}
			prov->tokens = nt;
			prov->tokens[prov->ntokens++] = tok;
			pthread_mutex_unlock(prov->lock);
		}
		if ((r = p11_token_refresh(tok)) != 0)
			debug_fr(r, "slot %lu", (unsigned long)slots[i]);
	}
	/* slots that vanished (hot-plug readers): their tokens are gone */
	for (j = 0; j < ntok; j++)
		if (!seen[j])
			p11_token_mark_removed(prov->tokens[j]);
	r = 0;
out:
	free(slots);
	free(seen);
	return r;
}

size_t
p11_provider_token_count(const struct p11_provider *prov)
{
	size_t n;

	pthread_mutex_lock(prov->lock);
	n = prov->ntokens;
	pthread_mutex_unlock(prov->lock);
	return n;
}

struct p11_token *
p11_provider_token(const struct p11_provider *prov, size_t i)
{
	struct p11_token *tok = NULL;

	pthread_mutex_lock(prov->lock);
	if (i < prov->ntokens)
		tok = prov->tokens[i];
	pthread_mutex_unlock(prov->lock);
	return tok;
}

int
p11_provider_match_uri(
    const struct p11_provider *prov, const struct p11_uri *uri)
{
	unsigned ma, mi;

	if (!p11_uri_match_text(uri, P11_URI_LIBRARY_MANUFACTURER,
		prov->manufacturer, strlen(prov->manufacturer)) ||
	    !p11_uri_match_text(uri, P11_URI_LIBRARY_DESCRIPTION,
		prov->description, strlen(prov->description)))
		return 0;
	if (p11_uri_get_library_version(uri, &ma, &mi) &&
	    (ma != prov->lib_major || mi != prov->lib_minor))
		return 0;
	return 1;
}

int
p11_provider_find_token(struct p11_provider *prov, const struct p11_uri *uri,
    struct p11_token **tokp)
{
	struct p11_token *tok;
	size_t i, n, found = 0;

	*tokp = NULL;
	if (!p11_provider_match_uri(prov, uri))
		return TS_ERR_P11_TOKEN_NOT_FOUND;
	n = p11_provider_token_count(prov);
	for (i = 0; i < n; i++) {
		tok = p11_provider_token(prov, i);
		if (!p11_token_present(tok) || !p11_token_initialized(tok) ||
		    !p11_token_match_uri(tok, uri))
			continue;
		if (found++ == 0)
			*tokp = tok;
	}
	if (found == 0)
		return TS_ERR_P11_TOKEN_NOT_FOUND;
	if (found > 1) {
		*tokp = NULL;
		return TS_ERR_AMBIGUOUS;
	}
	return 0;
}

int
p11_provider_find_key(
    struct p11_provider *prov, const struct p11_uri *uri, struct p11_key **keyp)
{
	struct p11_token *tok;
	struct p11_key *key;
	size_t i, j, n, nk, found = 0, absent = 0, empty = 0;

	*keyp = NULL;
	if (!p11_provider_match_uri(prov, uri))
		return TS_ERR_P11_KEY_NOT_FOUND;
	n = p11_provider_token_count(prov);
	for (i = 0; i < n; i++) {
		tok = p11_provider_token(prov, i);
		/* an empty slot (reader without its card) may hold it */
		if (!p11_token_present(tok) && *p11_token_label(tok) == '\0')
			empty++;
		if (!p11_token_match_uri(tok, uri))
			continue;
		/* a token we knew by this name was pulled out */
		if (!p11_token_present(tok) && *p11_token_label(tok) != '\0') {
			absent++;
			continue;
		}
		if (!p11_token_present(tok) || !p11_token_initialized(tok))
			continue;
		/* loads the key list on first use */
		nk = p11_token_key_count(tok);
		for (j = 0; j < nk; j++) {
			key = p11_token_key(tok, j);
			if (key == NULL || !p11_key_present(key) ||
			    !p11_key_match_uri(key, uri))
				continue;
			if (found++ == 0)
				*keyp = key;
			else
				debug_f(
				    "also matches %.200s", p11_key_uri(key));
		}
	}
	/*
	 * Nothing found, and the URI names a token (token= or serial=) that
	 * no present token is while a slot stands empty: it is most likely
	 * out of its reader, and "insert it" helps more than "key not found".
	 */
	if (found == 0 && absent == 0 && empty > 0 &&
	    (!p11_uri_match_text(uri, P11_URI_TOKEN, "", 0) ||
		!p11_uri_match_text(uri, P11_URI_SERIAL, "", 0)) &&
	    p11_provider_find_token(prov, uri, &tok) ==
		TS_ERR_P11_TOKEN_NOT_FOUND)
		absent = 1;
	if (found == 0)
		return absent > 0 ? TS_ERR_P11_TOKEN_REMOVED
				  : TS_ERR_P11_KEY_NOT_FOUND;
	if (found > 1) {
		*keyp = NULL;
		return TS_ERR_P11_KEY_AMBIGUOUS;
	}
	return 0;
}

int
p11_provider_slot_event(struct p11_provider *prov, uint64_t *slotp)
{
	CK_SLOT_ID slot = 0;
	CK_RV rv;

	*slotp = 0;
	rv = prov->f->C_WaitForSlotEvent(CKF_DONT_BLOCK, &slot, NULL);
	if (rv == CKR_NO_EVENT)
		return 0;
	if (rv == CKR_OK) {
		*slotp = (uint64_t)slot;
		return 1;
	}
	if (rv == CKR_FUNCTION_NOT_SUPPORTED)
		return TS_ERR_UNSUPPORTED;
	return p11_rv_to_err(rv);
}
