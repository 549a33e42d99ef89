/*
 * control.c - the shim's control-file parser (format: docs/internals/shim.md).
 *
 * Line-based "key = value" with "[slot N]" / "[token LABEL]" / "[all]"
 * section headers.  Parsing is all-or-nothing: a bad line rejects the whole
 * file, and the caller keeps the settings it had, so a test that half-writes
 * the file never sees half a configuration.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shim.h"

/* Bits of shim_section.set. */
#define SET_PRESENT	   (1UL << 0)
#define SET_REMOVED_RV	   (1UL << 1)
#define SET_CLOSED_RV	   (1UL << 2)
#define SET_CLOSE_SESSIONS (1UL << 3)
#define SET_NOT_LOGGED_IN  (1UL << 4)
#define SET_SIGN_DELAY	   (1UL << 5)
#define SET_SIGN_HANG	   (1UL << 6)
#define SET_HANG	   (1UL << 7)
#define SET_PIN_FLAGS	   (1UL << 8)
#define SET_REMOVABLE	   (1UL << 9)
#define SET_DESC	   (1UL << 10)
#define SET_BOGUS	   (1UL << 11)
#define SET_BOGUS_TYPES	   (1UL << 12)
#define SET_FAILS	   (1UL << 13)
#define SET_NLI_AT	   (1UL << 14)
#define SET_INFO_DELAY	   (1UL << 15)

#define FN_NAME(name) #name,
static const char *const fn_names[FN_MAX] = { SHIM_FUNCTIONS(FN_NAME) };
#undef FN_NAME

struct named {
	const char *name;
	unsigned long value;
};

#define RV(x)         \
	{             \
#x, x \
	}
static const struct named rv_names[] = {
	RV(CKR_OK),
	RV(CKR_HOST_MEMORY),
	RV(CKR_GENERAL_ERROR),
	RV(CKR_FUNCTION_FAILED),
	RV(CKR_ARGUMENTS_BAD),
	RV(CKR_DEVICE_ERROR),
	RV(CKR_DEVICE_MEMORY),
	RV(CKR_DEVICE_REMOVED),
	RV(CKR_FUNCTION_CANCELED),
	RV(CKR_FUNCTION_NOT_SUPPORTED),
	RV(CKR_KEY_HANDLE_INVALID),
	RV(CKR_MECHANISM_INVALID),
	RV(CKR_OBJECT_HANDLE_INVALID),
	RV(CKR_OPERATION_ACTIVE),
	RV(CKR_OPERATION_NOT_INITIALIZED),
	RV(CKR_PIN_INCORRECT),
	RV(CKR_PIN_EXPIRED),
	RV(CKR_PIN_LOCKED),
	RV(CKR_SESSION_CLOSED),
	RV(CKR_SESSION_HANDLE_INVALID),
	RV(CKR_TOKEN_NOT_PRESENT),
	RV(CKR_TOKEN_NOT_RECOGNIZED),
	RV(CKR_USER_ALREADY_LOGGED_IN),
	RV(CKR_USER_NOT_LOGGED_IN),
	RV(CKR_USER_PIN_NOT_INITIALIZED),
	RV(CKR_BUFFER_TOO_SMALL),
	RV(CKR_CRYPTOKI_NOT_INITIALIZED),
	RV(CKR_NO_EVENT),
	RV(CKR_ATTRIBUTE_TYPE_INVALID),
	RV(CKR_ATTRIBUTE_SENSITIVE),
};
#undef RV

#define CKA(x)        \
	{             \
#x, x \
	}
static const struct named cka_names[] = {
	CKA(CKA_CLASS),
	CKA(CKA_LABEL),
	CKA(CKA_ID),
	CKA(CKA_VALUE),
	CKA(CKA_KEY_TYPE),
	CKA(CKA_MODULUS),
	CKA(CKA_MODULUS_BITS),
	CKA(CKA_PUBLIC_EXPONENT),
	CKA(CKA_EC_PARAMS),
	CKA(CKA_EC_POINT),
	CKA(CKA_ALWAYS_AUTHENTICATE),
	CKA(CKA_SIGN),
	CKA(CKA_PRIVATE),
	CKA(CKA_TOKEN),
};
#undef CKA

/* Byte arrays whose length a caller must check: the default lie targets. */
static const CK_ATTRIBUTE_TYPE default_bogus[] = {
	CKA_LABEL,
	CKA_ID,
	CKA_VALUE,
	CKA_MODULUS,
	CKA_PUBLIC_EXPONENT,
	CKA_EC_PARAMS,
	CKA_EC_POINT,
};

const char *
shim_fn_name(enum shim_fn fn)
{
	return (fn < FN_MAX) ? fn_names[fn] : "?";
}

const char *
shim_rv_name(CK_RV rv)
{
	size_t i;

	for (i = 0; i < sizeof(rv_names) / sizeof(rv_names[0]); i++)
		if (rv_names[i].value == rv)
			return rv_names[i].name;
	return NULL;
}

static void
slotcfg_defaults(struct shim_slotcfg *v)
{
	memset(v, 0, sizeof(*v));
	v->present = 1;
	v->removed_rv = CKR_DEVICE_REMOVED;
	v->closed_rv = CKR_SESSION_HANDLE_INVALID;
	v->removable = 1;
	v->not_logged_in_at = FN_C_SignInit;
	v->nbogus_types = sizeof(default_bogus) / sizeof(default_bogus[0]);
	memcpy(v->bogus_types, default_bogus, sizeof(default_bogus));
}

void
shim_cfg_defaults(struct shim_cfg *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->nsec = 1;
	cfg->sec[0].sel = SEL_ALL;
	slotcfg_defaults(&cfg->sec[0].v);
	cfg->slot_events = 1;
	cfg->poll_ms = 20;
}

static void seterr(char *err, size_t errlen, size_t lineno, const char *fmt,
    ...) __attribute__((format(printf, 4, 5)));

static void
seterr(char *err, size_t errlen, size_t lineno, const char *fmt, ...)
{
	va_list ap;
	int n;

	n = snprintf(err, errlen, "line %zu: ", lineno);
	if (n < 0 || (size_t)n >= errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
	va_end(ap);
}

static int
parse_ulong(const char *s, unsigned long max, unsigned long *out)
{
	char *end = NULL;
	unsigned long v;

	*out = 0;
	if (*s == '\0' || *s == '-' || *s == '+')
		return -1;
	errno = 0;
	v = strtoul(s, &end, 0);
	if (errno != 0 || *end != '\0' || v > max)
		return -1;
	*out = v;
	return 0;
}

static int
parse_bool(const char *s, int *out)
{
	*out = 0;
	if (strcmp(s, "1") == 0 || strcmp(s, "yes") == 0 ||
	    strcmp(s, "true") == 0) {
		*out = 1;
		return 0;
	}
	if (strcmp(s, "0") == 0 || strcmp(s, "no") == 0 ||
	    strcmp(s, "false") == 0)
		return 0;
	return -1;
}

static int
parse_named(
    const char *s, const struct named *tab, size_t n, unsigned long *out)
{
	size_t i;

	*out = 0;
	for (i = 0; i < n; i++) {
		if (strcmp(s, tab[i].name) == 0) {
			*out = tab[i].value;
			return 0;
		}
	}
	return parse_ulong(s, ~0UL, out);
}

static int
parse_rv(const char *s, CK_RV *out)
{
	unsigned long v;

	if (parse_named(
		s, rv_names, sizeof(rv_names) / sizeof(rv_names[0]), &v) != 0)
		return -1;
	*out = v;
	return 0;
}

/* Returns the next trimmed item of a comma list, splitting in place. */
static char *
next_item(char **cursor)
{
	char *s = *cursor, *e;

	if (s == NULL)
		return NULL;
	while (*s == ' ' || *s == '\t')
		s++;
	e = strchr(s, ',');
	if (e != NULL) {
		*e = '\0';
		*cursor = e + 1;
	} else {
		*cursor = NULL;
	}
	e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
		*--e = '\0';
	return s;
}

static int
parse_pin_flags(char *s, CK_FLAGS *out)
{
	char *cur = s, *item;

	*out = 0;
	while ((item = next_item(&cur)) != NULL) {
		if (*item == '\0' || strcmp(item, "none") == 0)
			continue;
		if (strcmp(item, "count_low") == 0)
			*out |= CKF_USER_PIN_COUNT_LOW;
		else if (strcmp(item, "final_try") == 0)
			*out |= CKF_USER_PIN_FINAL_TRY;
		else if (strcmp(item, "locked") == 0)
			*out |= CKF_USER_PIN_LOCKED;
		else
			return -1;
	}
	return 0;
}

static int
parse_bogus(const char *s, enum shim_bogus *out)
{
	static const struct {
		const char *name;
		enum shim_bogus v;
	} tab[] = {
		{ "none", BOGUS_NONE },
		{ "huge", BOGUS_HUGE },
		{ "zero", BOGUS_ZERO },
		{ "unavailable", BOGUS_UNAVAILABLE },
		{ "overlong", BOGUS_OVERLONG },
		{ "truncate", BOGUS_TRUNCATE },
	};
	size_t i;

	*out = BOGUS_NONE;
	for (i = 0; i < sizeof(tab) / sizeof(tab[0]); i++) {
		if (strcmp(s, tab[i].name) == 0) {
			*out = tab[i].v;
			return 0;
		}
	}
	return -1;
}

static int
parse_attr_types(char *s, struct shim_slotcfg *v)
{
	char *cur = s, *item;
	unsigned long t;

	v->nbogus_types = 0;
	while ((item = next_item(&cur)) != NULL) {
		if (*item == '\0')
			continue;
		if (v->nbogus_types >= SHIM_MAX_ATTR_TYPES)
			return -1;
		if (parse_named(item, cka_names,
			sizeof(cka_names) / sizeof(cka_names[0]), &t) != 0)
			return -1;
		v->bogus_types[v->nbogus_types++] = t;
	}
	return 0;
}

static int
fn_lookup(const char *name, enum shim_fn *out)
{
	int i;

	*out = FN_MAX;
	for (i = 0; i < FN_MAX; i++) {
		if (strcmp(name, fn_names[i]) == 0) {
			*out = (enum shim_fn)i;
			return 0;
		}
	}
	return -1;
}

static char *
trim(char *s)
{
	char *e;

	while (*s == ' ' || *s == '\t' || *s == '\r')
		s++;
	e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'))
		*--e = '\0';
	return s;
}

static int
parse_section(
    char *hdr, struct shim_cfg *cfg, char *err, size_t errlen, size_t lineno)
{
	struct shim_section *sec;
	char *arg;
	unsigned long id;

	if (cfg->nsec >= SHIM_MAX_SECTIONS) {
		seterr(err, errlen, lineno, "more than %d sections",
		    SHIM_MAX_SECTIONS - 1);
		return -1;
	}
	sec = &cfg->sec[cfg->nsec];
	memset(sec, 0, sizeof(*sec));
	slotcfg_defaults(&sec->v);
	if (strcmp(hdr, "all") == 0) {
		sec->sel = SEL_ALL;
	} else if (strncmp(hdr, "slot ", 5) == 0) {
		arg = trim(hdr + 5);
		if (parse_ulong(arg, ~0UL, &id) != 0) {
			seterr(
			    err, errlen, lineno, "bad slot id \"%.40s\"", arg);
			return -1;
		}
		sec->sel = SEL_SLOT;
		sec->slot = id;
	} else if (strncmp(hdr, "token ", 6) == 0) {
		arg = trim(hdr + 6);
		if (*arg == '\0' || strlen(arg) > SHIM_LABEL_LEN) {
			seterr(err, errlen, lineno, "bad token label");
			return -1;
		}
		sec->sel = SEL_TOKEN;
		memcpy(sec->label, arg, strlen(arg) + 1);
	} else {
		seterr(err, errlen, lineno, "unknown section [%.40s]", hdr);
		return -1;
	}
	cfg->nsec++;
	return 0;
}

static int
parse_fail(const char *key, const char *val, struct shim_slotcfg *v)
{
	enum shim_fn fn;
	CK_RV rv;
	size_t i;

	if (fn_lookup(key, &fn) != 0 || parse_rv(val, &rv) != 0)
		return -1;
	/* A later line for the same function replaces the earlier one. */
	for (i = 0; i < v->nfails; i++) {
		if (v->fails[i].fn == fn) {
			v->fails[i].rv = rv;
			return 0;
		}
	}
	if (v->nfails >= SHIM_MAX_FAILS)
		return -1;
	v->fails[v->nfails].fn = fn;
	v->fails[v->nfails].rv = rv;
	v->nfails++;
	return 0;
}

static int
parse_setting(
    char *key, char *val, struct shim_cfg *cfg, struct shim_section *sec)
{
	struct shim_slotcfg *v = &sec->v;
	unsigned long n;
	int b;

	if (strcmp(key, "present") == 0) {
		if (parse_bool(val, &v->present) != 0)
			return -1;
		sec->set |= SET_PRESENT;
	} else if (strcmp(key, "removed_rv") == 0) {
		if (parse_rv(val, &v->removed_rv) != 0)
			return -1;
		sec->set |= SET_REMOVED_RV;
	} else if (strcmp(key, "closed_rv") == 0) {
		if (parse_rv(val, &v->closed_rv) != 0)
			return -1;
		sec->set |= SET_CLOSED_RV;
	} else if (strcmp(key, "close_sessions") == 0) {
		if (parse_ulong(val, ~0UL, &v->close_sessions) != 0)
			return -1;
		sec->set |= SET_CLOSE_SESSIONS;
	} else if (strcmp(key, "not_logged_in_at") == 0) {
		if (fn_lookup(val, &v->not_logged_in_at) != 0)
			return -1;
		sec->set |= SET_NLI_AT;
	} else if (strcmp(key, "not_logged_in") == 0) {
		if (parse_ulong(val, ~0UL, &v->not_logged_in) != 0)
			return -1;
		sec->set |= SET_NOT_LOGGED_IN;
	} else if (strcmp(key, "sign_delay_ms") == 0) {
		if (parse_ulong(val, 3600000UL, &v->sign_delay_ms) != 0)
			return -1;
		sec->set |= SET_SIGN_DELAY;
	} else if (strcmp(key, "info_delay_ms") == 0) {
		if (parse_ulong(val, 3600000UL, &v->info_delay_ms) != 0)
			return -1;
		sec->set |= SET_INFO_DELAY;
	} else if (strcmp(key, "sign_hang") == 0) {
		if (parse_bool(val, &v->sign_hang) != 0)
			return -1;
		sec->set |= SET_SIGN_HANG;
	} else if (strcmp(key, "hang") == 0) {
		if (parse_bool(val, &v->hang) != 0)
			return -1;
		sec->set |= SET_HANG;
	} else if (strcmp(key, "pin_flags") == 0) {
		if (parse_pin_flags(val, &v->pin_flags) != 0)
			return -1;
		sec->set |= SET_PIN_FLAGS;
	} else if (strcmp(key, "removable") == 0) {
		if (parse_bool(val, &v->removable) != 0)
			return -1;
		sec->set |= SET_REMOVABLE;
	} else if (strcmp(key, "slot_description") == 0) {
		if (strlen(val) > SHIM_DESC_LEN)
			return -1;
		memcpy(v->slot_description, val, strlen(val) + 1);
		v->has_desc = 1;
		sec->set |= SET_DESC;
	} else if (strcmp(key, "bogus_attr") == 0) {
		if (parse_bogus(val, &v->bogus_attr) != 0)
			return -1;
		sec->set |= SET_BOGUS;
	} else if (strcmp(key, "bogus_attr_types") == 0) {
		if (parse_attr_types(val, v) != 0)
			return -1;
		sec->set |= SET_BOGUS_TYPES;
	} else if (strncmp(key, "fail.", 5) == 0) {
		if (parse_fail(key + 5, val, v) != 0)
			return -1;
		sec->set |= SET_FAILS;
	} else if (sec == &cfg->sec[0] && strcmp(key, "stats") == 0) {
		if (strlen(val) >= sizeof(cfg->stats))
			return -1;
		memcpy(cfg->stats, val, strlen(val) + 1);
	} else if (sec == &cfg->sec[0] && strcmp(key, "slot_events") == 0) {
		if (parse_bool(val, &b) != 0)
			return -1;
		cfg->slot_events = b;
	} else if (sec == &cfg->sec[0] && strcmp(key, "poll_ms") == 0) {
		if (parse_ulong(val, 1000, &n) != 0 || n == 0)
			return -1;
		cfg->poll_ms = n;
	} else {
		return -1;
	}
	return 0;
}

int
shim_cfg_next_file(struct shim_cfg *cfg)
{
	struct shim_section *sec;

	if (cfg->nsec >= SHIM_MAX_SECTIONS)
		return -1;
	sec = &cfg->sec[cfg->nsec++];
	memset(sec, 0, sizeof(*sec));
	slotcfg_defaults(&sec->v);
	sec->sel = SEL_ALL;
	return 0;
}

int
shim_cfg_parse(const char *text, size_t len, struct shim_cfg *cfg, char *err,
    size_t errlen)
{
	char line[1024];
	size_t off = 0, lineno = 0, n;
	const char *nl;
	char *s, *eq, *key, *val;

	if (errlen > 0)
		err[0] = '\0';
	while (off < len) {
		lineno++;
		nl = memchr(text + off, '\n', len - off);
		n = (nl != NULL) ? (size_t)(nl - (text + off)) : len - off;
		if (n >= sizeof(line)) {
			seterr(err, errlen, lineno, "line too long");
			return -1;
		}
		memcpy(line, text + off, n);
		line[n] = '\0';
		off += n + (nl != NULL ? 1 : 0);
		if (memchr(line, '\0', n) != NULL) {
			seterr(err, errlen, lineno, "NUL byte");
			return -1;
		}
		s = trim(line);
		if (*s == '\0' || *s == '#')
			continue;
		if (*s == '[') {
			n = strlen(s);
			if (s[n - 1] != ']') {
				seterr(err, errlen, lineno, "unclosed [");
				return -1;
			}
			s[n - 1] = '\0';
			if (parse_section(
				trim(s + 1), cfg, err, errlen, lineno) != 0)
				return -1;
			continue;
		}
		if ((eq = strchr(s, '=')) == NULL) {
			seterr(err, errlen, lineno, "expected key = value");
			return -1;
		}
		*eq = '\0';
		key = trim(s);
		val = trim(eq + 1);
		if (parse_setting(key, val, cfg, &cfg->sec[cfg->nsec - 1]) !=
		    0) {
			seterr(err, errlen, lineno,
			    "bad setting \"%.40s\" = \"%.60s\"", key, val);
			return -1;
		}
	}
	return 0;
}

static int
section_matches(const struct shim_section *sec, int have_slot, CK_SLOT_ID slot,
    const char *label)
{
	switch (sec->sel) {
	case SEL_ALL:
		return 1;
	case SEL_SLOT:
		return have_slot && sec->slot == slot;
	case SEL_TOKEN:
		return have_slot && label != NULL &&
		    strcmp(sec->label, label) == 0;
	}
	return 0;
}

static void
overlay(struct shim_slotcfg *out, const struct shim_section *sec)
{
	const struct shim_slotcfg *v = &sec->v;
	size_t i, j;

	if (sec->set & SET_PRESENT)
		out->present = v->present;
	if (sec->set & SET_REMOVED_RV)
		out->removed_rv = v->removed_rv;
	if (sec->set & SET_CLOSED_RV)
		out->closed_rv = v->closed_rv;
	if (sec->set & SET_CLOSE_SESSIONS)
		out->close_sessions = v->close_sessions;
	if (sec->set & SET_NOT_LOGGED_IN)
		out->not_logged_in = v->not_logged_in;
	if (sec->set & SET_NLI_AT)
		out->not_logged_in_at = v->not_logged_in_at;
	if (sec->set & SET_SIGN_DELAY)
		out->sign_delay_ms = v->sign_delay_ms;
	if (sec->set & SET_INFO_DELAY)
		out->info_delay_ms = v->info_delay_ms;
	if (sec->set & SET_SIGN_HANG)
		out->sign_hang = v->sign_hang;
	if (sec->set & SET_HANG)
		out->hang = v->hang;
	if (sec->set & SET_PIN_FLAGS)
		out->pin_flags = v->pin_flags;
	if (sec->set & SET_REMOVABLE)
		out->removable = v->removable;
	if (sec->set & SET_DESC) {
		out->has_desc = 1;
		memcpy(out->slot_description, v->slot_description,
		    sizeof(out->slot_description));
	}
	if (sec->set & SET_BOGUS)
		out->bogus_attr = v->bogus_attr;
	if (sec->set & SET_BOGUS_TYPES) {
		out->nbogus_types = v->nbogus_types;
		memcpy(
		    out->bogus_types, v->bogus_types, sizeof(out->bogus_types));
	}
	if (sec->set & SET_FAILS) {
		for (i = 0; i < v->nfails; i++) {
			for (j = 0; j < out->nfails; j++)
				if (out->fails[j].fn == v->fails[i].fn)
					break;
			if (j == out->nfails) {
				if (out->nfails >= SHIM_MAX_FAILS)
					continue;
				out->nfails++;
			}
			out->fails[j] = v->fails[i];
		}
	}
}

void
shim_cfg_resolve(const struct shim_cfg *cfg, int have_slot, CK_SLOT_ID slot,
    const char *label, struct shim_slotcfg *out)
{
	size_t i;

	slotcfg_defaults(out);
	for (i = 0; i < cfg->nsec; i++) {
		if (section_matches(&cfg->sec[i], have_slot, slot, label))
			overlay(out, &cfg->sec[i]);
	}
}
