/*
 * shim_probe.c - a small PKCS#11 caller that the shim's tests drive line by
 * line (tests/integration/test_shim.sh), so one process keeps its session
 * while the test flips faults in the control file.
 *
 * usage: shim_probe MODULE TOKEN-LABEL PIN-FILE < commands
 *
 * Each command line gets one reply line "<command> <CKR_NAME> [k=v...]":
 *   open             C_OpenSession on the token's slot
 *   login            C_Login(CKU_USER) with the PIN file's content
 *   sign LABEL       CKM_ECDSA over a fixed 32-byte digest; ms= elapsed
 *   attr LABEL       C_GetAttributeValue(CKA_EC_POINT) of the public key,
 *                    size call then data call: size= rv2= len=
 *   tokeninfo        C_GetTokenInfo: pinflags=
 *   slotinfo         C_GetSlotInfo: present= removable= desc=
 *   slots            C_GetSlotList(CK_TRUE): n=
 *   wait / waitnb    C_WaitForSlotEvent blocking / CKF_DONT_BLOCK: slot=
 *   close            C_CloseSession
 *   load MS N LABEL  N threads sign for MS ms, recovering from faults
 *   iface            the PKCS#11 3.0 entry points: count= name= version=
 *   quit
 * The slot is found once, at start, before any fault is set.
 */
#include <dlfcn.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <p11-kit/pkcs11.h>

static CK_FUNCTION_LIST *p11;
static void *dl;
static CK_SLOT_ID slot;
static CK_SESSION_HANDLE session = CK_INVALID_HANDLE;
static char pin[256];
static size_t pin_len;
static char cached_label[64];
static CK_OBJECT_HANDLE cached_key;

struct rvname {
	CK_RV rv;
	const char *name;
};

#define R(x)          \
	{             \
		x, #x \
	}
static const struct rvname rvnames[] = {
	R(CKR_OK),
	R(CKR_GENERAL_ERROR),
	R(CKR_FUNCTION_FAILED),
	R(CKR_ARGUMENTS_BAD),
	R(CKR_DEVICE_ERROR),
	R(CKR_DEVICE_REMOVED),
	R(CKR_FUNCTION_NOT_SUPPORTED),
	R(CKR_KEY_HANDLE_INVALID),
	R(CKR_OBJECT_HANDLE_INVALID),
	R(CKR_OPERATION_ACTIVE),
	R(CKR_OPERATION_NOT_INITIALIZED),
	R(CKR_PIN_INCORRECT),
	R(CKR_PIN_LOCKED),
	R(CKR_SESSION_CLOSED),
	R(CKR_SESSION_HANDLE_INVALID),
	R(CKR_TOKEN_NOT_PRESENT),
	R(CKR_USER_ALREADY_LOGGED_IN),
	R(CKR_USER_NOT_LOGGED_IN),
	R(CKR_BUFFER_TOO_SMALL),
	R(CKR_CRYPTOKI_NOT_INITIALIZED),
	R(CKR_NO_EVENT),
	R(CKR_SLOT_ID_INVALID),
	R(CKR_ATTRIBUTE_TYPE_INVALID),
};
#undef R

static const char *
rvname(CK_RV rv)
{
	static char buf[32];
	size_t i;

	for (i = 0; i < sizeof(rvnames) / sizeof(rvnames[0]); i++)
		if (rvnames[i].rv == rv)
			return rvnames[i].name;
	snprintf(buf, sizeof(buf), "0x%lx", rv);
	return buf;
}

static long
elapsed_ms(const struct timespec *a)
{
	struct timespec b;

	clock_gettime(CLOCK_MONOTONIC, &b);
	return (long)(b.tv_sec - a->tv_sec) * 1000L +
	    (b.tv_nsec - a->tv_nsec) / 1000000L;
}

static CK_RV
find_key_in(CK_SESSION_HANDLE sess, const char *label, CK_OBJECT_CLASS cls,
    CK_OBJECT_HANDLE *out)
{
	CK_ATTRIBUTE t[2];
	CK_ULONG n = 0;
	CK_RV rv;

	*out = CK_INVALID_HANDLE;
	t[0].type = CKA_CLASS;
	t[0].pValue = &cls;
	t[0].ulValueLen = sizeof(cls);
	t[1].type = CKA_LABEL;
	t[1].pValue = (void *)(uintptr_t)label; /* the API is not const */
	t[1].ulValueLen = strlen(label);
	if ((rv = p11->C_FindObjectsInit(sess, t, 2)) != CKR_OK)
		return rv;
	rv = p11->C_FindObjects(sess, out, 1, &n);
	p11->C_FindObjectsFinal(sess);
	if (rv == CKR_OK && n != 1)
		rv = CKR_KEY_HANDLE_INVALID;
	return rv;
}

static CK_RV
find_key(const char *label, CK_OBJECT_CLASS cls, CK_OBJECT_HANDLE *out)
{
	return find_key_in(session, label, cls, out);
}

/*
 * "load MS THREADS LABEL": THREADS threads, each with its own session, sign
 * for MS milliseconds, recovering like an agent would: on a dead session
 * close it and reopen (retrying while the token is absent), log in again
 * when told.  Prints the tally; "final_ok" counts threads whose last
 * signature succeeded, i.e. that recovered after any fault.
 */
struct load {
	const char *label;
	long long deadline;
	pthread_mutex_t lock;
	unsigned long ok, removed, closed, absent, relogin, other, final_ok;
	CK_RV other_rv;
};

static long long
mono_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (long long)t.tv_sec * 1000LL + t.tv_nsec / 1000000L;
}

/*
 * One login for the whole token, held by a session of its own, as an agent
 * does: after a fault the first thread to notice logs in again, and the
 * others wait for it instead of spending PIN tries in parallel.
 */
static pthread_mutex_t login_lock = PTHREAD_MUTEX_INITIALIZER;
static CK_SESSION_HANDLE login_session = CK_INVALID_HANDLE;

static CK_RV
ensure_login(void)
{
	CK_SESSION_INFO si;
	CK_RV rv = CKR_OK;

	pthread_mutex_lock(&login_lock);
	if (login_session != CK_INVALID_HANDLE &&
	    p11->C_GetSessionInfo(login_session, &si) == CKR_OK &&
	    (si.state == CKS_RO_USER_FUNCTIONS ||
		si.state == CKS_RW_USER_FUNCTIONS))
		goto out;
	if (login_session != CK_INVALID_HANDLE)
		p11->C_CloseSession(login_session);
	login_session = CK_INVALID_HANDLE;
	rv = p11->C_OpenSession(
	    slot, CKF_SERIAL_SESSION, NULL, NULL, &login_session);
	if (rv != CKR_OK) {
		login_session = CK_INVALID_HANDLE;
		goto out;
	}
	rv = p11->C_Login(
	    login_session, CKU_USER, (unsigned char *)pin, pin_len);
	if (rv == CKR_USER_ALREADY_LOGGED_IN)
		rv = CKR_OK;
out:
	pthread_mutex_unlock(&login_lock);
	return rv;
}

static void *
load_thread(void *arg)
{
	struct load *l = arg;
	CK_MECHANISM mech = { CKM_ECDSA, NULL, 0 };
	CK_SESSION_HANDLE s = CK_INVALID_HANDLE;
	CK_OBJECT_HANDLE key = CK_INVALID_HANDLE;
	CK_BYTE digest[32], sig[512];
	CK_ULONG siglen;
	unsigned long ok = 0, removed = 0, closed = 0, absent = 0;
	unsigned long relogin = 0, other = 0;
	CK_RV rv, other_rv = CKR_OK, last = CKR_GENERAL_ERROR;
	struct timespec pause = { 0, 10 * 1000000L };

	memset(digest, 0x33, sizeof(digest));
	while (mono_ms() < l->deadline) {
		if (s == CK_INVALID_HANDLE) {
			rv = ensure_login();
			if (rv == CKR_OK)
				rv = p11->C_OpenSession(
				    slot, CKF_SERIAL_SESSION, NULL, NULL, &s);
			if (rv == CKR_OK) {
				pthread_mutex_lock(&login_lock);
				rv = find_key_in(
				    s, l->label, CKO_PRIVATE_KEY, &key);
				pthread_mutex_unlock(&login_lock);
				if (rv != CKR_OK)
					p11->C_CloseSession(s);
			}
			if (rv != CKR_OK) {
				s = CK_INVALID_HANDLE;
				if (rv == CKR_TOKEN_NOT_PRESENT ||
				    rv == CKR_DEVICE_REMOVED)
					absent++;
				else {
					other++;
					other_rv = rv;
				}
				last = rv;
				nanosleep(&pause, NULL);
				continue;
			}
		}
		siglen = sizeof(sig);
		if ((rv = p11->C_SignInit(s, &mech, key)) == CKR_OK)
			rv = p11->C_Sign(
			    s, digest, sizeof(digest), sig, &siglen);
		last = rv;
		switch (rv) {
		case CKR_OK:
			ok++;
			break;
		case CKR_DEVICE_REMOVED:
		case CKR_TOKEN_NOT_PRESENT:
			removed++;
			break;
		case CKR_SESSION_HANDLE_INVALID:
		case CKR_SESSION_CLOSED:
			closed++;
			break;
		case CKR_USER_NOT_LOGGED_IN:
			relogin++;
			break;
		default:
			other++;
			other_rv = rv;
			break;
		}
		if (rv != CKR_OK) {
			p11->C_CloseSession(s);
			s = CK_INVALID_HANDLE;
		}
	}
	if (s != CK_INVALID_HANDLE)
		p11->C_CloseSession(s);
	pthread_mutex_lock(&l->lock);
	l->ok += ok;
	l->removed += removed;
	l->closed += closed;
	l->absent += absent;
	l->relogin += relogin;
	l->other += other;
	if (other_rv != CKR_OK)
		l->other_rv = other_rv;
	if (last == CKR_OK)
		l->final_ok++;
	pthread_mutex_unlock(&l->lock);
	return NULL;
}

static void
do_load(char *args)
{
	pthread_t th[32];
	struct load l;
	char *ms_s = args, *n_s, *label;
	long ms, n, i, started = 0;

	memset(&l, 0, sizeof(l));
	if ((n_s = strchr(ms_s, ' ')) == NULL ||
	    (label = strchr(n_s + 1, ' ')) == NULL) {
		printf("error usage: load MS THREADS LABEL\n");
		return;
	}
	*n_s++ = '\0';
	*label++ = '\0';
	ms = strtol(ms_s, NULL, 10);
	n = strtol(n_s, NULL, 10);
	if (ms <= 0 || n <= 0 || n > 32) {
		printf("error bad load arguments\n");
		return;
	}
	l.label = label;
	l.deadline = mono_ms() + ms;
	pthread_mutex_init(&l.lock, NULL);
	for (i = 0; i < n; i++)
		if (pthread_create(&th[i], NULL, load_thread, &l) == 0)
			started++;
	for (i = 0; i < started; i++)
		pthread_join(th[i], NULL);
	pthread_mutex_destroy(&l.lock);
	printf("load ok=%lu removed=%lu closed=%lu absent=%lu relogin=%lu "
	       "other=%lu other_rv=%s final_ok=%lu threads=%ld\n",
	    l.ok, l.removed, l.closed, l.absent, l.relogin, l.other,
	    l.other ? rvname(l.other_rv) : "-", l.final_ok, started);
}

static void
do_sign(const char *label)
{
	CK_MECHANISM mech = { CKM_ECDSA, NULL, 0 };
	CK_BYTE digest[32], sig[512];
	CK_ULONG siglen = sizeof(sig);
	CK_OBJECT_HANDLE key;
	struct timespec t0;
	CK_RV rv;

	memset(digest, 0x5a, sizeof(digest));
	clock_gettime(CLOCK_MONOTONIC, &t0);
	/* Like an agent, keep the key handle: after a logout the private key
	 * cannot be found, and C_SignInit must be the call that fails. */
	if ((rv = find_key(label, CKO_PRIVATE_KEY, &key)) == CKR_OK) {
		snprintf(cached_label, sizeof(cached_label), "%s", label);
		cached_key = key;
	} else if (strcmp(cached_label, label) == 0) {
		key = cached_key;
		rv = CKR_OK;
	}
	if (rv == CKR_OK &&
	    (rv = p11->C_SignInit(session, &mech, key)) == CKR_OK)
		rv = p11->C_Sign(session, digest, sizeof(digest), sig, &siglen);
	printf("sign %s ms=%ld siglen=%lu\n", rvname(rv), elapsed_ms(&t0),
	    rv == CKR_OK ? siglen : 0UL);
}

static void
do_attr(const char *label)
{
	CK_ATTRIBUTE a = { CKA_EC_POINT, NULL, 0 };
	CK_OBJECT_HANDLE key;
	unsigned char *buf = NULL;
	unsigned long size;
	CK_RV rv, rv2 = CKR_GENERAL_ERROR;

	if ((rv = find_key(label, CKO_PUBLIC_KEY, &key)) != CKR_OK) {
		printf("attr %s\n", rvname(rv));
		return;
	}
	rv = p11->C_GetAttributeValue(session, key, &a, 1);
	size = a.ulValueLen;
	/* The hostile-token rule: never trust the size before allocating. */
	if (rv == CKR_OK && size > 0 && size <= 4096 &&
	    (buf = calloc(1, size)) != NULL) {
		a.pValue = buf;
		rv2 = p11->C_GetAttributeValue(session, key, &a, 1);
	}
	printf("attr %s size=%ld rv2=%s len=%ld\n", rvname(rv), (long)size,
	    buf != NULL ? rvname(rv2) : "skipped",
	    buf != NULL ? (long)a.ulValueLen : -1L);
	free(buf);
}

static void
do_tokeninfo(void)
{
	CK_TOKEN_INFO ti;
	CK_RV rv = p11->C_GetTokenInfo(slot, &ti);

	if (rv != CKR_OK) {
		printf("tokeninfo %s\n", rvname(rv));
		return;
	}
	printf("tokeninfo CKR_OK pinflags=%s%s%s-\n",
	    (ti.flags & CKF_USER_PIN_COUNT_LOW) ? "count_low," : "",
	    (ti.flags & CKF_USER_PIN_FINAL_TRY) ? "final_try," : "",
	    (ti.flags & CKF_USER_PIN_LOCKED) ? "locked," : "");
}

static void
do_slotinfo(void)
{
	CK_SLOT_INFO si;
	CK_RV rv = p11->C_GetSlotInfo(slot, &si);
	int n = (int)sizeof(si.slotDescription);

	if (rv != CKR_OK) {
		printf("slotinfo %s\n", rvname(rv));
		return;
	}
	while (n > 0 && si.slotDescription[n - 1] == ' ')
		n--;
	printf("slotinfo CKR_OK present=%d removable=%d desc=\"%.*s\"\n",
	    (si.flags & CKF_TOKEN_PRESENT) ? 1 : 0,
	    (si.flags & CKF_REMOVABLE_DEVICE) ? 1 : 0, n,
	    (const char *)si.slotDescription);
}

static void
do_wait(CK_FLAGS flags, const char *name)
{
	CK_SLOT_ID s = 0;
	CK_RV rv = p11->C_WaitForSlotEvent(flags, &s, NULL);

	printf("%s %s slot=%s\n", name, rvname(rv),
	    rv == CKR_OK ? (s == slot ? "ours" : "other") : "-");
}

/* PKCS#11 3.0's CK_INTERFACE; p11-kit's 2.40 header lacks it. */
struct probe_interface {
	CK_UTF8CHAR *name;
	void *function_list;
	CK_FLAGS flags;
};

static void
do_iface(void)
{
	CK_RV (*list)(struct probe_interface *, CK_ULONG *) = NULL;
	CK_RV(*get)
	(CK_UTF8CHAR *, CK_VERSION *, struct probe_interface **, CK_FLAGS) =
	    NULL;
	struct probe_interface ifs[4], *one = NULL;
	CK_VERSION v30 = { 3, 0 };
	CK_ULONG n = 4;
	CK_FUNCTION_LIST *fl;
	CK_RV rv, rv30;

	*(void **)&list = dlsym(dl, "C_GetInterfaceList");
	*(void **)&get = dlsym(dl, "C_GetInterface");
	if (list == NULL || get == NULL) {
		printf("iface missing\n");
		return;
	}
	rv = list(ifs, &n);
	if (rv != CKR_OK || n < 1) {
		printf("iface %s\n", rvname(rv));
		return;
	}
	rv30 = get(NULL, &v30, &one, 0);
	rv = get(NULL, NULL, &one, 0);
	fl = (rv == CKR_OK && one != NULL) ? one->function_list : NULL;
	printf("iface %s count=%lu name=%s version=%d.%d v3.0=%s same=%d\n",
	    rvname(rv), n, (const char *)ifs[0].name,
	    fl != NULL ? fl->version.major : -1,
	    fl != NULL ? fl->version.minor : -1, rvname(rv30), fl == p11);
}

static int
find_slot(const char *label)
{
	CK_SLOT_ID ids[64];
	CK_ULONG n = 64, i;
	CK_TOKEN_INFO ti;
	size_t len = strlen(label);

	if (p11->C_GetSlotList(CK_TRUE, ids, &n) != CKR_OK)
		return -1;
	for (i = 0; i < n; i++) {
		if (p11->C_GetTokenInfo(ids[i], &ti) != CKR_OK)
			continue;
		if (len <= sizeof(ti.label) &&
		    memcmp(ti.label, label, len) == 0 &&
		    (len == sizeof(ti.label) || ti.label[len] == ' ')) {
			slot = ids[i];
			return 0;
		}
	}
	return -1;
}

static int
read_pin(const char *path)
{
	FILE *f = fopen(path, "re");

	if (f == NULL)
		return -1;
	pin_len = fread(pin, 1, sizeof(pin) - 1, f);
	fclose(f);
	while (pin_len > 0 && (pin[pin_len - 1] == '\n'))
		pin_len--;
	pin[pin_len] = '\0';
	return 0;
}

int
main(int argc, char **argv)
{
	CK_RV (*getfl)(CK_FUNCTION_LIST **) = NULL;
	/* Threads ("load"): without CKF_OS_LOCKING_OK a module may assume a
	 * single-threaded caller, and SoftHSM then takes no locks at all. */
	CK_C_INITIALIZE_ARGS init_args = { .flags = CKF_OS_LOCKING_OK };
	char line[256], *arg;
	CK_RV rv;

	if (argc != 4) {
		fprintf(stderr, "usage: shim_probe MODULE TOKEN PIN-FILE\n");
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	if ((dl = dlopen(argv[1], RTLD_NOW)) == NULL) {
		fprintf(stderr, "shim_probe: %s\n", dlerror());
		return 1;
	}
	*(void **)&getfl = dlsym(dl, "C_GetFunctionList");
	if (getfl == NULL || getfl(&p11) != CKR_OK ||
	    p11->C_Initialize(&init_args) != CKR_OK) {
		fprintf(stderr, "shim_probe: cannot initialise %s\n", argv[1]);
		return 1;
	}
	if (find_slot(argv[2]) != 0 || read_pin(argv[3]) != 0) {
		fprintf(stderr, "shim_probe: no token %s or no PIN file\n",
		    argv[2]);
		return 1;
	}
	printf("ready\n");
	while (fgets(line, sizeof(line), stdin) != NULL) {
		line[strcspn(line, "\r\n")] = '\0';
		arg = strchr(line, ' ');
		if (arg != NULL)
			*arg++ = '\0';
		if (strcmp(line, "quit") == 0)
			break;
		if (strcmp(line, "open") == 0) {
			rv = p11->C_OpenSession(slot,
			    CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL,
			    &session);
			printf("open %s\n", rvname(rv));
		} else if (strcmp(line, "login") == 0) {
			rv = p11->C_Login(
			    session, CKU_USER, (unsigned char *)pin, pin_len);
			printf("login %s\n", rvname(rv));
		} else if (strcmp(line, "close") == 0) {
			printf(
			    "close %s\n", rvname(p11->C_CloseSession(session)));
		} else if (strcmp(line, "sign") == 0 && arg != NULL) {
			do_sign(arg);
		} else if (strcmp(line, "iface") == 0) {
			do_iface();
		} else if (strcmp(line, "load") == 0 && arg != NULL) {
			do_load(arg);
		} else if (strcmp(line, "attr") == 0 && arg != NULL) {
			do_attr(arg);
		} else if (strcmp(line, "tokeninfo") == 0) {
			do_tokeninfo();
		} else if (strcmp(line, "slotinfo") == 0) {
			do_slotinfo();
		} else if (strcmp(line, "slots") == 0) {
			CK_ULONG n = 0;

			rv = p11->C_GetSlotList(CK_TRUE, NULL, &n);
			printf("slots %s n=%lu\n", rvname(rv), n);
		} else if (strcmp(line, "wait") == 0) {
			do_wait(0, "wait");
		} else if (strcmp(line, "waitnb") == 0) {
			do_wait(CKF_DONT_BLOCK, "waitnb");
		} else {
			printf("error unknown command\n");
		}
	}
	explicit_bzero(pin, sizeof(pin));
	p11->C_Finalize(NULL);
	return 0;
}
