//! Secure aggregation with double masking (Bonawitz et al., "Practical Secure Aggregation for
//! Privacy-Preserving Machine Learning", CCS 2017), honest-but-curious aggregator.
//!
//! Each participant `i` of a round holds two fresh X25519 keys (one agrees the pairwise mask
//! seeds, one the keys that encrypt its shares to the others) and a random self-mask seed `b_i`.
//! It sends `y_i = x_i + PRG(b_i) + Σ_{j>i} PRG(s_ij) − Σ_{j<i} PRG(s_ij)` in `Z_2^64`, where
//! `s_ij` comes from X25519 between `i` and `j`: the pairwise masks cancel in the sum. Before
//! masking, `i` Shamir-shares both its mask key and `b_i` among all participants, each share
//! encrypted (ChaCha20-Poly1305) to its holder. To unmask, every survivor reveals, for each
//! participant, either its share of `b` (it sent a masked input: remove the self mask) or its
//! share of the mask key (it dropped out after the others masked against it: rebuild and remove
//! its pairwise masks), never both, so the aggregator learns the sum and nothing else.
//!
//! Values are fixed-point: [`encode_fixed`] turns a clipped f32 update into `Z_2^64`; the sum is
//! exact (wrapping) and equals the plain sum of the encoded updates bit for bit.

use std::collections::{BTreeMap, BTreeSet};

use blahaj::{Share, Sharks};
use chacha20poly1305::{
	aead::{Aead, KeyInit, Payload},
	ChaCha20Poly1305, Key, Nonce,
};
use codec::{Decode, Encode};
use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;
use x25519_dalek::{PublicKey, StaticSecret};

/// A participant's place in a round, `0..n`: its Shamir x-coordinate is `id + 1`.
pub type ParticipantId = u16;
/// Most participants a round can have (Shamir over GF(256) has 255 x-coordinates).
pub const MAX_PARTICIPANTS: usize = 255;
/// Fractional bits of the fixed-point encoding: a resolution of 6·10⁻⁸.
pub const FRAC_BITS: u32 = 24;

/// What a round is about; every key derivation and ciphertext is bound to it, so nothing from
/// one round (or job) is valid in another.
pub type SessionId = [u8; 32];

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SecAggError {
	#[error("{have} participants left, the round needs {need}")]
	TooFewParticipants { have: usize, need: usize },
	#[error("participant {0} is not part of this round")]
	UnknownParticipant(ParticipantId),
	#[error("participant {0} appears twice")]
	Duplicate(ParticipantId),
	#[error("more than {MAX_PARTICIPANTS} participants")]
	TooManyParticipants,
	#[error("threshold {threshold} is not in 1..={n}")]
	BadThreshold { threshold: usize, n: usize },
	#[error("the share from {from} to {to} does not decrypt")]
	Decrypt { from: ParticipantId, to: ParticipantId },
	#[error("the share from {from} to {to} is malformed")]
	MalformedShare { from: ParticipantId, to: ParticipantId },
	#[error("the secret of {owner} cannot be rebuilt: {reason}")]
	Recover { owner: ParticipantId, reason: String },
	#[error("the rebuilt mask key of {0} does not match the key it advertised")]
	KeyMismatch(ParticipantId),
	#[error("participant {id} sent {got} values, the round has {want}")]
	Length { id: ParticipantId, got: usize, want: usize },
	#[error("the survivors must be a subset of the participants who shared their keys")]
	NotSubset,
	#[error("threshold {threshold} is not a majority of the {n} sharers: two disjoint survivor lists could unmask one participant")]
	MinorityThreshold { threshold: usize, n: usize },
	#[error("the rebuilt self-mask seed of {0} does not match its commitment")]
	SeedMismatch(ParticipantId),
}

/// A participant's public keys for one round.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Encode, Decode)]
pub struct KeyAdvert {
	pub id: ParticipantId,
	/// Agrees the pairwise mask seeds.
	pub mask_pk: [u8; 32],
	/// Agrees the keys that encrypt shares.
	pub enc_pk: [u8; 32],
	/// Commits to the self-mask seed, so that a seed rebuilt from bad shares is caught instead
	/// of silently corrupting the sum.
	pub seed_hash: [u8; 32],
}

/// One participant's shares of another's secrets, encrypted to their holder.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct EncryptedShare {
	pub from: ParticipantId,
	pub to: ParticipantId,
	pub ciphertext: Vec<u8>,
}

/// Which of a participant's secrets a revealed share belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Encode, Decode)]
pub enum SecretKind {
	/// The self-mask seed `b`: revealed for participants whose masked input arrived.
	SelfSeed,
	/// The mask key: revealed for participants who dropped out after the others masked.
	MaskKey,
}

/// A share revealed to the aggregator in the unmasking step.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct RevealedShare {
	pub owner: ParticipantId,
	pub kind: SecretKind,
	/// `blahaj` share bytes: x-coordinate, then one byte per secret byte.
	pub share: Vec<u8>,
}

/// The plaintext of an [`EncryptedShare`].
#[derive(Encode, Decode)]
struct SharePlaintext {
	from: ParticipantId,
	to: ParticipantId,
	mask_key: Vec<u8>,
	self_seed: Vec<u8>,
}

/// Encodes an update in fixed point (`round(x·2^FRAC_BITS)` as a two's-complement `u64`).
pub fn encode_fixed(values: &[f32]) -> Vec<u64> {
	let scale = (1u64 << FRAC_BITS) as f64;
	values.iter().map(|v| ((*v as f64) * scale).round() as i64 as u64).collect()
}

/// Decodes a (summed) fixed-point vector.
pub fn decode_fixed(values: &[u64]) -> Vec<f64> {
	let scale = (1u64 << FRAC_BITS) as f64;
	values.iter().map(|v| (*v as i64) as f64 / scale).collect()
}

/// `Σ values` in `Z_2^64`: what secure aggregation must reproduce exactly.
pub fn plain_sum(updates: &[&[u64]]) -> Vec<u64> {
	let len = updates.first().map_or(0, |u| u.len());
	let mut sum = vec![0u64; len];
	for u in updates {
		add_assign(&mut sum, u);
	}
	sum
}

fn add_assign(acc: &mut [u64], v: &[u64]) {
	for (a, b) in acc.iter_mut().zip(v) {
		*a = a.wrapping_add(*b);
	}
}

/// Adds (or subtracts) the PRG stream of `seed` to `acc`.
fn apply_prg(acc: &mut [u64], seed: [u8; 32], subtract: bool) {
	let mut prg = ChaCha20Rng::from_seed(seed);
	for a in acc.iter_mut() {
		let m = prg.next_u64();
		*a = if subtract { a.wrapping_sub(m) } else { a.wrapping_add(m) };
	}
}

fn kdf(domain: &[u8], session: &SessionId, shared: &[u8; 32]) -> [u8; 32] {
	sp_crypto_hashing::blake2_256(&(domain, session, shared).encode())
}

/// The seed of the pairwise mask between the holder of `sk` and the owner of `pk`; symmetric.
fn pair_seed(sk: &StaticSecret, pk: &[u8; 32], session: &SessionId) -> [u8; 32] {
	let shared = sk.diffie_hellman(&PublicKey::from(*pk));
	kdf(b"blyan/fl/mask", session, shared.as_bytes())
}

fn seed_commitment(seed: &[u8; 32], session: &SessionId) -> [u8; 32] {
	kdf(b"blyan/fl/seed", session, seed)
}

fn share_cipher(sk: &StaticSecret, pk: &[u8; 32], session: &SessionId) -> ChaCha20Poly1305 {
	let shared = sk.diffie_hellman(&PublicKey::from(*pk));
	ChaCha20Poly1305::new(Key::from_slice(&kdf(b"blyan/fl/share", session, shared.as_bytes())))
}

/// Both directions between two participants use one key: the nonce tells them apart.
fn share_nonce(from: ParticipantId, to: ParticipantId) -> Nonce {
	let mut n = [0u8; 12];
	n[..2].copy_from_slice(&from.to_le_bytes());
	n[2..4].copy_from_slice(&to.to_le_bytes());
	*Nonce::from_slice(&n)
}

fn check_ids<'a>(
	ids: impl Iterator<Item = &'a ParticipantId>,
) -> Result<BTreeSet<ParticipantId>, SecAggError> {
	let mut seen = BTreeSet::new();
	for id in ids {
		if !seen.insert(*id) {
			return Err(SecAggError::Duplicate(*id));
		}
		if *id as usize >= MAX_PARTICIPANTS {
			return Err(SecAggError::TooManyParticipants);
		}
	}
	Ok(seen)
}

/// One participant's secrets for one round. Never reuse across rounds: a dropped participant's
/// mask key is revealed.
pub struct Participant {
	id: ParticipantId,
	session: SessionId,
	threshold: usize,
	/// Fewest survivors this participant reveals shares for (at least the threshold).
	min_survivors: usize,
	mask_sk: StaticSecret,
	enc_sk: StaticSecret,
	self_seed: [u8; 32],
}

impl Participant {
	/// Fresh keys from `rng` (a CSPRNG: the operating system's in production).
	pub fn new<R: rand::CryptoRng>(
		id: ParticipantId,
		session: SessionId,
		threshold: usize,
		rng: &mut R,
	) -> Self {
		let mut bytes = [[0u8; 32]; 3];
		for b in &mut bytes {
			rng.fill_bytes(b);
		}
		Self {
			id,
			session,
			threshold,
			min_survivors: threshold,
			mask_sk: StaticSecret::from(bytes[0]),
			enc_sk: StaticSecret::from(bytes[1]),
			self_seed: bytes[2],
		}
	}

	pub fn id(&self) -> ParticipantId {
		self.id
	}

	/// Reveals nothing for fewer than `min` survivors (the job's least contributors: its noise
	/// is scaled for that many).
	pub fn with_min_survivors(mut self, min: usize) -> Self {
		self.min_survivors = min.max(self.threshold);
		self
	}

	pub fn advert(&self) -> KeyAdvert {
		KeyAdvert {
			id: self.id,
			mask_pk: PublicKey::from(&self.mask_sk).to_bytes(),
			enc_pk: PublicKey::from(&self.enc_sk).to_bytes(),
			seed_hash: seed_commitment(&self.self_seed, &self.session),
		}
	}

	/// Step 1: shares of the mask key and the self seed for every advertised participant
	/// (this one included: it keeps its own), each encrypted to its holder.
	pub fn share_keys(&self, adverts: &[KeyAdvert]) -> Result<Vec<EncryptedShare>, SecAggError> {
		let ids = check_ids(adverts.iter().map(|a| &a.id))?;
		if !ids.contains(&self.id) {
			return Err(SecAggError::UnknownParticipant(self.id));
		}
		if self.threshold == 0 || self.threshold > adverts.len() {
			return Err(SecAggError::BadThreshold { threshold: self.threshold, n: adverts.len() });
		}
		if 2 * self.threshold <= adverts.len() {
			return Err(SecAggError::MinorityThreshold {
				threshold: self.threshold,
				n: adverts.len(),
			});
		}
		let sharks = Sharks(self.threshold as u8);
		// Shares are drawn at x = 1, 2, …; participant `id` holds x = id + 1.
		let highest = *ids.last().expect("checked non-empty") as usize + 1;
		let mask_shares: Vec<Share> =
			sharks.dealer(&self.mask_sk.to_bytes()).take(highest).collect();
		let seed_shares: Vec<Share> = sharks.dealer(&self.self_seed).take(highest).collect();
		adverts
			.iter()
			.map(|a| {
				let plaintext = SharePlaintext {
					from: self.id,
					to: a.id,
					mask_key: Vec::from(&mask_shares[a.id as usize]),
					self_seed: Vec::from(&seed_shares[a.id as usize]),
				};
				let cipher = share_cipher(&self.enc_sk, &a.enc_pk, &self.session);
				let ciphertext = cipher
					.encrypt(
						&share_nonce(self.id, a.id),
						Payload { msg: &plaintext.encode(), aad: &self.session },
					)
					.map_err(|_| SecAggError::Decrypt { from: self.id, to: a.id })?;
				Ok(EncryptedShare { from: self.id, to: a.id, ciphertext })
			})
			.collect()
	}

	/// Step 2: the masked input. `sharers` are the participants whose shares reached everyone
	/// (the aggregator's list); masks are agreed with exactly those.
	pub fn mask(&self, input: &[u64], sharers: &[KeyAdvert]) -> Result<Vec<u64>, SecAggError> {
		let ids = check_ids(sharers.iter().map(|a| &a.id))?;
		if !ids.contains(&self.id) {
			return Err(SecAggError::UnknownParticipant(self.id));
		}
		if ids.len() < self.threshold {
			return Err(SecAggError::TooFewParticipants { have: ids.len(), need: self.threshold });
		}
		let mut y = input.to_vec();
		apply_prg(&mut y, self.self_seed, false);
		for a in sharers.iter().filter(|a| a.id != self.id) {
			// The lower id adds, the higher subtracts: the two cancel in the sum.
			apply_prg(&mut y, pair_seed(&self.mask_sk, &a.mask_pk, &self.session), a.id < self.id);
		}
		Ok(y)
	}

	/// Step 3: reveal shares for unmasking: the self-seed share of every survivor (its masked
	/// input arrived) and the mask-key share of every sharer that is not a survivor. Refuses a
	/// survivor list below the threshold or outside the sharers: that would let the aggregator
	/// peel one participant's masks off.
	pub fn unmask(
		&self,
		received: &[EncryptedShare],
		sharers: &[KeyAdvert],
		survivors: &[ParticipantId],
	) -> Result<Vec<RevealedShare>, SecAggError> {
		let sharer_ids = check_ids(sharers.iter().map(|a| &a.id))?;
		let survivor_ids = check_ids(survivors.iter())?;
		if !survivor_ids.is_subset(&sharer_ids) {
			return Err(SecAggError::NotSubset);
		}
		if survivor_ids.len() < self.min_survivors {
			return Err(SecAggError::TooFewParticipants {
				have: survivor_ids.len(),
				need: self.min_survivors,
			});
		}
		if 2 * self.threshold <= sharer_ids.len() {
			return Err(SecAggError::MinorityThreshold {
				threshold: self.threshold,
				n: sharer_ids.len(),
			});
		}
		let mut out = Vec::new();
		for share in received {
			if share.to != self.id {
				return Err(SecAggError::MalformedShare { from: share.from, to: share.to });
			}
			let Some(sender) = sharers.iter().find(|a| a.id == share.from) else {
				continue; // not a sharer: its shares are not needed
			};
			let cipher = share_cipher(&self.enc_sk, &sender.enc_pk, &self.session);
			let plain = cipher
				.decrypt(
					&share_nonce(share.from, self.id),
					Payload { msg: &share.ciphertext, aad: &self.session },
				)
				.map_err(|_| SecAggError::Decrypt { from: share.from, to: self.id })?;
			let plain = SharePlaintext::decode(&mut &plain[..])
				.ok()
				.filter(|p| p.from == share.from && p.to == self.id)
				.ok_or(SecAggError::MalformedShare { from: share.from, to: self.id })?;
			let (kind, bytes) = if survivor_ids.contains(&share.from) {
				(SecretKind::SelfSeed, plain.self_seed)
			} else {
				(SecretKind::MaskKey, plain.mask_key)
			};
			out.push(RevealedShare { owner: share.from, kind, share: bytes });
		}
		Ok(out)
	}
}

/// The aggregator's last step: the sum of the survivors' inputs from their masked inputs and
/// the revealed shares. Checks every rebuilt mask key against its advert.
pub fn unmask_sum(
	sharers: &[KeyAdvert],
	masked: &BTreeMap<ParticipantId, Vec<u64>>,
	revealed: &[RevealedShare],
	threshold: usize,
	session: &SessionId,
) -> Result<Vec<u64>, SecAggError> {
	let sharer_ids = check_ids(sharers.iter().map(|a| &a.id))?;
	if masked.keys().any(|id| !sharer_ids.contains(id)) {
		return Err(SecAggError::NotSubset);
	}
	if masked.len() < threshold {
		return Err(SecAggError::TooFewParticipants { have: masked.len(), need: threshold });
	}
	let len = masked.values().next().map_or(0, |v| v.len());
	let mut sum = vec![0u64; len];
	for (id, y) in masked {
		if y.len() != len {
			return Err(SecAggError::Length { id: *id, got: y.len(), want: len });
		}
		add_assign(&mut sum, y);
	}

	let recover = |owner, kind| recover_secret(revealed, owner, kind, threshold);
	for id in masked.keys() {
		let seed = recover(*id, SecretKind::SelfSeed)?;
		let advert = sharers.iter().find(|a| a.id == *id).expect("masked ⊆ sharers, checked above");
		if seed_commitment(&seed, session) != advert.seed_hash {
			return Err(SecAggError::SeedMismatch(*id));
		}
		apply_prg(&mut sum, seed, true);
	}
	for dropped in sharers.iter().filter(|a| !masked.contains_key(&a.id)) {
		let sk = StaticSecret::from(recover(dropped.id, SecretKind::MaskKey)?);
		if PublicKey::from(&sk).to_bytes() != dropped.mask_pk {
			return Err(SecAggError::KeyMismatch(dropped.id));
		}
		for survivor in sharers.iter().filter(|a| masked.contains_key(&a.id)) {
			// The survivor applied +PRG if the dropped one's id was higher, −PRG if lower.
			let seed = pair_seed(&sk, &survivor.mask_pk, session);
			apply_prg(&mut sum, seed, survivor.id < dropped.id);
		}
	}
	Ok(sum)
}

/// Rebuilds one secret of `owner` from the revealed shares (at least `threshold` of them).
pub fn recover_secret(
	revealed: &[RevealedShare],
	owner: ParticipantId,
	kind: SecretKind,
	threshold: usize,
) -> Result<[u8; 32], SecAggError> {
	let threshold = u8::try_from(threshold).map_err(|_| SecAggError::Recover {
		owner,
		reason: format!("threshold {threshold} above {MAX_PARTICIPANTS}"),
	})?;
	// One share per x-coordinate, none at x = 0 (that would be the secret itself), each with 32
	// bytes of secret: interpolating a duplicate or a stray point would give a wrong secret.
	let mut by_x: BTreeMap<u8, &[u8]> = BTreeMap::new();
	for r in revealed.iter().filter(|r| r.owner == owner && r.kind == kind) {
		let bad = |reason: &str| SecAggError::Recover { owner, reason: reason.into() };
		if r.share.len() != 33 || r.share[0] == 0 {
			return Err(bad("a share is not 32 bytes at a non-zero x"));
		}
		if by_x.insert(r.share[0], &r.share).is_some_and(|prev| prev != r.share.as_slice()) {
			return Err(bad("two different shares at one x"));
		}
	}
	let shares = by_x
		.values()
		.map(|bytes| {
			Share::try_from(*bytes)
				.map_err(|e| SecAggError::Recover { owner, reason: e.to_string() })
		})
		.collect::<Result<Vec<_>, _>>()?;
	let secret = Sharks(threshold)
		.recover(&shares)
		.map_err(|e| SecAggError::Recover { owner, reason: e.to_string() })?;
	secret
		.try_into()
		.map_err(|_| SecAggError::Recover { owner, reason: "the secret is not 32 bytes".into() })
}

/// The most an honest-but-curious aggregator can take off one survivor's masked input: its
/// self mask (rebuilt from the revealed shares). What is left is the input plus its pairwise
/// masks, whose keys are never revealed for a survivor.
pub fn strip_self_mask(
	masked: &[u64],
	owner: ParticipantId,
	revealed: &[RevealedShare],
	threshold: usize,
) -> Result<Vec<u64>, SecAggError> {
	let mut v = masked.to_vec();
	apply_prg(&mut v, recover_secret(revealed, owner, SecretKind::SelfSeed, threshold)?, true);
	Ok(v)
}

#[cfg(test)]
mod tests {
	use super::*;
	use rand_chacha::ChaCha20Rng;

	fn round(n: usize, threshold: usize, len: usize) -> (Vec<Participant>, Vec<Vec<u64>>) {
		let mut rng = ChaCha20Rng::seed_from_u64(7);
		let session = [9u8; 32];
		let parts = (0..n)
			.map(|i| Participant::new(i as ParticipantId, session, threshold, &mut rng))
			.collect();
		let inputs = (0..n)
			.map(|i| {
				encode_fixed(
					&(0..len)
						.map(|k| (i as f32 + 1.0) * 0.01 - k as f32 * 1e-3)
						.collect::<Vec<_>>(),
				)
			})
			.collect();
		(parts, inputs)
	}

	/// Runs the protocol; `drop_before_input` never send their masked input (they did share keys).
	fn run(
		parts: &[Participant],
		inputs: &[Vec<u64>],
		drop_before_input: &[ParticipantId],
	) -> Result<Vec<u64>, SecAggError> {
		let adverts: Vec<_> = parts.iter().map(Participant::advert).collect();
		let mut inbox: BTreeMap<ParticipantId, Vec<EncryptedShare>> = BTreeMap::new();
		for p in parts {
			for s in p.share_keys(&adverts)? {
				inbox.entry(s.to).or_default().push(s);
			}
		}
		let mut masked = BTreeMap::new();
		for (p, x) in parts.iter().zip(inputs) {
			let y = p.mask(x, &adverts)?;
			if !drop_before_input.contains(&p.id()) {
				masked.insert(p.id(), y);
			}
		}
		let survivors: Vec<_> = masked.keys().copied().collect();
		let mut revealed = Vec::new();
		for p in parts.iter().filter(|p| survivors.contains(&p.id())) {
			revealed.extend(p.unmask(&inbox[&p.id()], &adverts, &survivors)?);
		}
		unmask_sum(&adverts, &masked, &revealed, parts[0].threshold, &[9u8; 32])
	}

	#[test]
	fn sum_is_exact() {
		let (parts, inputs) = round(5, 3, 100);
		let expected = plain_sum(&inputs.iter().map(Vec::as_slice).collect::<Vec<_>>());
		assert_eq!(run(&parts, &inputs, &[]).unwrap(), expected);
	}

	#[test]
	fn dropout_after_masking_is_recovered() {
		let (parts, inputs) = round(5, 3, 64);
		let expected = plain_sum(&[&inputs[0], &inputs[1], &inputs[3], &inputs[4]]);
		assert_eq!(run(&parts, &inputs, &[2]).unwrap(), expected);
		let expected = plain_sum(&[&inputs[0], &inputs[1], &inputs[2]]);
		assert_eq!(run(&parts, &inputs, &[3, 4]).unwrap(), expected);
	}

	#[test]
	fn too_many_dropouts_refused() {
		let (parts, inputs) = round(5, 3, 8);
		assert_eq!(
			run(&parts, &inputs, &[0, 1, 2]),
			Err(SecAggError::TooFewParticipants { have: 2, need: 3 })
		);
	}

	#[test]
	fn a_participant_refuses_to_reveal_to_a_small_survivor_set() {
		let (parts, _) = round(5, 3, 8);
		let adverts: Vec<_> = parts.iter().map(Participant::advert).collect();
		let shares = parts[0].share_keys(&adverts).unwrap();
		let mine: Vec<_> = shares.into_iter().filter(|s| s.to == 0).collect();
		assert!(matches!(
			parts[0].unmask(&mine, &adverts, &[0, 1]),
			Err(SecAggError::TooFewParticipants { .. })
		));
	}

	#[test]
	fn tampered_share_is_caught() {
		let (parts, _) = round(3, 2, 8);
		let adverts: Vec<_> = parts.iter().map(Participant::advert).collect();
		let mut shares: Vec<_> =
			parts[1].share_keys(&adverts).unwrap().into_iter().filter(|s| s.to == 0).collect();
		shares[0].ciphertext[3] ^= 1;
		assert_eq!(
			parts[0].unmask(&shares, &adverts, &[0, 1, 2]),
			Err(SecAggError::Decrypt { from: 1, to: 0 })
		);
	}

	#[test]
	fn a_bad_revealed_share_fails_the_round_instead_of_corrupting_the_sum() {
		let (parts, inputs) = round(5, 3, 16);
		let adverts: Vec<_> = parts.iter().map(Participant::advert).collect();
		let mut inbox: BTreeMap<ParticipantId, Vec<EncryptedShare>> = BTreeMap::new();
		for p in &parts {
			for s in p.share_keys(&adverts).unwrap() {
				inbox.entry(s.to).or_default().push(s);
			}
		}
		let masked: BTreeMap<_, _> = parts
			.iter()
			.zip(&inputs)
			.map(|(p, x)| (p.id(), p.mask(x, &adverts).unwrap()))
			.collect();
		let survivors: Vec<_> = masked.keys().copied().collect();
		let mut revealed = Vec::new();
		for p in &parts {
			revealed.extend(p.unmask(&inbox[&p.id()], &adverts, &survivors).unwrap());
		}
		let session = [9u8; 32];
		assert!(unmask_sum(&adverts, &masked, &revealed, 3, &session).is_ok());
		// One byte of one self-seed share changed: the rebuilt seed misses its commitment.
		let mut bad = revealed.clone();
		let i = bad.iter().position(|r| r.owner == 1 && r.kind == SecretKind::SelfSeed).unwrap();
		bad[i].share[5] ^= 1;
		assert_eq!(
			unmask_sum(&adverts, &masked, &bad, 3, &session),
			Err(SecAggError::SeedMismatch(1))
		);
		// A share sent twice is harmless; a share at x = 0 is refused.
		let mut twice = revealed.clone();
		twice.push(revealed[0].clone());
		assert!(unmask_sum(&adverts, &masked, &twice, 3, &session).is_ok());
		let mut zero = revealed.clone();
		zero[0].share[0] = 0;
		assert!(matches!(
			unmask_sum(&adverts, &masked, &zero, 3, &session),
			Err(SecAggError::Recover { .. })
		));
	}

	#[test]
	fn a_minority_threshold_is_refused() {
		let (parts, _) = round(5, 2, 8);
		let adverts: Vec<_> = parts.iter().map(Participant::advert).collect();
		assert_eq!(
			parts[0].share_keys(&adverts),
			Err(SecAggError::MinorityThreshold { threshold: 2, n: 5 })
		);
	}

	#[test]
	fn fixed_point_round_trip() {
		let v = [0.5f32, -1.25, 3.0e-7, -7.0];
		let back = decode_fixed(&encode_fixed(&v));
		for (a, b) in v.iter().zip(back) {
			assert!((*a as f64 - b).abs() <= 0.5 / (1u64 << FRAC_BITS) as f64);
		}
	}
}
