/* Keypair rotation: each peer holds up to three sessions. The initiator may use a new session at once;
 * the responder must wait until the initiator proves it has the keys (its first data packet), hence the
 * next -> current -> previous dance. "previous" keeps receiving so packets in flight across a rekey are
 * not lost. */
#include <stdlib.h>
#include "wg/core/device_internal.h"

static void keypair_destroy(struct wg_keypair *kp)
{
	wg_aead_key_clear(&kp->sending);
	wg_aead_key_clear(&kp->receiving);
	wg_wipe(kp, sizeof(*kp));
	free(kp);
}

/* The session stops being reachable at once (its index goes); its memory lives on until the current
 * batch ends, since crypto jobs of the batch may still use its keys. */
static void keypair_free(struct wg_device *dev, struct wg_keypair *kp)
{
	if (!kp)
		return;
	wg_index_table_remove(&dev->indices, &kp->entry);
	if (dev->batch_depth) {
		kp->next_retired = dev->retired;
		dev->retired = kp;
		return;
	}
	keypair_destroy(kp);
}

void wg_keypairs_free_retired(struct wg_device *dev)
{
	while (dev->retired) {
		struct wg_keypair *kp = dev->retired;
		dev->retired = kp->next_retired;
		keypair_destroy(kp);
	}
}

static struct wg_keypair *keypair_new(struct wg_peer *peer, const struct wg_session_keys *keys, uint64_t now)
{
	struct wg_keypair *kp = calloc(1, sizeof(*kp));

	if (!kp)
		return NULL;
	if (!wg_aead_key_init(&kp->sending, keys->sending) || !wg_aead_key_init(&kp->receiving, keys->receiving))
		goto fail;
	kp->peer = peer;
	kp->birth_ns = now;
	kp->remote_index = keys->remote_index;
	kp->is_initiator = keys->is_initiator;
	wg_replay_init(&kp->replay);
	return kp;
fail:
	wg_aead_key_clear(&kp->sending);
	wg_aead_key_clear(&kp->receiving);
	free(kp);
	return NULL;
}

bool wg_keypair_install(struct wg_peer *peer, const struct wg_session_keys *keys, uint64_t now)
{
	struct wg_device *dev = peer->dev;
	struct wg_keypair *kp = keypair_new(peer, keys, now);

	if (!kp)
		return false;
	/* The session keeps the index the handshake used, so the peer's messages find it. */
	wg_index_table_replace(&dev->indices, &peer->handshake_entry, &kp->entry, WG_INDEX_KEYPAIR, kp);
	if (kp->is_initiator) {
		if (peer->next_keypair) {
			/* An unconfirmed responder session loses to ours; it becomes previous. */
			keypair_free(dev, peer->previous_keypair);
			peer->previous_keypair = peer->next_keypair;
			peer->next_keypair = NULL;
			keypair_free(dev, peer->current_keypair);
		} else {
			keypair_free(dev, peer->previous_keypair);
			peer->previous_keypair = peer->current_keypair;
		}
		peer->current_keypair = kp;
	} else {
		keypair_free(dev, peer->next_keypair);
		peer->next_keypair = kp;
		keypair_free(dev, peer->previous_keypair);
		peer->previous_keypair = NULL;
	}
	return true;
}

bool wg_keypair_confirm(struct wg_peer *peer, struct wg_keypair *kp)
{
	if (kp != peer->next_keypair)
		return false;
	keypair_free(peer->dev, peer->previous_keypair);
	peer->previous_keypair = peer->current_keypair;
	peer->current_keypair = kp;
	peer->next_keypair = NULL;
	return true;
}

void wg_keypairs_clear(struct wg_peer *peer)
{
	keypair_free(peer->dev, peer->next_keypair);
	keypair_free(peer->dev, peer->current_keypair);
	keypair_free(peer->dev, peer->previous_keypair);
	peer->next_keypair = peer->current_keypair = peer->previous_keypair = NULL;
}

bool wg_keypair_usable_for_sending(const struct wg_keypair *kp, uint64_t now)
{
	return kp && now - kp->birth_ns < WG_REJECT_AFTER_TIME && kp->sending_counter < WG_REJECT_AFTER_MESSAGES;
}

bool wg_keypair_expired_for_receiving(const struct wg_keypair *kp, uint64_t now)
{
	return now - kp->birth_ns >= WG_REJECT_AFTER_TIME;
}
