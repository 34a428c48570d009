/* fuzz_wire.c — libFuzzer target for the wire header decoder (clang only: tests/broker.cmake).
 * Property checked per input: wire_decode never crashes, leaks or reads out of bounds; when it
 * accepts an input, wire_encode_buf accepts the decoded message and decoding that encoding
 * gives the same message back (type, id, key numbers), so the encoder and decoder agree on
 * the rules. test_wire_mutate links this file and calls the same function on the corpus and
 * on random mutations under the normal (gcc) build. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char err[HIRED_ERR_LEN];
    wire_msg_t m;
    int rc = wire_decode(data, size, NULL, &m, err);
    if (rc == 0) {
        char *buf;
        size_t len;
        if (wire_encode_buf(&m, &buf, &len, err) != 0) abort(); /* decoder accepted, encoder refuses */
        wire_msg_t m2;
        if (wire_decode(buf, len, NULL, &m2, err) != 0) abort();
        if (m2.type != m.type || strcmp(m2.id, m.id) || m2.n_visuals != m.n_visuals || m2.seq != m.seq ||
            m2.n_messages != m.n_messages || m2.params.max_tokens != m.params.max_tokens ||
            m2.timings_mask != m.timings_mask)
            abort();
        if (m.prompt && strcmp(m.prompt, m2.prompt)) abort();
        for (uint32_t i = 0; i < m.n_visuals; i++)
            if (m2.visuals[i].kept != m.visuals[i].kept ||
                memcmp(m.visuals[i].positions, m2.visuals[i].positions, (size_t)m.visuals[i].kept * 6))
                abort();
        for (uint32_t i = 0; i < m.n_messages; i++) {
            const wire_message_t *a = &m.messages[i], *b = &m2.messages[i];
            if (a->role != b->role || a->n_parts != b->n_parts) abort();
            for (uint32_t k = 0; k < a->n_parts; k++)
                if (!a->parts[k].text != !b->parts[k].text || (a->parts[k].text && strcmp(a->parts[k].text, b->parts[k].text)))
                    abort();
        }
        wire_msg_clear(&m2);
        free(buf);
    } else if (err[0] == 0) {
        abort(); /* every refusal says why */
    }
    wire_msg_clear(&m);
    return 0;
}
