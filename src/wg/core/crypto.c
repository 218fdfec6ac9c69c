/* Adapters from the crypto libraries to the shapes WireGuard needs. Which library backs what:
 *   libsodium  X25519, ChaCha20-Poly1305 one-shot and jumbo data packets, XChaCha20-Poly1305, randomness,
 *              constant-time compare, wiping;
 *   libb2      BLAKE2s (plain and keyed);
 *   OpenSSL    HMAC-BLAKE2s (EVP_MAC, one context per thread) and, for data packets, ChaCha20
 *              and Poly1305 assembled into RFC 8439's AEAD (per-thread contexts of the default
 *              provider, called through its dispatch tables: ossl_prov.h).
 * The figures behind the split are in docs/crypto-choice.md. */
#include "wg/core/crypto.h"
#include "wg/core/ossl_prov.h"

#include <blake2.h>
#include <limits.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
	NONCE_LEN = 12,
	/* Up to this size the data path uses OpenSSL's ChaCha20 and Poly1305 from a per-thread keystream
	 * buffer (see chacha_keystream): called through the provider's dispatch tables they beat libsodium's
	 * one-shot call at every size, 16 bytes included (seal: 204 against 336 ns; 1424 bytes: 737 against
	 * 1065+ ns). Beyond it (jumbo MTUs), libsodium's one-shot call, which needs no buffer. */
	AEAD_OPENSSL_MAX_LEN = 4096 - 2 * 64,
	WG_CHACHA_BLOCK = 64,
	KEYSTREAM_BUF = AEAD_OPENSSL_MAX_LEN + 2 * WG_CHACHA_BLOCK,
	/* The kernel's granularity for the TAI64N nanoseconds: 2^24 ns (16.8 ms) hides fine timing yet stays
	 * below the 20 ms minimum between accepted initiations, so two initiations that far apart always carry
	 * strictly increasing timestamps. */
	TAI64N_NS_GRANULARITY = 1 << 24,
};

/* A library call that cannot fail with valid arguments did: continuing could emit wrong keys or
 * unauthenticated data, so stop. */
static void __attribute__((noreturn)) crypto_fatal(const char *what)
{
	fprintf(stderr, "zl-wg: fatal crypto library failure in %s\n", what);
	abort();
}

/* ---- HMAC-BLAKE2s: one EVP_MAC_CTX per thread, re-keyed per call (half the cost of HMAC()). ---- */

static pthread_once_t hmac_once = PTHREAD_ONCE_INIT;
static EVP_MAC *hmac_alg;
static pthread_key_t hmac_ctx_key;           /* frees a thread's context when the thread exits */
static __thread EVP_MAC_CTX *hmac_ctx;

static void hmac_ctx_free(void *ctx)
{
	EVP_MAC_CTX_free(ctx);
}

static void hmac_global_init(void)
{
	hmac_alg = EVP_MAC_fetch(NULL, OSSL_MAC_NAME_HMAC, NULL);
	if (pthread_key_create(&hmac_ctx_key, hmac_ctx_free) != 0)
		crypto_fatal("pthread_key_create");
}

static EVP_MAC_CTX *hmac_thread_ctx(void)
{
	if (hmac_ctx)
		return hmac_ctx;
	pthread_once(&hmac_once, hmac_global_init);
	if (!hmac_alg)
		crypto_fatal("EVP_MAC_fetch(HMAC)");
	EVP_MAC_CTX *ctx = EVP_MAC_CTX_new(hmac_alg);
	char digest[] = "BLAKE2S-256";
	OSSL_PARAM params[] = {
		OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
		OSSL_PARAM_construct_end(),
	};
	if (!ctx || !EVP_MAC_CTX_set_params(ctx, params))
		crypto_fatal("EVP_MAC_CTX_new(HMAC-BLAKE2s)");
	pthread_setspecific(hmac_ctx_key, ctx);
	hmac_ctx = ctx;
	return ctx;
}

static void hmac_compute(uint8_t out[WG_HASH_LEN], const void *key, size_t keylen, const void *in, size_t inlen)
{
	EVP_MAC_CTX *ctx = hmac_thread_ctx();
	size_t outlen = 0;
	if (!EVP_MAC_init(ctx, key, keylen, NULL) || (inlen && !EVP_MAC_update(ctx, in, inlen)) ||
	    !EVP_MAC_final(ctx, out, &outlen, WG_HASH_LEN) || outlen != WG_HASH_LEN)
		crypto_fatal("HMAC-BLAKE2s");
}

/* The reused context keeps the last key's inner and outer states; re-keying it with a constant key
 * overwrites them so no chaining-key material outlives the call. */
static void hmac_scrub(void)
{
	static const uint8_t zero_key[WG_HASH_LEN];
	if (!EVP_MAC_init(hmac_thread_ctx(), zero_key, sizeof(zero_key), NULL))
		crypto_fatal("HMAC-BLAKE2s scrub");
}

/* OpenSSL 3.0's AVX-512 Poly1305 returns with the upper halves of the vector registers still in use, and
 * every SSE instruction that follows (OpenSSL's own C code, ours, libc's) then pays a state-transition
 * penalty until something clears them: measured, that made a whole seal+open loop ~15% slower. */
static bool vector_upper_clearable;

static void clear_vector_upper_state(void)
{
#if defined(__x86_64__)
	if (vector_upper_clearable)
		__asm__ volatile("vzeroupper");
#endif
}

bool wg_crypto_init(void)
{
	if (sodium_init() < 0)
		return false;
#if defined(__x86_64__)
	vector_upper_clearable = __builtin_cpu_supports("avx");
#endif
	pthread_once(&hmac_once, hmac_global_init);
	return hmac_alg != NULL;
}

/* ---- Randomness, comparison, wiping ---- */

void wg_random_bytes(void *buf, size_t len)
{
	randombytes_buf(buf, len);
}

uint32_t wg_random_u32(void)
{
	return randombytes_random();
}

uint64_t wg_random_below(uint64_t bound)
{
	if (bound <= 1)
		return 0;
	if (bound <= UINT32_MAX)
		return randombytes_uniform((uint32_t)bound);
	/* Rejection sampling: drop the top partial range so every residue is equally likely. */
	uint64_t limit = UINT64_MAX - UINT64_MAX % bound, v;
	do
		randombytes_buf(&v, sizeof(v));
	while (v >= limit);
	return v % bound;
}

bool wg_ct_equal(const void *a, const void *b, size_t len)
{
	return sodium_memcmp(a, b, len) == 0;
}

bool wg_ct_is_zero(const void *a, size_t len)
{
	return sodium_is_zero(a, len) == 1;
}

void wg_wipe(void *buf, size_t len)
{
	sodium_memzero(buf, len);
}

/* ---- BLAKE2s, HMAC, HKDF ---- */

void wg_blake2s(uint8_t *out, size_t outlen, const void *in, size_t inlen, const void *key, size_t keylen)
{
	if (blake2s(out, in, key, outlen, inlen, keylen) != 0)
		crypto_fatal("blake2s");
}

void wg_blake2s_concat(uint8_t out[WG_HASH_LEN], const void *a, size_t alen, const void *b, size_t blen)
{
	blake2s_state s;
	/* Streaming, so out may alias a or b: it is written only after both were absorbed. */
	if (blake2s_init(&s, WG_HASH_LEN) != 0 || blake2s_update(&s, a, alen) != 0 ||
	    blake2s_update(&s, b, blen) != 0 || blake2s_final(&s, out, WG_HASH_LEN) != 0)
		crypto_fatal("blake2s_concat");
	wg_wipe(&s, sizeof(s));
}

void wg_hmac_blake2s(uint8_t out[WG_HASH_LEN], const void *key, size_t keylen, const void *in, size_t inlen)
{
	hmac_compute(out, key, keylen, in, inlen);
	hmac_scrub();
}

void wg_kdf(uint8_t *t1, uint8_t *t2, uint8_t *t3, const uint8_t ck[WG_HASH_LEN], const void *in, size_t inlen)
{
	uint8_t prk[WG_HASH_LEN], t[3][WG_HASH_LEN], block[WG_HASH_LEN + 1];
	int n = t3 ? 3 : t2 ? 2 : t1 ? 1 : 0;

	/* Extract, then expand: t_i = HMAC(prk, t_{i-1} || i) with t_0 empty. Results are staged locally and
	 * copied out last, so an output may alias ck or in. */
	hmac_compute(prk, ck, WG_HASH_LEN, in, inlen);
	for (int i = 0; i < n; i++) {
		size_t blen = 0;
		if (i > 0) {
			memcpy(block, t[i - 1], WG_HASH_LEN);
			blen = WG_HASH_LEN;
		}
		block[blen++] = (uint8_t)(i + 1);
		hmac_compute(t[i], prk, WG_HASH_LEN, block, blen);
	}
	hmac_scrub();
	uint8_t *outs[3] = { t1, t2, t3 };
	for (int i = 0; i < n; i++)
		if (outs[i])
			memcpy(outs[i], t[i], WG_HASH_LEN);
	wg_wipe(prk, sizeof(prk));
	wg_wipe(t, sizeof(t));
	wg_wipe(block, sizeof(block));
}

/* ---- X25519 ---- */

bool wg_x25519(uint8_t out[WG_KEY_LEN], const uint8_t scalar[WG_KEY_LEN], const uint8_t point[WG_KEY_LEN])
{
	/* libsodium refuses (returns -1) when the shared secret is all zero, i.e. point has low order. */
	if (crypto_scalarmult_curve25519(out, scalar, point) != 0) {
		wg_wipe(out, WG_KEY_LEN);
		return false;
	}
	return true;
}

void wg_x25519_public(uint8_t pub[WG_KEY_LEN], const uint8_t priv[WG_KEY_LEN])
{
	if (crypto_scalarmult_curve25519_base(pub, priv) != 0)
		crypto_fatal("x25519 base");
}

void wg_clamp_private_key(uint8_t key[WG_KEY_LEN])
{
	key[0] &= 248;
	key[31] = (uint8_t)((key[31] & 127) | 64);
}

void wg_x25519_generate(uint8_t priv[WG_KEY_LEN], uint8_t pub[WG_KEY_LEN])
{
	wg_random_bytes(priv, WG_KEY_LEN);
	wg_clamp_private_key(priv);
	wg_x25519_public(pub, priv);
}

/* ---- ChaCha20-Poly1305 ---- */

/* WireGuard's 96-bit nonce: 32 zero bits, then the 64-bit counter little-endian. */
static void make_nonce(uint8_t nonce[NONCE_LEN], uint64_t counter)
{
	memset(nonce, 0, 4);
	wg_put_le64(nonce + 4, counter);
}

void wg_aead_seal(uint8_t *dst, const uint8_t *src, size_t srclen, const uint8_t *ad, size_t adlen,
		  uint64_t counter, const uint8_t key[WG_KEY_LEN])
{
	uint8_t nonce[NONCE_LEN];
	make_nonce(nonce, counter);
	crypto_aead_chacha20poly1305_ietf_encrypt(dst, NULL, src, srclen, ad, adlen, NULL, nonce, key);
}

bool wg_aead_open(uint8_t *dst, const uint8_t *src, size_t srclen, const uint8_t *ad, size_t adlen,
		  uint64_t counter, const uint8_t key[WG_KEY_LEN])
{
	uint8_t nonce[NONCE_LEN];
	if (srclen < WG_AEAD_TAG_LEN)
		return false;
	make_nonce(nonce, counter);
	return crypto_aead_chacha20poly1305_ietf_decrypt(dst, NULL, NULL, src, srclen, ad, adlen, nonce, key) == 0;
}

void wg_xaead_seal(uint8_t *dst, const uint8_t *src, size_t srclen, const uint8_t *ad, size_t adlen,
		   const uint8_t nonce[WG_COOKIE_NONCE_LEN], const uint8_t key[WG_KEY_LEN])
{
	crypto_aead_xchacha20poly1305_ietf_encrypt(dst, NULL, src, srclen, ad, adlen, NULL, nonce, key);
}

bool wg_xaead_open(uint8_t *dst, const uint8_t *src, size_t srclen, const uint8_t *ad, size_t adlen,
		   const uint8_t nonce[WG_COOKIE_NONCE_LEN], const uint8_t key[WG_KEY_LEN])
{
	if (srclen < WG_AEAD_TAG_LEN)
		return false;
	return crypto_aead_xchacha20poly1305_ietf_decrypt(dst, NULL, NULL, src, srclen, ad, adlen, nonce, key) == 0;
}

/* ---- Per-keypair AEAD for the data path ----
 * A keypair holds only its key bytes, so any number of crypto worker threads can use it at once. Each
 * thread keeps its own OpenSSL contexts: a ChaCha20 stream cipher keyed with the last key this thread
 * used (re-keyed only when a packet of another session comes, the IV alone is re-set per packet) and a
 * Poly1305 MAC. RFC 8439's construction is assembled from the two (keystream block 0 is the one-time
 * Poly1305 key, the data is encrypted from block 1 on), because OpenSSL's combined ChaCha20-Poly1305 pays
 * about 0.5 us per packet in provider dispatch (key and IV parameter lookups, tag control calls): for
 * 1420-byte packets the two separate contexts take about 25% less time (1.1-1.2 us instead of 1.5), and
 * drawing the packet's whole keystream in one call (chacha_keystream) another 15% (0.95 us). Calling
 * the provider's functions without EVP's per-call lookups (ossl_prov.h) took another 10% (0.74 us). */

struct aead_thread {
	void *chacha;               /* the provider's ChaCha20 context */
	void *poly;                 /* the provider's Poly1305 context */
	uint8_t keystream[KEYSTREAM_BUF];
	uint8_t key[WG_KEY_LEN];    /* the key chacha holds (valid when keyed) */
	bool keyed;
};

static const uint8_t keystream_zeros[KEYSTREAM_BUF];  /* what ChaCha20 "encrypts" into its keystream */
static pthread_once_t aead_once = PTHREAD_ONCE_INIT;
static pthread_key_t aead_ctx_key;           /* frees a thread's contexts when the thread exits */
static __thread struct aead_thread *aead_ctx;

static void aead_ctx_free(void *arg)
{
	struct aead_thread *t = arg;

	wg_prov_chacha_free(t->chacha);
	wg_prov_poly_free(t->poly);
	wg_wipe(t, sizeof(*t));
	free(t);
}

static void aead_global_init(void)
{
	if (!wg_prov_init())
		crypto_fatal("OpenSSL's default provider: ChaCha20 and Poly1305");
	if (pthread_key_create(&aead_ctx_key, aead_ctx_free) != 0)
		crypto_fatal("pthread_key_create");
}

static struct aead_thread *aead_thread_ctx(void)
{
	struct aead_thread *t = aead_ctx;

	if (t)
		return t;
	pthread_once(&aead_once, aead_global_init);
	t = calloc(1, sizeof(*t));
	if (!t)
		crypto_fatal("aead context");
	t->chacha = wg_prov_chacha_new();
	t->poly = wg_prov_poly_new();
	if (!t->chacha || !t->poly)
		crypto_fatal("ChaCha20/Poly1305 contexts");
	pthread_setspecific(aead_ctx_key, t);
	aead_ctx = t;
	return t;
}

bool wg_aead_key_init(struct wg_aead_key *k, const uint8_t key[WG_KEY_LEN])
{
	memcpy(k->key, key, WG_KEY_LEN);
	k->is_set = true;
	return true;
}

void wg_aead_key_clear(struct wg_aead_key *k)
{
	wg_wipe(k->key, sizeof(k->key));
	k->is_set = false;
}

/* Constant-time equality of two 16- or 32-byte values, a word at a time: sodium_memcmp's byte loop
 * showed up at 2% of a data-path profile, called twice per packet. */
static bool words_equal(const uint8_t *a, const uint8_t *b, size_t len)
{
	uint64_t diff = 0;

	for (size_t i = 0; i < len; i += 8) {
		uint64_t x, y;

		memcpy(&x, a + i, 8);
		memcpy(&y, b + i, 8);
		diff |= x ^ y;
	}
	return diff == 0;
}

/* Starts the keystream of one packet: OpenSSL's ChaCha20 IV is the 32-bit block counter (little-endian,
 * 0 here) followed by the 96-bit nonce. Block 0 gives the one-time Poly1305 key; the cipher then stands at
 * block 1, where RFC 8439 starts encrypting. */
static bool chacha_start(struct aead_thread *t, const uint8_t key[WG_KEY_LEN], const uint8_t nonce[NONCE_LEN])
{
	uint8_t iv[16] = { 0 };
	bool rekey = !t->keyed || !words_equal(t->key, key, WG_KEY_LEN);

	memcpy(iv + 4, nonce, NONCE_LEN);
	if (!wg_prov_chacha_start(t->chacha, rekey ? key : NULL, iv))
		return false;
	if (rekey) {
		memcpy(t->key, key, WG_KEY_LEN);
		t->keyed = true;
	}
	return true;
}

/* The keystream of a whole packet, block 0 (the Poly1305 key) included, in ONE call on whole blocks:
 * OpenSSL's AVX-512 ChaCha20 works in 16-block strides, so a separate call for block 0 and a partial
 * last block each cost about as much as a full stride (1420 bytes: 1.12 us sealed the other way, 0.95
 * us this way). The caller XORs the stream into the data; the cipher itself stays OpenSSL's. */
static size_t keystream_len(size_t len)
{
	return WG_CHACHA_BLOCK + ((len + WG_CHACHA_BLOCK - 1) & ~(size_t)(WG_CHACHA_BLOCK - 1));
}

static bool chacha_keystream(struct aead_thread *t, const uint8_t key[WG_KEY_LEN], const uint8_t nonce[NONCE_LEN],
			     size_t len)
{
	return chacha_start(t, key, nonce) &&
	       wg_prov_chacha_update(t->chacha, t->keystream, keystream_zeros, keystream_len(len));
}

typedef uint64_t xor_lanes __attribute__((vector_size(32)));

/* 64 bytes per round in vector lanes, with AVX2 where the CPU has it (explicit dispatch: clang 14 does
 * not emit target_clones' resolver reliably): word by word this loop cost 1.3% of a data-path profile. */
static inline __attribute__((always_inline)) void xor_lanes_run(uint8_t *dst, const uint8_t *src,
								 const uint8_t *stream, size_t len)
{
	size_t i = 0;

	for (; i + 64 <= len; i += 64) {
		xor_lanes a, b, c, d;

		memcpy(&a, src + i, 32);
		memcpy(&b, src + i + 32, 32);
		memcpy(&c, stream + i, 32);
		memcpy(&d, stream + i + 32, 32);
		a ^= c;
		b ^= d;
		memcpy(dst + i, &a, 32);
		memcpy(dst + i + 32, &b, 32);
	}
	for (; i < len; i++)
		dst[i] = src[i] ^ stream[i];
}

#if defined(__x86_64__)
static __attribute__((target("avx2"))) void xor_keystream_avx2(uint8_t *dst, const uint8_t *src,
								 const uint8_t *stream, size_t len)
{
	xor_lanes_run(dst, src, stream, len);
}
#endif

static void xor_keystream(uint8_t *dst, const uint8_t *src, const uint8_t *stream, size_t len)
{
#if defined(__x86_64__)
	if (__builtin_cpu_supports("avx2")) {
		xor_keystream_avx2(dst, src, stream, len);
		return;
	}
#endif
	xor_lanes_run(dst, src, stream, len);
}

/* Poly1305 over the ciphertext as RFC 8439 lays it out with no associated data: the ciphertext, zero
 * padding to 16 bytes, then the two lengths (AD 0, ciphertext len) as little-endian 64-bit words. */
static bool poly_tag(struct aead_thread *t, const uint8_t poly_key[32], const uint8_t *ct, size_t len,
		     uint8_t tag[WG_AEAD_TAG_LEN])
{
	uint8_t tail[15 + 16] = { 0 };
	size_t pad = (16 - len % 16) % 16;

	wg_put_le64(tail + pad, 0);
	wg_put_le64(tail + pad + 8, len);
	if (!wg_prov_poly_init(t->poly, poly_key) || !wg_prov_poly_update(t->poly, ct, len) ||
	    !wg_prov_poly_update(t->poly, tail, pad + 16))
		return false;
	/* The SSE code of the final step would pay for the state the vectorized update left behind. */
	clear_vector_upper_state();
	return wg_prov_poly_final(t->poly, tag);
}

static void end_ossl_call(struct aead_thread *t, size_t len)
{
	clear_vector_upper_state();
	wg_wipe(t->keystream, keystream_len(len));
}

static bool ossl_seal(const uint8_t key[WG_KEY_LEN], const uint8_t nonce[NONCE_LEN], uint8_t *dst, const uint8_t *src,
		     size_t len)
{
	struct aead_thread *t = aead_thread_ctx();
	bool ok = chacha_keystream(t, key, nonce, len);

	if (ok) {
		xor_keystream(dst, src, t->keystream + WG_CHACHA_BLOCK, len);
		ok = poly_tag(t, t->keystream, dst, len, dst + len);
	}
	end_ossl_call(t, len);
	return ok;
}

/* The tag is checked before anything is decrypted, so a forgery never produces plaintext. */
static bool ossl_open(const uint8_t key[WG_KEY_LEN], const uint8_t nonce[NONCE_LEN], uint8_t *dst, const uint8_t *src,
		     size_t plen)
{
	struct aead_thread *t = aead_thread_ctx();
	uint8_t tag[WG_AEAD_TAG_LEN];
	bool ok = chacha_keystream(t, key, nonce, plen) && poly_tag(t, t->keystream, src, plen, tag) &&
		  words_equal(tag, src + plen, WG_AEAD_TAG_LEN);

	if (ok)
		xor_keystream(dst, src, t->keystream + WG_CHACHA_BLOCK, plen);
	end_ossl_call(t, plen);
	return ok;
}

bool wg_aead_key_seal(const struct wg_aead_key *k, uint64_t counter, uint8_t *dst, const uint8_t *src, size_t len)
{
	uint8_t nonce[NONCE_LEN];
	if (!k->is_set || len > INT_MAX - WG_AEAD_TAG_LEN)
		return false;
	make_nonce(nonce, counter);
	if (len <= AEAD_OPENSSL_MAX_LEN)
		return ossl_seal(k->key, nonce, dst, src, len);
	return crypto_aead_chacha20poly1305_ietf_encrypt_detached(dst, dst + len, NULL, src, len, NULL, 0, NULL,
								   nonce, k->key) == 0;
}

bool wg_aead_key_open(const struct wg_aead_key *k, uint64_t counter, uint8_t *dst, const uint8_t *src, size_t len)
{
	uint8_t nonce[NONCE_LEN];
	if (!k->is_set || len < WG_AEAD_TAG_LEN || len > INT_MAX)
		return false;
	size_t plen = len - WG_AEAD_TAG_LEN;
	make_nonce(nonce, counter);
	if (plen > AEAD_OPENSSL_MAX_LEN)
		return crypto_aead_chacha20poly1305_ietf_decrypt_detached(dst, NULL, src, plen, src + plen, NULL, 0,
									   nonce, k->key) == 0;
	if (ossl_open(k->key, nonce, dst, src, plen))
		return true;
	/* Nothing was decrypted; out of place, dst must not keep an older packet's plaintext either. */
	wg_wipe(dst, plen);
	return false;
}

/* ---- TAI64N ---- */

void wg_tai64n(uint8_t out[WG_TIMESTAMP_LEN], uint64_t wall_ns)
{
	uint64_t secs = wall_ns / WG_NSEC_PER_SEC + (1ULL << 62) + 10;
	uint32_t nsecs = (uint32_t)(wall_ns % WG_NSEC_PER_SEC) & ~(uint32_t)(TAI64N_NS_GRANULARITY - 1);
	for (int i = 0; i < 8; i++)
		out[i] = (uint8_t)(secs >> (56 - 8 * i));
	for (int i = 0; i < 4; i++)
		out[8 + i] = (uint8_t)(nsecs >> (24 - 8 * i));
}

void wg_crypto_jobs_run(struct wg_crypto_job *jobs, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		struct wg_crypto_job *j = &jobs[i];
		j->ok = j->seal ? wg_aead_key_seal(j->key, j->counter, j->data, j->data, j->len)
				: wg_aead_key_open(j->key, j->counter, j->data, j->data, j->len);
	}
}
