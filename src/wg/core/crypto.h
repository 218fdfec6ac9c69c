/* Thin wrappers over the crypto libraries (libsodium, OpenSSL libcrypto, libb2). No primitive is
 * implemented here: this file only adapts the libraries to the shapes the protocol needs, so the choice
 * of library lives in one place (see README, "Design"). */
#ifndef WG_CRYPTO_H
#define WG_CRYPTO_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "wg/core/messages.h"

/* Must be called once before any other function (initializes libsodium); returns false on failure. */
bool wg_crypto_init(void);

void wg_random_bytes(void *buf, size_t len);
uint32_t wg_random_u32(void);
/* Uniform in [0, bound). */
uint64_t wg_random_below(uint64_t bound);

/* Constant-time comparison; true when equal. */
bool wg_ct_equal(const void *a, const void *b, size_t len);
/* True when every byte is zero, in constant time. */
bool wg_ct_is_zero(const void *a, size_t len);
/* Wipes secrets in a way the compiler cannot elide. */
void wg_wipe(void *buf, size_t len);

/* BLAKE2s (RFC 7693). outlen 1..32; key may be NULL when keylen is 0. */
void wg_blake2s(uint8_t *out, size_t outlen, const void *in, size_t inlen, const void *key, size_t keylen);
/* BLAKE2s-256 of the concatenation a || b (the Noise MixHash shape). */
void wg_blake2s_concat(uint8_t out[WG_HASH_LEN], const void *a, size_t alen, const void *b, size_t blen);
/* HMAC-BLAKE2s (block 64, output 32) as used by WireGuard's HKDF. */
void wg_hmac_blake2s(uint8_t out[WG_HASH_LEN], const void *key, size_t keylen, const void *in, size_t inlen);
/* HKDF with HMAC-BLAKE2s: derives up to three 32-byte outputs from chaining key ck and input. Any output
 * pointer may be NULL. */
void wg_kdf(uint8_t *t1, uint8_t *t2, uint8_t *t3, const uint8_t ck[WG_HASH_LEN], const void *in, size_t inlen);

/* X25519. Returns false when the result is all zeros (a low-order point), which must be refused. */
bool wg_x25519(uint8_t out[WG_KEY_LEN], const uint8_t scalar[WG_KEY_LEN], const uint8_t point[WG_KEY_LEN]);
void wg_x25519_public(uint8_t pub[WG_KEY_LEN], const uint8_t priv[WG_KEY_LEN]);
void wg_x25519_generate(uint8_t priv[WG_KEY_LEN], uint8_t pub[WG_KEY_LEN]);
void wg_clamp_private_key(uint8_t key[WG_KEY_LEN]);

/* One-shot ChaCha20-Poly1305 (RFC 8439) with WireGuard's nonce: 4 zero bytes || counter (LE u64).
 * dst receives srclen + 16 bytes on seal; open returns false when authentication fails. */
void wg_aead_seal(uint8_t *dst, const uint8_t *src, size_t srclen, const uint8_t *ad, size_t adlen,
		  uint64_t counter, const uint8_t key[WG_KEY_LEN]);
bool wg_aead_open(uint8_t *dst, const uint8_t *src, size_t srclen, const uint8_t *ad, size_t adlen,
		  uint64_t counter, const uint8_t key[WG_KEY_LEN]);

/* XChaCha20-Poly1305 with a 24-byte nonce, for cookie replies. */
void wg_xaead_seal(uint8_t *dst, const uint8_t *src, size_t srclen, const uint8_t *ad, size_t adlen,
		   const uint8_t nonce[WG_COOKIE_NONCE_LEN], const uint8_t key[WG_KEY_LEN]);
bool wg_xaead_open(uint8_t *dst, const uint8_t *src, size_t srclen, const uint8_t *ad, size_t adlen,
		   const uint8_t nonce[WG_COOKIE_NONCE_LEN], const uint8_t key[WG_KEY_LEN]);

/* A transport-data key. It holds only the key bytes: seal and open may run on any number of threads at
 * once (each thread keeps its own library context), which is what lets crypto workers share a session.
 * Owned by its keypair; wg_aead_key_clear wipes it. */
struct wg_aead_key {
	uint8_t key[WG_KEY_LEN];
	bool is_set;
};
bool wg_aead_key_init(struct wg_aead_key *k, const uint8_t key[WG_KEY_LEN]);
void wg_aead_key_clear(struct wg_aead_key *k);
/* Encrypts len bytes of src into dst (dst may equal src) and appends the 16-byte tag at dst + len. */
bool wg_aead_key_seal(const struct wg_aead_key *k, uint64_t counter, uint8_t *dst, const uint8_t *src, size_t len);
/* Decrypts len bytes (ciphertext including the tag) into dst (may equal src); false on a bad tag. */
bool wg_aead_key_open(const struct wg_aead_key *k, uint64_t counter, uint8_t *dst, const uint8_t *src, size_t len);

/* One independent AEAD operation of a batch, in place: seal len bytes at data (the tag is appended), or
 * open len bytes of ciphertext including its tag. The data path collects a batch of these and lets the
 * I/O layer run them on several threads (wg_io_ops.run_crypto_jobs); ok holds the result. */
struct wg_crypto_job {
	const struct wg_aead_key *key;
	uint64_t counter;
	uint8_t *data;
	size_t len;
	bool seal;
	bool ok;
};
void wg_crypto_jobs_run(struct wg_crypto_job *jobs, size_t n);

/* TAI64N timestamp of a wall-clock time in nanoseconds since the Unix epoch (12 bytes, big-endian). */
void wg_tai64n(uint8_t out[WG_TIMESTAMP_LEN], uint64_t wall_ns);
#endif
