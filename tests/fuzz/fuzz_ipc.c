/* libFuzzer: IPC stream framing and event payload decoding. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ipc.h"
#include "realtimed.h"

int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ipc_hdr	 h;
	struct ipc_event ev;
	size_t		 off = 0;
	int		 rv;

	/* walk the buffer as a stream of messages, as a worker does */
	while ((rv = ipc_parse(data + off, size - off, &h)) == IPC_PARSE_OK) {
		if (sizeof(h) + h.len > size - off)
			abort();
		if (h.type == IPC_EVENT &&
		    ipc_event_split(data + off + sizeof(h), h.len, &ev) == 0) {
			/* channel, offset (8), epoch length (1), epoch, zlen (4), frames */
			if (ev.ie_chlen == 0 || ev.ie_chlen > RT_CHANNEL_MAX ||
			    ev.ie_epochlen > IPC_EPOCH_MAX ||
			    ev.ie_epoch != ev.ie_channel + ev.ie_chlen + 9 ||
			    (const uint8_t *)ev.ie_epoch + ev.ie_epochlen + 4 != ev.ie_frame ||
			    ev.ie_frame + ev.ie_framelen + ev.ie_zframelen !=
			    data + off + sizeof(h) + h.len ||
			    (ev.ie_zframelen > 0) != (ev.ie_zframe != NULL))
				abort();
		}
		off += sizeof(h) + h.len;
	}
	if (rv == IPC_PARSE_NEED_MORE && size - off >= sizeof(h) &&
	    h.len <= size - off - sizeof(h))
		abort();	/* claimed incomplete but it was all there */
	return 0;
}
