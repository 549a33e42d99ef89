/*
 * fuzz_dispatch.c - libFuzzer target for the agent's dispatcher
 * (style.md section 7): the input is a stream of frames (u32 length +
 * message), fed to dispatch_message() on one simulated connection, so
 * HELLO state carries across messages.  Every reply must be exactly one
 * well-formed frame.  No socket, no token (empty keystore).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DISPATCH_INTERNAL
#include "agent/dispatch.h"
#include "agent/keystore.h"
#include "agent/policy.h"
#include "common/log.h"
#include "common/proto.h"
#include "common/wbuf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct dispatch_ctx *ctx;
static struct keystore *ks;
static struct policy *pol;

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct agent_peer peer;
	struct wbuf *rep;
	uint32_t len, rlen;
	size_t off = 0;

	if (ctx == NULL) {
		ts_log_init("fuzz_dispatch", TS_LOG_QUIET, 0);
		ks = keystore_new();
		pol = policy_new(getuid());
		if (ks == NULL || pol == NULL ||
		    (ctx = dispatch_ctx_new(ks, pol, NULL)) == NULL)
			abort();
		dispatch_set_test_mode(ctx, 1);
	}
	memset(&peer, 0, sizeof(peer));
	peer.transport = PEER_TEST;
	if ((rep = wbuf_new(TS_PROTO_MAX_FRAME + TS_PROTO_LEN_SIZE)) == NULL)
		abort();
	while (size - off >= 4) {
		len = (uint32_t)data[off] << 24 |
		    (uint32_t)data[off + 1] << 16 |
		    (uint32_t)data[off + 2] << 8 | data[off + 3];
		off += 4;
		/* A length past the input is a truncated frame: feed it all. */
		if (len > size - off)
			len = (uint32_t)(size - off);
		wbuf_reset(rep);
		if (dispatch_message(ctx, &peer, data + off, len, rep) != 0)
			abort();
		if (wbuf_peek_u32(rep, 0, &rlen) != 0 || rlen == 0 ||
		    rlen > TS_PROTO_MAX_FRAME || rlen + 4 != wbuf_len(rep))
			abort();
		off += len;
	}
	wbuf_free(rep);
	return 0;
}
