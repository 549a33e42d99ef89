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
 *   quit
 * The slot is found once, at start, before any fault is set.
 */
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <p11-kit/pkcs11.h>

static CK_FUNCTION_LIST *p11;
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
find_key(const char *label, CK_OBJECT_CLASS cls, CK_OBJECT_HANDLE *out)
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
	if ((rv = p11->C_FindObjectsInit(session, t, 2)) != CKR_OK)
		return rv;
	rv = p11->C_FindObjects(session, out, 1, &n);
	p11->C_FindObjectsFinal(session);
	if (rv == CKR_OK && n != 1)
		rv = CKR_KEY_HANDLE_INVALID;
	return rv;
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
	char line[256], *arg;
	void *dl;
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
	    p11->C_Initialize(NULL) != CKR_OK) {
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
