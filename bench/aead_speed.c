/* ChaCha20-Poly1305 (IETF) throughput: libsodium one-shot detached calls vs. OpenSSL EVP with a context
 * created once per key and only the nonce re-set per packet, the shape the transport-data path needs.
 * Standalone, not built by the Makefile (the figures feed docs/crypto-choice.md):
 *   cc -O2 -std=gnu11 -o /tmp/aead_speed bench/aead_speed.c -lsodium -lcrypto && /tmp/aead_speed */
#include <openssl/evp.h>
#include <sodium.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { TAG_LEN = 16, NONCE_LEN = 12, MAX_LEN = 8192 };

/* The required sizes plus a few in between, to locate the crossover. */
static const size_t sizes[] = { 64, 128, 256, 512, 1024, 1420, 8192 };
static const double run_seconds = 0.2;
enum { REPEATS = 3 }; /* best of, since a shared VM is noisy */

static uint8_t key[32];
static uint8_t buf[MAX_LEN + TAG_LEN];
static uint8_t out[MAX_LEN + TAG_LEN];

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* WireGuard's nonce layout: 4 zero bytes, then the counter little-endian. */
static void make_nonce(uint8_t nonce[NONCE_LEN], uint64_t counter)
{
	memset(nonce, 0, 4);
	for (int i = 0; i < 8; i++)
		nonce[4 + i] = (uint8_t)(counter >> (8 * i));
}

static bool sodium_seal(void *ctx, uint64_t ctr, size_t len)
{
	uint8_t nonce[NONCE_LEN];
	(void)ctx;
	make_nonce(nonce, ctr);
	crypto_aead_chacha20poly1305_ietf_encrypt_detached(out, out + len, NULL, buf, len, NULL, 0, NULL, nonce, key);
	return true;
}

static bool sodium_open(void *ctx, uint64_t ctr, size_t len)
{
	uint8_t nonce[NONCE_LEN];
	(void)ctx;
	make_nonce(nonce, ctr);
	return crypto_aead_chacha20poly1305_ietf_decrypt_detached(buf, NULL, out, len, out + len, NULL, 0, nonce,
								   key) == 0;
}

static bool ossl_seal(void *ctx, uint64_t ctr, size_t len)
{
	uint8_t nonce[NONCE_LEN];
	int n = 0, fin = 0;
	make_nonce(nonce, ctr);
	return EVP_EncryptInit_ex(ctx, NULL, NULL, NULL, nonce) == 1 &&
	       EVP_EncryptUpdate(ctx, out, &n, buf, (int)len) == 1 &&
	       EVP_EncryptFinal_ex(ctx, out + n, &fin) == 1 &&
	       EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, TAG_LEN, out + len) == 1;
}

static bool ossl_open(void *ctx, uint64_t ctr, size_t len)
{
	uint8_t nonce[NONCE_LEN];
	int n = 0, fin = 0;
	make_nonce(nonce, ctr);
	return EVP_DecryptInit_ex(ctx, NULL, NULL, NULL, nonce) == 1 &&
	       EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, TAG_LEN, out + len) == 1 &&
	       EVP_DecryptUpdate(ctx, buf, &n, out, (int)len) == 1 &&
	       EVP_DecryptFinal_ex(ctx, buf + n, &fin) == 1;
}

typedef bool (*op_fn)(void *ctx, uint64_t ctr, size_t len);

/* Runs op for run_seconds and returns MB/s (10^6 bytes of plaintext per second). */
static double measure_once(op_fn op, void *ctx, size_t len, bool sealed_by_ctr0)
{
	uint64_t iters = 0;
	double start = now_s(), elapsed;
	do {
		for (int i = 0; i < 1000; i++) {
			/* open always verifies the same counter-0 packet, so every call does the full work */
			uint64_t ctr = sealed_by_ctr0 ? 0 : iters;
			if (!op(ctx, ctr, len)) {
				fprintf(stderr, "operation failed\n");
				exit(1);
			}
			iters++;
		}
		elapsed = now_s() - start;
	} while (elapsed < run_seconds);
	return (double)iters * (double)len / elapsed / 1e6;
}

/* Best of REPEATS runs: interference from other processes only ever makes a run slower. */
static double measure(op_fn op, void *ctx, size_t len, bool sealed_by_ctr0)
{
	double best = 0;
	for (int r = 0; r < REPEATS; r++) {
		double v = measure_once(op, ctx, len, sealed_by_ctr0);
		best = v > best ? v : best;
	}
	return best;
}

static void print_cpu(void)
{
	char line[256];
	FILE *f = fopen("/proc/cpuinfo", "r");
	while (f && fgets(line, sizeof(line), f)) {
		if (strncmp(line, "model name", 10) == 0) {
			printf("cpu: %s", strchr(line, ':') + 2);
			break;
		}
	}
	if (f)
		fclose(f);
}

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	randombytes_buf(key, sizeof(key));
	randombytes_buf(buf, sizeof(buf));
	EVP_CIPHER_CTX *enc = EVP_CIPHER_CTX_new(), *dec = EVP_CIPHER_CTX_new();
	if (!enc || !dec || EVP_EncryptInit_ex(enc, EVP_chacha20_poly1305(), NULL, key, NULL) != 1 ||
	    EVP_DecryptInit_ex(dec, EVP_chacha20_poly1305(), NULL, key, NULL) != 1)
		return 1;
	print_cpu();
	printf("libsodium %s, %s\n", sodium_version_string(), OpenSSL_version(OPENSSL_VERSION));
	printf("%6s  %14s %14s  %14s %14s   (MB/s)\n", "bytes", "sodium seal", "openssl seal", "sodium open",
	       "openssl open");
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		size_t len = sizes[i];
		double ss = measure(sodium_seal, NULL, len, false);
		double os = measure(ossl_seal, enc, len, false);
		sodium_seal(NULL, 0, len); /* out = packet sealed with counter 0, for the open runs */
		double so = measure(sodium_open, NULL, len, true);
		double oo = measure(ossl_open, dec, len, true);
		printf("%6zu  %14.0f %14.0f  %14.0f %14.0f\n", len, ss, os, so, oo);
	}
	EVP_CIPHER_CTX_free(enc);
	EVP_CIPHER_CTX_free(dec);
	return 0;
}
