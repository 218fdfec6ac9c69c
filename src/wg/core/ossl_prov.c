/* OpenSSL's ChaCha20 and Poly1305 through the default provider's dispatch tables: see ossl_prov.h. */
#include "wg/core/ossl_prov.h"

#include <openssl/core_dispatch.h>
#include <openssl/evp.h>
#include <openssl/provider.h>
#include <pthread.h>
#include <string.h>

static struct {
	OSSL_FUNC_cipher_newctx_fn *newctx;
	OSSL_FUNC_cipher_freectx_fn *freectx;
	OSSL_FUNC_cipher_encrypt_init_fn *init;
	OSSL_FUNC_cipher_update_fn *update;
	void *provctx;
	EVP_CIPHER *fetched;     /* kept for the process: its reference keeps the provider loaded */
} chacha;

static struct {
	OSSL_FUNC_mac_newctx_fn *newctx;
	OSSL_FUNC_mac_freectx_fn *freectx;
	OSSL_FUNC_mac_init_fn *init;
	OSSL_FUNC_mac_update_fn *update;
	OSSL_FUNC_mac_final_fn *final;
	void *provctx;
	EVP_MAC *fetched;
} poly;

static pthread_once_t prov_once = PTHREAD_ONCE_INIT;
static bool prov_ready;

/* algorithm_names is a colon-separated list ("ChaCha20", "POLY1305"); exact, case-insensitive names
 * only, so "ChaCha20" does not pick "ChaCha20-Poly1305". */
static bool names_include(const char *names, const char *name)
{
	size_t n = strlen(name);

	for (const char *p = names; p && *p;) {
		const char *end = strchr(p, ':');
		size_t len = end ? (size_t)(end - p) : strlen(p);

		if (len == n && !strncasecmp(p, name, n))
			return true;
		p = end ? end + 1 : NULL;
	}
	return false;
}

/* The dispatch table of `name` in the provider that EVP itself would use for it. */
static const OSSL_DISPATCH *find_impl(OSSL_PROVIDER *prov, int operation, const char *name)
{
	int no_store = 0;
	const OSSL_ALGORITHM *alg = prov ? OSSL_PROVIDER_query_operation(prov, operation, &no_store) : NULL;

	for (; alg && alg->algorithm_names; alg++) {
		if (names_include(alg->algorithm_names, name))
			return alg->implementation;
	}
	return NULL;
}

static bool load_chacha(void)
{
	EVP_CIPHER *c = chacha.fetched = EVP_CIPHER_fetch(NULL, "ChaCha20", NULL);
	OSSL_PROVIDER *prov = c ? (OSSL_PROVIDER *)EVP_CIPHER_get0_provider(c) : NULL;
	const OSSL_DISPATCH *d = find_impl(prov, OSSL_OP_CIPHER, "ChaCha20");

	for (; d && d->function_id; d++) {
		switch (d->function_id) {
		case OSSL_FUNC_CIPHER_NEWCTX: chacha.newctx = OSSL_FUNC_cipher_newctx(d); break;
		case OSSL_FUNC_CIPHER_FREECTX: chacha.freectx = OSSL_FUNC_cipher_freectx(d); break;
		case OSSL_FUNC_CIPHER_ENCRYPT_INIT: chacha.init = OSSL_FUNC_cipher_encrypt_init(d); break;
		case OSSL_FUNC_CIPHER_UPDATE: chacha.update = OSSL_FUNC_cipher_update(d); break;
		default: break;
		}
	}
	chacha.provctx = prov ? OSSL_PROVIDER_get0_provider_ctx(prov) : NULL;
	return chacha.newctx && chacha.freectx && chacha.init && chacha.update && chacha.provctx;
}

static bool load_poly(void)
{
	EVP_MAC *m = poly.fetched = EVP_MAC_fetch(NULL, "POLY1305", NULL);
	OSSL_PROVIDER *prov = m ? (OSSL_PROVIDER *)EVP_MAC_get0_provider(m) : NULL;
	const OSSL_DISPATCH *d = find_impl(prov, OSSL_OP_MAC, "POLY1305");

	for (; d && d->function_id; d++) {
		switch (d->function_id) {
		case OSSL_FUNC_MAC_NEWCTX: poly.newctx = OSSL_FUNC_mac_newctx(d); break;
		case OSSL_FUNC_MAC_FREECTX: poly.freectx = OSSL_FUNC_mac_freectx(d); break;
		case OSSL_FUNC_MAC_INIT: poly.init = OSSL_FUNC_mac_init(d); break;
		case OSSL_FUNC_MAC_UPDATE: poly.update = OSSL_FUNC_mac_update(d); break;
		case OSSL_FUNC_MAC_FINAL: poly.final = OSSL_FUNC_mac_final(d); break;
		default: break;
		}
	}
	poly.provctx = prov ? OSSL_PROVIDER_get0_provider_ctx(prov) : NULL;
	return poly.newctx && poly.freectx && poly.init && poly.update && poly.final && poly.provctx;
}

static void prov_load(void)
{
	prov_ready = load_chacha() && load_poly();
}

bool wg_prov_init(void)
{
	pthread_once(&prov_once, prov_load);
	return prov_ready;
}

void *wg_prov_chacha_new(void)
{
	return chacha.newctx(chacha.provctx);
}

void wg_prov_chacha_free(void *ctx)
{
	if (ctx)
		chacha.freectx(ctx);
}

bool wg_prov_chacha_start(void *ctx, const uint8_t key[32], const uint8_t iv[16])
{
	return chacha.init(ctx, key, key ? 32 : 0, iv, 16, NULL) == 1;
}

bool wg_prov_chacha_update(void *ctx, uint8_t *out, const uint8_t *in, size_t len)
{
	size_t outl = 0;

	return chacha.update(ctx, out, &outl, len, in, len) == 1 && outl == len;
}

void *wg_prov_poly_new(void)
{
	return poly.newctx(poly.provctx);
}

void wg_prov_poly_free(void *ctx)
{
	if (ctx)
		poly.freectx(ctx);
}

bool wg_prov_poly_init(void *ctx, const uint8_t key[32])
{
	return poly.init(ctx, key, 32, NULL) == 1;
}

bool wg_prov_poly_update(void *ctx, const uint8_t *in, size_t len)
{
	return poly.update(ctx, in, len) == 1;
}

bool wg_prov_poly_final(void *ctx, uint8_t tag[16])
{
	size_t outl = 0;

	return poly.final(ctx, tag, &outl, 16) == 1 && outl == 16;
}
