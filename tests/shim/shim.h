/*
 * shim.h - internals shared by the fault-injecting PKCS#11 shim's two files
 * (control.c parses the control file, shim.c wraps the target module).
 *
 * The shim is a test tool (style.md section 7: "the one allowed fake"): it
 * passes every call through to a real module (SoftHSM) and, on command,
 * makes the token vanish, closes sessions, delays or hangs signatures,
 * reports PIN-count flags, lies about attribute lengths and counts calls.
 * The control-file format is in docs/internals/shim.md.
 */
#ifndef TS_TESTS_SHIM_H
#define TS_TESTS_SHIM_H

#include <stddef.h>

#include <p11-kit/pkcs11.h>

/* Every entry point, for the call counters and "fail.C_xxx" injection. */
#define SHIM_FUNCTIONS(X)        \
	X(C_Initialize)          \
	X(C_Finalize)            \
	X(C_GetInfo)             \
	X(C_GetFunctionList)     \
	X(C_GetSlotList)         \
	X(C_GetSlotInfo)         \
	X(C_GetTokenInfo)        \
	X(C_GetMechanismList)    \
	X(C_GetMechanismInfo)    \
	X(C_InitToken)           \
	X(C_InitPIN)             \
	X(C_SetPIN)              \
	X(C_OpenSession)         \
	X(C_CloseSession)        \
	X(C_CloseAllSessions)    \
	X(C_GetSessionInfo)      \
	X(C_GetOperationState)   \
	X(C_SetOperationState)   \
	X(C_Login)               \
	X(C_Logout)              \
	X(C_CreateObject)        \
	X(C_CopyObject)          \
	X(C_DestroyObject)       \
	X(C_GetObjectSize)       \
	X(C_GetAttributeValue)   \
	X(C_SetAttributeValue)   \
	X(C_FindObjectsInit)     \
	X(C_FindObjects)         \
	X(C_FindObjectsFinal)    \
	X(C_EncryptInit)         \
	X(C_Encrypt)             \
	X(C_EncryptUpdate)       \
	X(C_EncryptFinal)        \
	X(C_DecryptInit)         \
	X(C_Decrypt)             \
	X(C_DecryptUpdate)       \
	X(C_DecryptFinal)        \
	X(C_DigestInit)          \
	X(C_Digest)              \
	X(C_DigestUpdate)        \
	X(C_DigestKey)           \
	X(C_DigestFinal)         \
	X(C_SignInit)            \
	X(C_Sign)                \
	X(C_SignUpdate)          \
	X(C_SignFinal)           \
	X(C_SignRecoverInit)     \
	X(C_SignRecover)         \
	X(C_VerifyInit)          \
	X(C_Verify)              \
	X(C_VerifyUpdate)        \
	X(C_VerifyFinal)         \
	X(C_VerifyRecoverInit)   \
	X(C_VerifyRecover)       \
	X(C_DigestEncryptUpdate) \
	X(C_DecryptDigestUpdate) \
	X(C_SignEncryptUpdate)   \
	X(C_DecryptVerifyUpdate) \
	X(C_GenerateKey)         \
	X(C_GenerateKeyPair)     \
	X(C_WrapKey)             \
	X(C_UnwrapKey)           \
	X(C_DeriveKey)           \
	X(C_SeedRandom)          \
	X(C_GenerateRandom)      \
	X(C_GetFunctionStatus)   \
	X(C_CancelFunction)      \
	X(C_WaitForSlotEvent)    \
	X(C_GetInterfaceList)    \
	X(C_GetInterface)

#define SHIM_FN_ENUM(name) FN_##name,
enum shim_fn { SHIM_FUNCTIONS(SHIM_FN_ENUM) FN_MAX };
#undef SHIM_FN_ENUM

/* How C_GetAttributeValue lies (the "hostile token" tests). */
enum shim_bogus {
	BOGUS_NONE = 0,
	BOGUS_HUGE, /* length 0x7fffffff; data call: BUFFER_TOO_SMALL */
	BOGUS_ZERO, /* length 0 in both calls */
	BOGUS_UNAVAILABLE, /* CK_UNAVAILABLE_INFORMATION with CKR_OK */
	BOGUS_OVERLONG, /* data call claims 4096 bytes more than fit */
	BOGUS_TRUNCATE, /* data call returns one byte less */
};

#define SHIM_MAX_SECTIONS      16
#define SHIM_MAX_FAILS	       8
#define SHIM_MAX_ATTR_TYPES    16
#define SHIM_DESC_LEN	       64 /* CK_SLOT_INFO.slotDescription */
#define SHIM_LABEL_LEN	       32 /* CK_TOKEN_INFO.label */
#define SHIM_PATH_MAX	       1024
#define SHIM_CONTROL_MAX       65536 /* bytes read from the control file */
#define SHIM_MAX_CONTROL_FILES 4

struct shim_fail {
	enum shim_fn fn;
	CK_RV rv;
};

/* The settings in force for one slot (or for calls naming no slot). */
struct shim_slotcfg {
	int present;
	CK_RV removed_rv; /* session calls while absent */
	CK_RV closed_rv; /* calls on a session the shim closed */
	unsigned long close_sessions; /* counter: a change closes sessions */
	unsigned long not_logged_in; /* counter: a change logs out once */
	enum shim_fn not_logged_in_at; /* where the one error lands */
	unsigned long sign_delay_ms;
	unsigned long info_delay_ms; /* C_GetSlotInfo, C_GetTokenInfo */
	int sign_hang;
	int hang;
	CK_FLAGS pin_flags;
	int removable;
	int has_desc;
	char slot_description[SHIM_DESC_LEN + 1];
	enum shim_bogus bogus_attr;
	size_t nbogus_types;
	CK_ATTRIBUTE_TYPE bogus_types[SHIM_MAX_ATTR_TYPES];
	size_t nfails;
	struct shim_fail fails[SHIM_MAX_FAILS];
};

enum shim_sel { SEL_ALL, SEL_SLOT, SEL_TOKEN };

struct shim_section {
	enum shim_sel sel;
	CK_SLOT_ID slot;
	char label[SHIM_LABEL_LEN + 1];
	unsigned long set; /* which fields of v this section sets */
	struct shim_slotcfg v;
};

struct shim_cfg {
	size_t nsec; /* sec[0] is the unnamed top section */
	struct shim_section sec[SHIM_MAX_SECTIONS];
	char stats[SHIM_PATH_MAX];
	int slot_events;
	unsigned long poll_ms;
};

/* Fills cfg with the built-in defaults (token present, no faults). */
void shim_cfg_defaults(struct shim_cfg *cfg);

/*
 * Parses control-file text into cfg (after shim_cfg_defaults).  Returns 0,
 * or -1 with a message naming the line in err.
 */
int shim_cfg_parse(const char *text, size_t len, struct shim_cfg *cfg,
    char *err, size_t errlen);

/*
 * Starts the next control file: opens an "[all]" section, so that a file
 * never continues the section the previous one ended in.  Returns 0, or -1
 * when no section is left.
 */
int shim_cfg_next_file(struct shim_cfg *cfg);

/*
 * The effective settings for a slot: defaults, then every section that
 * matches slot id or token label, in file order.  have_slot = 0 (calls
 * that name no slot) applies the top section and "[all]" sections only.
 */
void shim_cfg_resolve(const struct shim_cfg *cfg, int have_slot,
    CK_SLOT_ID slot, const char *label, struct shim_slotcfg *out);

/* Name of an entry point (for the stats file). */
const char *shim_fn_name(enum shim_fn fn);

/* Name of a CKR_* value, or NULL when the shim's table lacks it. */
const char *shim_rv_name(CK_RV rv);

#endif /* TS_TESTS_SHIM_H */
