/*
 * fuzz_wbuf.c - drives the wire buffer's readers over arbitrary bytes.
 * The first input byte picks a sequence of reads; whatever happens, a
 * failed read must leave the cursor unmoved (checked here, not assumed).
 */
#include <stdint.h>
#include <stdlib.h>

#include "common/wbuf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct wbuf *b, *child;
	uint8_t op, u8, *s;
	uint32_t u32;
	uint64_t u64;
	const uint8_t *sp;
	char *cs;
	size_t before, len;
	int r, i;

	if (size < 1)
		return 0;
	op = data[0];
	if ((b = wbuf_from(data + 1, size - 1)) == NULL)
		return 0;
	for (i = 0; i < 64 && wbuf_len(b) > 0; i++) {
		before = wbuf_len(b);
		child = NULL;
		s = NULL;
		cs = NULL;
		switch ((op + i) % 7) {
		case 0:
			r = wbuf_get_u8(b, &u8);
			break;
		case 1:
			r = wbuf_get_u32(b, &u32);
			break;
		case 2:
			r = wbuf_get_u64(b, &u64);
			break;
		case 3:
			r = wbuf_get_string(b, &s, &len);
			break;
		case 4:
			r = wbuf_get_cstring(b, &cs, &len);
			break;
		case 5:
			r = wbuf_get_string_direct(b, &sp, &len);
			break;
		default:
			r = wbuf_get_stringb(b, &child);
			/* a full child must yield its first field */
			if (r == 0 && wbuf_len(child) >= 4 &&
			    wbuf_get_u32(child, &u32) != 0)
				abort();
			break;
		}
		free(s);
		free(cs);
		wbuf_free(child);
		if (r != 0 && wbuf_len(b) != before)
			abort();
		if (r != 0)
			break;
	}
	wbuf_free(b);
	return 0;
}
