/* Known-answer tests for the crypto wrappers (RFC 8439, RFC 7748, RFC 7693, draft-irtf-cfrg-xchacha),
 * HMAC/HKDF against a naive reference built on wg_blake2s, the prepared data-path AEAD on both of its
 * library paths, TAI64N encoding and refusal of low-order X25519 points. */
#include "test.h"

#include <pthread.h>
#include <stdint.h>

#include "wg/core/crypto.h"

static void hex32(const char *hex, uint8_t out[32])
{
	test_hex(hex, out, 32);
}

/* ---- ChaCha20-Poly1305 ---- */

/* RFC 8439 appendix A.5: its nonce 00000000 0102030405060708 is exactly WireGuard's layout, 4 zero bytes
 * then the counter 0x0807060504030201 little-endian. */
static const char a5_key[] = "1c9240a5eb55d38af333888604f6b5f0473917c1402b80099dca5cbc207075c0";
static const uint64_t a5_counter = 0x0807060504030201ULL;
static const char a5_ad[] = "f33388860000000000004e91";
static const char a5_plain[] =
	"496e7465726e65742d4472616674732061726520647261667420646f63756d65"
	"6e74732076616c696420666f722061206d6178696d756d206f6620736978206d"
	"6f6e74687320616e64206d617920626520757064617465642c207265706c6163"
	"65642c206f72206f62736f6c65746564206279206f7468657220646f63756d65"
	"6e747320617420616e792074696d652e20497420697320696e617070726f7072"
	"6961746520746f2075736520496e7465726e65742d4472616674732061732072"
	"65666572656e6365206d6174657269616c206f7220746f206369746520746865"
	"6d206f74686572207468616e206173202fe2809c776f726b20696e2070726f67"
	"726573732e2fe2809d";
static const char a5_cipher_and_tag[] =
	"64a0861575861af460f062c79be643bd5e805cfd345cf389f108670ac76c8cb2"
	"4c6cfc18755d43eea09ee94e382d26b0bdb7b73c321b0100d4f03b7f355894cf"
	"332f830e710b97ce98c8a84abd0b948114ad176e008d33bd60f982b1ff37c855"
	"9797a06ef4f0ef61c186324e2b3506383606907b6a7c02b0f9f6157b53c867e4"
	"b9166c767b804d46a59b5216cde7a4e99040c5a40433225ee282a1b0a06c523e"
	"af4534d7f83fa1155b0047718cbc546a0d072b04b3564eea1b422273f548271a"
	"0bb2316053fa76991955ebd63159434ecebb4e466dae5a1073a6727627097a10"
	"49e617d91d361094fa68f0ff77987130305beaba2eda04df997b714d6c6f2c29"
	"a6ad5cb4022b02709b"
	"eead9d67890cbb22392336fea1851f38";
enum { A5_LEN = 265 };

static void test_aead_rfc8439_a5(void)
{
	uint8_t key[32], ad[12], plain[A5_LEN], expect[A5_LEN + 16], out[A5_LEN + 16], back[A5_LEN];
	CHECK(sizeof(a5_plain) - 1 == 2 * A5_LEN);
	CHECK(sizeof(a5_cipher_and_tag) - 1 == 2 * (A5_LEN + 16));
	hex32(a5_key, key);
	test_hex(a5_ad, ad, sizeof(ad));
	test_hex(a5_plain, plain, sizeof(plain));
	test_hex(a5_cipher_and_tag, expect, sizeof(expect));

	wg_aead_seal(out, plain, A5_LEN, ad, sizeof(ad), a5_counter, key);
	CHECK_MEM_EQ(out, expect, sizeof(expect));
	CHECK(wg_aead_open(back, expect, sizeof(expect), ad, sizeof(ad), a5_counter, key));
	CHECK_MEM_EQ(back, plain, sizeof(plain));

	/* Wrong counter, wrong associated data, flipped tag bit, too short: all refused. */
	CHECK(!wg_aead_open(back, expect, sizeof(expect), ad, sizeof(ad), a5_counter + 1, key));
	CHECK(!wg_aead_open(back, expect, sizeof(expect), ad, sizeof(ad) - 1, a5_counter, key));
	expect[A5_LEN + 3] ^= 0x10;
	CHECK(!wg_aead_open(back, expect, sizeof(expect), ad, sizeof(ad), a5_counter, key));
	CHECK(!wg_aead_open(back, expect, 15, ad, sizeof(ad), a5_counter, key));
}

/* The prepared key must produce the RFC bytes too, on both library paths (the vector is sealed without
 * associated data here, so compare against the one-shot call, itself checked above). */
static void test_aead_key_matches_one_shot(void)
{
	static const size_t sizes[] = { 0, 1, 15, 16, 63, 64, 255, 511, 512, 513, 1023, 1024, 1025, 1100, 1420, 2047,
					3967, 3968, 3969, 8192, 65519 };
	static uint8_t plain[65536], ref[65536 + 16], out[65536 + 16];
	uint8_t key[32];
	struct wg_aead_key k;

	hex32(a5_key, key);
	for (size_t i = 0; i < sizeof(plain); i++)
		plain[i] = (uint8_t)(i * 7 + 3);
	CHECK(wg_aead_key_init(&k, key));
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		size_t n = sizes[i];
		uint64_t ctr = 1000 + i;
		wg_aead_seal(ref, plain, n, NULL, 0, ctr, key);
		memset(out, 0xaa, n + 16);
		CHECK(wg_aead_key_seal(&k, ctr, out, plain, n));
		CHECK_MEM_EQ(out, ref, n + 16);
		/* And the one-shot open accepts what the prepared key sealed (and vice versa below). */
		CHECK(wg_aead_open(out, ref, n + 16, NULL, 0, ctr, key));
		CHECK_MEM_EQ(out, plain, n);
	}
	wg_aead_key_clear(&k);
	CHECK(!k.is_set);
	CHECK(wg_ct_is_zero(k.key, sizeof(k.key)));
}

static void test_aead_key_round_trip(void)
{
	static const size_t sizes[] = { 0, 1, 16, 100, 511, 512, 1023, 1024, 1420, 4096, 8192 };
	static uint8_t plain[8192], buf[8192 + 16], out[8192 + 16];
	uint8_t key[32];
	struct wg_aead_key k;

	wg_random_bytes(key, sizeof(key));
	wg_random_bytes(plain, sizeof(plain));
	CHECK(wg_aead_key_init(&k, key));
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		size_t n = sizes[i];
		uint64_t ctr = (uint64_t)i << 40 | 5;

		/* In place: seal and open within one buffer. */
		memcpy(buf, plain, n);
		CHECK(wg_aead_key_seal(&k, ctr, buf, buf, n));
		/* Changed by encryption; below 16 bytes a ciphertext may equal its random plaintext by chance
		 * (1 in 256 for one byte), so only longer ones are compared. */
		CHECK(n < 16 || memcmp(buf, plain, n) != 0);
		memcpy(out, buf, n + 16);
		CHECK(wg_aead_key_open(&k, ctr, buf, buf, n + 16));
		CHECK_MEM_EQ(buf, plain, n);

		/* Out of place, from the copy of the sealed packet. */
		memset(buf, 0, sizeof(buf));
		CHECK(wg_aead_key_open(&k, ctr, buf, out, n + 16));
		CHECK_MEM_EQ(buf, plain, n);

		/* Wrong counter. */
		CHECK(!wg_aead_key_open(&k, ctr + 1, buf, out, n + 16));
		/* Every tampered byte (sampled for the large sizes) is refused. */
		size_t step = n + 16 > 64 ? (n + 16) / 37 + 1 : 1;
		for (size_t j = 0; j < n + 16; j += step) {
			out[j] ^= 0x01;
			CHECK(!wg_aead_key_open(&k, ctr, buf, out, n + 16));
			out[j] ^= 0x01;
		}
		/* A refused open leaves no unauthenticated plaintext behind. */
		out[n + 15] ^= 0x80;
		memcpy(buf, out, n + 16);
		CHECK(!wg_aead_key_open(&k, ctr, buf, buf, n + 16));
		CHECK(wg_ct_is_zero(buf, n));
		out[n + 15] ^= 0x80;
		CHECK(wg_aead_key_open(&k, ctr, buf, out, n + 16));
	}
	/* Seal and open alternate on one key (one context switching direction). */
	CHECK(wg_aead_key_seal(&k, 1, buf, plain, 2000));
	CHECK(wg_aead_key_open(&k, 1, out, buf, 2016));
	CHECK(wg_aead_key_seal(&k, 2, buf, plain, 2000));
	CHECK(wg_aead_key_open(&k, 2, out, buf, 2016));
	CHECK_MEM_EQ(out, plain, 2000);
	CHECK(!wg_aead_key_open(&k, 0, out, buf, 15));
	wg_aead_key_clear(&k);
	CHECK(!wg_aead_key_seal(&k, 0, buf, plain, 16));
}

/* A thread's context keeps the last key it used: packets of several sessions interleaved on one thread,
 * and a key re-initialized in place with other bytes, must each use their own key. */
static void test_aead_keys_interleaved(void)
{
	enum { LEN = 1420 };
	static uint8_t plain[LEN], out[LEN + 16], ref[LEN + 16], back[LEN];
	uint8_t key[3][32];
	struct wg_aead_key k[2];

	wg_random_bytes(plain, sizeof(plain));
	for (int i = 0; i < 3; i++)
		wg_random_bytes(key[i], sizeof(key[i]));
	CHECK(wg_aead_key_init(&k[0], key[0]) && wg_aead_key_init(&k[1], key[1]));
	for (uint64_t ctr = 0; ctr < 6; ctr++) {
		int w = (int)(ctr % 2);

		CHECK(wg_aead_key_seal(&k[w], ctr, out, plain, LEN));
		wg_aead_seal(ref, plain, LEN, NULL, 0, ctr, key[w]);
		CHECK_MEM_EQ(out, ref, LEN + 16);
		CHECK(!wg_aead_key_open(&k[!w], ctr, back, out, LEN + 16));
		CHECK(wg_aead_key_open(&k[w], ctr, back, out, LEN + 16));
		CHECK_MEM_EQ(back, plain, LEN);
	}
	/* The same struct, new bytes: the cached key must not be taken for it. */
	wg_aead_key_clear(&k[0]);
	CHECK(wg_aead_key_init(&k[0], key[2]));
	CHECK(wg_aead_key_seal(&k[0], 9, out, plain, LEN));
	wg_aead_seal(ref, plain, LEN, NULL, 0, 9, key[2]);
	CHECK_MEM_EQ(out, ref, LEN + 16);
	wg_aead_key_clear(&k[0]);
	wg_aead_key_clear(&k[1]);
}

/* draft-irtf-cfrg-xchacha-03 appendix A.3.1. */
static void test_xaead_vector(void)
{
	static const char plain_hex[] =
		"4c616469657320616e642047656e746c656d656e206f662074686520636c6173"
		"73206f66202739393a204966204920636f756c64206f6666657220796f75206f"
		"6e6c79206f6e652074697020666f7220746865206675747572652c2073756e73"
		"637265656e20776f756c642062652069742e";
	static const char expect_hex[] =
		"bd6d179d3e83d43b9576579493c0e939572a1700252bfaccbed2902c21396cbb"
		"731c7f1b0b4aa6440bf3a82f4eda7e39ae64c6708c54c216cb96b72e1213b452"
		"2f8c9ba40db5d945b11b69b982c1bb9e3f3fac2bc369488f76b2383565d3fff9"
		"21f9664c97637da9768812f615c68b13b52e"
		"c0875924c1c7987947deafd8780acf49";
	enum { LEN = 114 };
	uint8_t key[32], nonce[24], ad[12], plain[LEN], expect[LEN + 16], out[LEN + 16], back[LEN];

	hex32("808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f", key);
	test_hex("404142434445464748494a4b4c4d4e4f5051525354555657", nonce, sizeof(nonce));
	test_hex("50515253c0c1c2c3c4c5c6c7", ad, sizeof(ad));
	test_hex(plain_hex, plain, sizeof(plain));
	test_hex(expect_hex, expect, sizeof(expect));
	CHECK(sizeof(plain_hex) - 1 == 2 * LEN);

	wg_xaead_seal(out, plain, LEN, ad, sizeof(ad), nonce, key);
	CHECK_MEM_EQ(out, expect, sizeof(expect));
	CHECK(wg_xaead_open(back, expect, sizeof(expect), ad, sizeof(ad), nonce, key));
	CHECK_MEM_EQ(back, plain, LEN);
	nonce[23] ^= 1;
	CHECK(!wg_xaead_open(back, expect, sizeof(expect), ad, sizeof(ad), nonce, key));
	nonce[23] ^= 1;
	expect[0] ^= 1;
	CHECK(!wg_xaead_open(back, expect, sizeof(expect), ad, sizeof(ad), nonce, key));
	CHECK(!wg_xaead_open(back, expect, 15, ad, sizeof(ad), nonce, key));
}

/* ---- X25519 ---- */

static void test_x25519_rfc7748(void)
{
	static const struct {
		const char *scalar, *point, *result;
	} vectors[] = {
		/* 5.2 (the second point has bit 255 set, which must be masked) */
		{ "a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4",
		  "e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c",
		  "c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552" },
		{ "4b66e9d4d1b4673c5ad22691957d6af5c11b6421e0ea01d42ca4169e7918ba0d",
		  "e5210f12786811d3f4b7959d0538ae2c31dbe7106fc03c3efc4cd549c715a493",
		  "95cbde9476e8907d7aade45cb4b873f88b595a68799fa152e6f8f7647aac7957" },
		/* 6.1: Alice's key with Bob's public key, and the reverse */
		{ "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a",
		  "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f",
		  "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742" },
		{ "5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb",
		  "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a",
		  "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742" },
	};
	for (size_t i = 0; i < sizeof(vectors) / sizeof(vectors[0]); i++) {
		uint8_t scalar[32], point[32], expect[32], out[32];
		hex32(vectors[i].scalar, scalar);
		hex32(vectors[i].point, point);
		hex32(vectors[i].result, expect);
		CHECK(wg_x25519(out, scalar, point));
		CHECK_MEM_EQ(out, expect, 32);
	}
}

static void test_x25519_public_and_clamp(void)
{
	uint8_t alice[32], bob[32], pub[32], expect[32];
	hex32("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a", alice);
	hex32("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a", expect);
	wg_x25519_public(pub, alice);
	CHECK_MEM_EQ(pub, expect, 32);
	hex32("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb", bob);
	hex32("de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f", expect);
	wg_x25519_public(pub, bob);
	CHECK_MEM_EQ(pub, expect, 32);

	uint8_t k[32];
	memset(k, 0xff, sizeof(k));
	wg_clamp_private_key(k);
	CHECK(k[0] == 0xf8 && k[31] == 0x7f && k[15] == 0xff);
	memset(k, 0, sizeof(k));
	wg_clamp_private_key(k);
	CHECK(k[0] == 0 && k[31] == 0x40);

	/* Generated pairs are clamped and agree on a shared secret. */
	uint8_t a_priv[32], a_pub[32], b_priv[32], b_pub[32], s1[32], s2[32];
	wg_x25519_generate(a_priv, a_pub);
	wg_x25519_generate(b_priv, b_pub);
	CHECK((a_priv[0] & 7) == 0 && (a_priv[31] & 0xc0) == 0x40);
	wg_x25519_public(pub, a_priv);
	CHECK_MEM_EQ(pub, a_pub, 32);
	CHECK(wg_x25519(s1, a_priv, b_pub) && wg_x25519(s2, b_priv, a_pub));
	CHECK_MEM_EQ(s1, s2, 32);
	CHECK(memcmp(a_pub, b_pub, 32) != 0);
}

/* The points of small order (cr.yp.to/ecdh.html), including the non-canonical p-1, p and p+1 and the
 * same with bit 255 set: DH with any of them is all zero and must be refused. */
static void test_x25519_low_order(void)
{
	static const char *points[] = {
		"0000000000000000000000000000000000000000000000000000000000000000",
		"0100000000000000000000000000000000000000000000000000000000000000",
		"e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
		"5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157",
		"ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
		"edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
		"eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
		"0000000000000000000000000000000000000000000000000000000000000080",
		"e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b880",
	};
	uint8_t priv[32], pub[32], point[32], out[32];
	wg_x25519_generate(priv, pub);
	for (size_t i = 0; i < sizeof(points) / sizeof(points[0]); i++) {
		hex32(points[i], point);
		memset(out, 0x55, sizeof(out));
		CHECK(!wg_x25519(out, priv, point));
		CHECK(wg_ct_is_zero(out, sizeof(out)));
	}
}

/* ---- BLAKE2s, HMAC, HKDF ---- */

static void test_blake2s_vectors(void)
{
	uint8_t out[32], expect[32], key[32];

	/* RFC 7693 appendix B. */
	hex32("508c5e8c327c14e2e1a72ba34eeb452f37458b209ed63a294d999b4c86675982", expect);
	wg_blake2s(out, 32, "abc", 3, NULL, 0);
	CHECK_MEM_EQ(out, expect, 32);

	/* Keyed, key 00..1f, from the BLAKE2 reference known-answer list: empty input and 00..ff input. */
	for (int i = 0; i < 32; i++)
		key[i] = (uint8_t)i;
	hex32("48a8997da407876b3d79c0d92325ad3b89cbb754d86ab71aee047ad345fd2c49", expect);
	wg_blake2s(out, 32, NULL, 0, key, 32);
	CHECK_MEM_EQ(out, expect, 32);
	wg_blake2s(out, 32, "", 0, key, 32);
	CHECK_MEM_EQ(out, expect, 32);

	/* Output length is a parameter of BLAKE2s, not a truncation. */
	uint8_t out16[16];
	wg_blake2s(out16, 16, "abc", 3, NULL, 0);
	wg_blake2s(out, 32, "abc", 3, NULL, 0);
	CHECK(memcmp(out16, out, 16) != 0);

	/* concat(a, b) is the hash of the concatenation, also when out aliases a. */
	uint8_t buf[32 + 5], h[32];
	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t)(0x30 + i);
	wg_blake2s(expect, 32, buf, sizeof(buf), NULL, 0);
	wg_blake2s_concat(out, buf, 10, buf + 10, sizeof(buf) - 10);
	CHECK_MEM_EQ(out, expect, 32);
	memcpy(h, buf, 32);
	wg_blake2s_concat(h, h, 32, buf + 32, 5);
	CHECK_MEM_EQ(h, expect, 32);
}

/* HMAC by its definition (RFC 2104), over wg_blake2s: block 64 bytes, long keys hashed first. */
static void naive_hmac(uint8_t out[32], const uint8_t *key, size_t keylen, const uint8_t *in, size_t inlen)
{
	uint8_t k[64] = { 0 }, inner[64 + 256], outer[64 + 32], ihash[32];
	if (keylen > 64)
		wg_blake2s(k, 32, key, keylen, NULL, 0);
	else
		memcpy(k, key, keylen);
	for (int i = 0; i < 64; i++) {
		inner[i] = k[i] ^ 0x36;
		outer[i] = k[i] ^ 0x5c;
	}
	if (inlen)
		memcpy(inner + 64, in, inlen);
	wg_blake2s(ihash, 32, inner, 64 + inlen, NULL, 0);
	memcpy(outer + 64, ihash, 32);
	wg_blake2s(out, 32, outer, sizeof(outer), NULL, 0);
}

static void test_hmac_blake2s_reference(void)
{
	static const size_t key_lens[] = { 0, 1, 32, 64, 65, 100 };
	static const size_t in_lens[] = { 0, 1, 33, 64, 200 };
	uint8_t key[100], in[200], out[32], expect[32];
	for (size_t i = 0; i < sizeof(key); i++)
		key[i] = (uint8_t)(i * 3 + 1);
	for (size_t i = 0; i < sizeof(in); i++)
		in[i] = (uint8_t)(255 - i);
	for (size_t a = 0; a < sizeof(key_lens) / sizeof(key_lens[0]); a++) {
		for (size_t b = 0; b < sizeof(in_lens) / sizeof(in_lens[0]); b++) {
			naive_hmac(expect, key, key_lens[a], in, in_lens[b]);
			wg_hmac_blake2s(out, key, key_lens[a], in, in_lens[b]);
			CHECK_MEM_EQ(out, expect, 32);
		}
	}
}

/* HKDF per the WireGuard paper, written out with the naive HMAC. */
static void naive_kdf(uint8_t t[3][32], const uint8_t ck[32], const uint8_t *in, size_t inlen)
{
	uint8_t prk[32], block[33];
	naive_hmac(prk, ck, 32, in, inlen);
	block[0] = 1;
	naive_hmac(t[0], prk, 32, block, 1);
	memcpy(block, t[0], 32);
	block[32] = 2;
	naive_hmac(t[1], prk, 32, block, 33);
	memcpy(block, t[1], 32);
	block[32] = 3;
	naive_hmac(t[2], prk, 32, block, 33);
}

static void test_kdf_reference(void)
{
	uint8_t ck[32], in[32], expect[3][32], t1[32], t2[32], t3[32];
	wg_random_bytes(ck, sizeof(ck));
	wg_random_bytes(in, sizeof(in));
	naive_kdf(expect, ck, in, sizeof(in));

	wg_kdf(t1, t2, t3, ck, in, sizeof(in));
	CHECK_MEM_EQ(t1, expect[0], 32);
	CHECK_MEM_EQ(t2, expect[1], 32);
	CHECK_MEM_EQ(t3, expect[2], 32);

	memset(t1, 0, 32);
	wg_kdf(t1, NULL, NULL, ck, in, sizeof(in));
	CHECK_MEM_EQ(t1, expect[0], 32);
	memset(t3, 0, 32);
	wg_kdf(NULL, NULL, t3, ck, in, sizeof(in));
	CHECK_MEM_EQ(t3, expect[2], 32);

	/* The handshake derives the next chaining key in place: output aliasing ck. */
	uint8_t ck2[32];
	memcpy(ck2, ck, 32);
	wg_kdf(ck2, t2, NULL, ck2, in, sizeof(in));
	CHECK_MEM_EQ(ck2, expect[0], 32);
	CHECK_MEM_EQ(t2, expect[1], 32);

	/* Empty input (the transport-key derivation). */
	naive_kdf(expect, ck, NULL, 0);
	wg_kdf(t1, t2, NULL, ck, NULL, 0);
	CHECK_MEM_EQ(t1, expect[0], 32);
	CHECK_MEM_EQ(t2, expect[1], 32);
}

/* ---- Misc ---- */

static void test_tai64n(void)
{
	static const struct {
		uint64_t wall_ns;
		const char *expect;
	} vectors[] = {
		/* 2^62 + 10 seconds at the epoch */
		{ 0, "400000000000000a00000000" },
		/* 1700000000 s = 0x6553f100 */
		{ 1700000000ULL * 1000000000ULL, "400000006553f10a00000000" },
		/* nanoseconds rounded down to a multiple of 2^24: 999999999 -> 0x3b000000 */
		{ 1700000000ULL * 1000000000ULL + 999999999ULL, "400000006553f10a3b000000" },
		{ 5ULL * 1000000000ULL + 0x1000000ULL + 12345, "400000000000000f01000000" },
	};
	uint8_t out[12], expect[12];
	for (size_t i = 0; i < sizeof(vectors) / sizeof(vectors[0]); i++) {
		wg_tai64n(out, vectors[i].wall_ns);
		test_hex(vectors[i].expect, expect, sizeof(expect));
		CHECK_MEM_EQ(out, expect, 12);
	}
	/* Any two instants at least 20 ms apart encode strictly increasing (initiations must be accepted);
	 * stepped through a second boundary and across many phases. */
	uint8_t prev[12];
	uint64_t base = 1700000000ULL * 1000000000ULL + 900000000ULL;
	for (uint64_t t = base; t < base + 3000000000ULL; t += 7000001ULL) {
		wg_tai64n(prev, t);
		wg_tai64n(out, t + 20000000ULL);
		CHECK(memcmp(out, prev, 12) > 0);
	}
}

static void test_ct_and_random(void)
{
	uint8_t a[40] = { 0 }, b[40] = { 0 };
	CHECK(wg_ct_equal(a, b, sizeof(a)));
	CHECK(wg_ct_is_zero(a, sizeof(a)));
	b[39] = 1;
	CHECK(!wg_ct_equal(a, b, sizeof(a)));
	CHECK(!wg_ct_is_zero(b, sizeof(b)));
	CHECK(wg_ct_equal(a, b, 39));

	memset(a, 0x77, sizeof(a));
	wg_wipe(a, sizeof(a));
	CHECK(wg_ct_is_zero(a, sizeof(a)));

	wg_random_bytes(a, sizeof(a));
	wg_random_bytes(b, sizeof(b));
	CHECK(!wg_ct_equal(a, b, sizeof(a)));

	int seen[5] = { 0 };
	for (int i = 0; i < 1000; i++) {
		uint64_t v = wg_random_below(5);
		CHECK(v < 5);
		if (v < 5)
			seen[v]++;
	}
	for (int i = 0; i < 5; i++)
		CHECK(seen[i] > 100);
	uint64_t big = (1ULL << 40) + 3;
	for (int i = 0; i < 1000; i++)
		CHECK(wg_random_below(big) < big);
	CHECK(wg_random_below(0) == 0 && wg_random_below(1) == 0);
	uint32_t x = wg_random_u32(), y = wg_random_u32(), z = wg_random_u32();
	CHECK(!(x == y && y == z));
}

/* Worker threads share a session: jobs with one key, run on four threads at once, must each give the
 * one-shot result (each thread has its own library context). */
struct job_thread_arg {
	struct wg_crypto_job *jobs;
	size_t n;
};

static void *run_job_slice(void *arg)
{
	struct job_thread_arg *a = arg;
	wg_crypto_jobs_run(a->jobs, a->n);
	return NULL;
}

static void test_crypto_jobs_on_threads(void)
{
	enum { JOBS = 256, THREADS = 4, LEN = 1420 };
	static uint8_t bufs[JOBS][LEN + 16], plain[LEN], ref[LEN + 16];
	static struct wg_crypto_job jobs[JOBS];
	struct job_thread_arg args[THREADS];
	pthread_t threads[THREADS];
	struct wg_aead_key k;
	uint8_t key[32];

	for (size_t i = 0; i < sizeof(key); i++)
		key[i] = (uint8_t)(i * 13);
	for (size_t i = 0; i < LEN; i++)
		plain[i] = (uint8_t)i;
	wg_aead_key_init(&k, key);
	for (size_t i = 0; i < JOBS; i++) {
		memcpy(bufs[i], plain, LEN);
		jobs[i] = (struct wg_crypto_job){.key = &k, .counter = i, .data = bufs[i], .len = (i % 2) ? LEN : 100, .seal = true};
	}
	for (int t = 0; t < THREADS; t++) {
		args[t] = (struct job_thread_arg){.jobs = jobs + t * (JOBS / THREADS), .n = JOBS / THREADS};
		pthread_create(&threads[t], NULL, run_job_slice, &args[t]);
	}
	for (int t = 0; t < THREADS; t++)
		pthread_join(threads[t], NULL);
	for (size_t i = 0; i < JOBS; i++) {
		CHECK(jobs[i].ok);
		wg_aead_seal(ref, plain, jobs[i].len, NULL, 0, i, key);
		CHECK_MEM_EQ(bufs[i], ref, jobs[i].len + 16);
		/* And back: open jobs in place recover the plaintext; a flipped tag fails. */
		jobs[i].seal = false;
		jobs[i].len += 16;
	}
	bufs[5][10] ^= 1;
	wg_crypto_jobs_run(jobs, JOBS);
	for (size_t i = 0; i < JOBS; i++) {
		CHECK(jobs[i].ok == (i != 5));
		if (i != 5)
			CHECK_MEM_EQ(bufs[i], plain, jobs[i].len - 16);
	}
	wg_aead_key_clear(&k);
}

int main(void)
{
	TEST_RUN(test_crypto_jobs_on_threads);
	if (!wg_crypto_init() || !wg_crypto_init()) {
		fprintf(stderr, "wg_crypto_init failed\n");
		return 1;
	}
	TEST_RUN(test_aead_rfc8439_a5);
	TEST_RUN(test_aead_key_matches_one_shot);
	TEST_RUN(test_aead_key_round_trip);
	TEST_RUN(test_aead_keys_interleaved);
	TEST_RUN(test_xaead_vector);
	TEST_RUN(test_x25519_rfc7748);
	TEST_RUN(test_x25519_public_and_clamp);
	TEST_RUN(test_x25519_low_order);
	TEST_RUN(test_blake2s_vectors);
	TEST_RUN(test_hmac_blake2s_reference);
	TEST_RUN(test_kdf_reference);
	TEST_RUN(test_tai64n);
	TEST_RUN(test_ct_and_random);
	return TEST_SUMMARY();
}
