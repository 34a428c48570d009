/* fingerprint.h — a short hash that tells two checkpoints apart, announced by every worker in
 * READY (docs/protocol.md §5 "Worker trust"): the broker refuses a worker whose checkpoint
 * differs from the one already serving the same model name, and the decoder refuses an encoder
 * result made from another checkpoint.
 *
 * What it covers: the bytes of config.json, then, for every tensor of the model directory in
 * sorted (canonical) name order, its name, dtype, shape and a sample of its data (the first and
 * the middle 64 bytes). An encoder (which loads the vision tower only) and a decoder (the text
 * model only) of the same directory get the same value; a fine-tune with the same shapes differs
 * in its data samples. It is a 128-bit FNV-1a pair, not a cryptographic hash: it catches mistakes
 * (a wrong directory behind a model name), not an adversary (CURVE worker keys do that).
 * Cost: one st_model_open (headers and mmap) and two small reads per tensor.
 * Not here: what the broker does with it (broker/), checkpoint loading itself (st.h). */
#ifndef HIRED_FINGERPRINT_H
#define HIRED_FINGERPRINT_H

#define HF_FINGERPRINT_LEN 32 /* hex digits */

/* Fingerprint of the model directory dir into out (32 lowercase hex digits + NUL).
 * 0 or HIRED_E* with err (config.json or the safetensors files cannot be read). */
int hf_fingerprint(const char *dir, char out[HF_FINGERPRINT_LEN + 1], char *err);

#endif
