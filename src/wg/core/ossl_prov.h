/* OpenSSL's ChaCha20 and Poly1305 called through its default provider's dispatch tables (the public
 * provider interface: provider-cipher(7), provider-mac(7), OSSL_PROVIDER_query_operation(3)) instead of
 * through EVP. The code that runs is the same; what goes is EVP's work around each call, which the data
 * path pays per packet: EVP_EncryptInit_ex looks up the IV length through an OSSL_PARAM request (a
 * strcmp over parameter names) before it sets a nonce, EVP_MAC_init/final check and look up sizes the
 * same way. Per 1420-byte packet that was 1.5% of all CPU samples under TCP load.
 *
 * Contexts are the provider's own algorithm contexts: one per thread, like the EVP ones they replace. */
#ifndef WG_CORE_OSSL_PROV_H
#define WG_CORE_OSSL_PROV_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Finds both algorithms (once; thread-safe). false when the default provider does not offer them. */
bool wg_prov_init(void);

/* ChaCha20 with OpenSSL's 16-byte IV: 32-bit little-endian block counter, then the 96-bit nonce. */
void *wg_prov_chacha_new(void);
void wg_prov_chacha_free(void *ctx);
/* Sets the IV, and the 32-byte key unless key is NULL (the context keeps the last one). */
bool wg_prov_chacha_start(void *ctx, const uint8_t key[32], const uint8_t iv[16]);
/* XORs the keystream into in (out may be in). */
bool wg_prov_chacha_update(void *ctx, uint8_t *out, const uint8_t *in, size_t len);

/* Poly1305 with a one-time 32-byte key. */
void *wg_prov_poly_new(void);
void wg_prov_poly_free(void *ctx);
bool wg_prov_poly_init(void *ctx, const uint8_t key[32]);
bool wg_prov_poly_update(void *ctx, const uint8_t *in, size_t len);
bool wg_prov_poly_final(void *ctx, uint8_t tag[16]);
#endif
