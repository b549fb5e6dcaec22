//! API keys: who may use a gateway's OpenAI API (which spends its account's BLY on every
//! request) and how much. `blyan-worker api-key create` issues a key (`bly-` and 64 hex digits,
//! shown once) into a key file that keeps only its BLAKE2-256 hash, a name and an optional daily
//! token quota; `revoke` marks it revoked. The gateway reads the key file again whenever it
//! changes (a revoked key is refused at its next request), asks `Authorization: Bearer <key>`
//! of every request, holds the request's tokens (prompt and `max_tokens`) against the key's
//! quota while it runs, counts what it used, and keeps each key's usage in
//! `<key file>.usage.json` (written by the gateway alone, every few seconds and at shutdown).

use std::{
	collections::{BTreeMap, HashMap},
	path::{Path, PathBuf},
	sync::Mutex,
	time::{SystemTime, UNIX_EPOCH},
};

use anyhow::{bail, Context, Result};
use rand::RngCore;
use serde::{Deserialize, Serialize};

/// A key as the key file keeps it (the key itself is not kept).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct KeyEntry {
	/// Names the key in usage and logs (`key-` and the hash's first 8 hex digits).
	pub id: String,
	/// Whom the key was issued to.
	pub name: String,
	/// BLAKE2-256 of the key's text, hex.
	pub hash: String,
	/// Tokens (prompt and completion) the key may use per UTC day; `None`: no limit.
	pub daily_tokens: Option<u64>,
	/// Seconds since the Unix epoch.
	pub created: u64,
	#[serde(default)]
	pub revoked: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct KeyFile {
	pub keys: Vec<KeyEntry>,
}

/// What a key used.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct KeyUsage {
	/// The UTC day (days since the Unix epoch) `tokens_today` counts.
	pub day: u64,
	pub tokens_today: u64,
	pub requests: u64,
	pub tokens_total: u64,
}

/// Why a request is not let in: 401 (OpenAI's `invalid_api_key`).
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum AuthError {
	#[error("no API key: send `Authorization: Bearer <key>` (keys come from `blyan-worker api-key create`)")]
	Missing,
	#[error("the API key is not valid")]
	Unknown,
	#[error("the API key was revoked")]
	Revoked,
}

/// Why a request exceeds its key's quota: 429 (OpenAI's `insufficient_quota`).
#[derive(Debug, thiserror::Error, PartialEq)]
#[error("the key's daily quota of {quota} tokens leaves {left} (held by running requests included); this request needs at least {needs}")]
pub struct QuotaError {
	pub quota: u64,
	pub left: u64,
	pub needs: u64,
}

fn now_secs() -> u64 {
	SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

fn today() -> u64 {
	now_secs() / 86_400
}

fn hash_key(key: &str) -> String {
	hex::encode(sp_crypto_hashing::blake2_256(key.as_bytes()))
}

/// The key file's modification time and length: a change of either reads it again (a rewrite
/// within the clock's resolution changes the length: each entry has a 64-digit hash).
fn file_stamp(path: &Path) -> Option<(SystemTime, u64)> {
	let meta = std::fs::metadata(path).ok()?;
	Some((meta.modified().ok()?, meta.len()))
}

/// Where the gateway keeps the usage of the keys in `keys`.
pub fn usage_path(keys: &Path) -> PathBuf {
	let mut name = keys.file_name().unwrap_or_default().to_os_string();
	name.push(".usage.json");
	keys.with_file_name(name)
}

fn read_json<T: for<'de> Deserialize<'de> + Default>(path: &Path) -> Result<T> {
	match std::fs::read(path) {
		Ok(bytes) => serde_json::from_slice(&bytes)
			.with_context(|| format!("{} is not a Blyan key or usage file", path.display())),
		Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(T::default()),
		Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
	}
}

/// Writes `value` to `path` whole or not at all (a reader never sees half a file).
fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<()> {
	let tmp = path.with_extension("tmp");
	std::fs::write(&tmp, serde_json::to_vec_pretty(value)?)
		.with_context(|| format!("writing {}", tmp.display()))?;
	std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))
}

impl KeyFile {
	pub fn load(path: &Path) -> Result<Self> {
		read_json(path)
	}

	/// Issues a key named `name` into the key file at `path` (created if missing); returns its
	/// entry and the key, which is not kept anywhere.
	pub fn create(
		path: &Path,
		name: &str,
		daily_tokens: Option<u64>,
	) -> Result<(KeyEntry, String)> {
		if name.trim().is_empty() {
			bail!("a key needs a name (whom it is issued to)");
		}
		let mut file = Self::load(path)?;
		let mut secret = [0u8; 32];
		rand::rng().fill_bytes(&mut secret);
		let key = format!("bly-{}", hex::encode(secret));
		let hash = hash_key(&key);
		let entry = KeyEntry {
			id: format!("key-{}", &hash[..8]),
			name: name.trim().to_string(),
			hash,
			daily_tokens,
			created: now_secs(),
			revoked: false,
		};
		if file.keys.iter().any(|k| k.id == entry.id) {
			bail!("a key with id {} exists already: run the command again", entry.id);
		}
		file.keys.push(entry.clone());
		write_json(path, &file)?;
		Ok((entry, key))
	}

	/// Marks the key `id` revoked; whether there was one.
	pub fn revoke(path: &Path, id: &str) -> Result<bool> {
		let mut file = Self::load(path)?;
		let Some(entry) = file.keys.iter_mut().find(|k| k.id == id) else { return Ok(false) };
		entry.revoked = true;
		write_json(path, &file)?;
		Ok(true)
	}
}

/// The usage the gateway recorded for the keys in `keys`.
pub fn load_usage(keys: &Path) -> Result<BTreeMap<String, KeyUsage>> {
	read_json(&usage_path(keys))
}

struct KeysState {
	/// Entries by key hash.
	by_hash: HashMap<String, KeyEntry>,
	/// The key file's modification time and length when read.
	modified: Option<(SystemTime, u64)>,
	usage: BTreeMap<String, KeyUsage>,
	/// Tokens held by running requests, per key.
	held: HashMap<String, u64>,
	dirty: bool,
}

/// A gateway's keys, their quotas and usage.
pub struct ApiKeys {
	path: PathBuf,
	state: Mutex<KeysState>,
}

/// Tokens held for a running request: settled with [`ApiKeys::settle`].
#[derive(Debug, PartialEq)]
pub struct Hold {
	pub key: String,
	pub tokens: u64,
	/// Completion tokens the request may generate (its `max_tokens`, cut to the quota left).
	pub completion_tokens: usize,
}

/// A [`Hold`] released when dropped (a request that ends in any way, a panic included), counting
/// `used` tokens.
pub struct HeldTokens {
	keys: std::sync::Arc<ApiKeys>,
	hold: Option<Hold>,
	pub used: u64,
}

impl HeldTokens {
	pub fn new(keys: std::sync::Arc<ApiKeys>, hold: Hold) -> Self {
		Self { keys, hold: Some(hold), used: 0 }
	}
}

impl Drop for HeldTokens {
	fn drop(&mut self) {
		if let Some(hold) = self.hold.take() {
			self.keys.settle(hold, self.used);
		}
	}
}

impl ApiKeys {
	/// Reads the key file at `path` (it must exist and hold a key) and the usage kept beside it.
	pub fn open(path: &Path) -> Result<Self> {
		let file = KeyFile::load(path)?;
		if !path.exists() || file.keys.is_empty() {
			bail!(
				"{} holds no API keys: create one with `blyan-worker api-key create --file {} --name NAME`",
				path.display(),
				path.display()
			);
		}
		let modified = file_stamp(path);
		let state = KeysState {
			by_hash: file.keys.into_iter().map(|k| (k.hash.clone(), k)).collect(),
			modified,
			usage: load_usage(path)?,
			held: HashMap::new(),
			dirty: false,
		};
		Ok(Self { path: path.to_path_buf(), state: Mutex::new(state) })
	}

	/// Reads the key file again if it changed since (a key revoked or added meanwhile).
	fn refresh(&self, state: &mut KeysState) {
		let modified = file_stamp(&self.path);
		if modified == state.modified {
			return;
		}
		match KeyFile::load(&self.path) {
			Ok(file) => {
				state.by_hash = file.keys.into_iter().map(|k| (k.hash.clone(), k)).collect();
				state.modified = modified;
			}
			// Half-written by hand, or gone: the keys last read stay in force.
			Err(e) => tracing::warn!("{e:#}; keeping the keys read before"),
		}
	}

	/// The key an `Authorization` header's value presents.
	pub fn authorize(&self, authorization: Option<&str>) -> Result<KeyEntry, AuthError> {
		let key = authorization
			.and_then(|h| h.strip_prefix("Bearer ").or_else(|| h.strip_prefix("bearer ")))
			.map(str::trim)
			.filter(|k| !k.is_empty())
			.ok_or(AuthError::Missing)?;
		let mut state = self.state.lock().expect("keys lock");
		self.refresh(&mut state);
		let entry = state.by_hash.get(&hash_key(key)).ok_or(AuthError::Unknown)?;
		if entry.revoked {
			return Err(AuthError::Revoked);
		}
		Ok(entry.clone())
	}

	/// Holds `prompt_tokens` and up to `max_completion` tokens of `key`'s quota for a request: at
	/// least the prompt and one token must fit.
	pub fn hold(
		&self,
		key: &KeyEntry,
		prompt_tokens: usize,
		max_completion: usize,
	) -> Result<Hold, QuotaError> {
		let mut state = self.state.lock().expect("keys lock");
		let day = today();
		let used = state.usage.get(&key.id).filter(|u| u.day == day).map_or(0, |u| u.tokens_today);
		let held = state.held.get(&key.id).copied().unwrap_or(0);
		let prompt = prompt_tokens as u64;
		let completion = match key.daily_tokens {
			None => max_completion as u64,
			Some(quota) => {
				let left = quota.saturating_sub(used).saturating_sub(held);
				if left < prompt + 1 {
					return Err(QuotaError { quota, left, needs: prompt + 1 });
				}
				(max_completion as u64).min(left - prompt)
			}
		};
		let tokens = prompt + completion;
		*state.held.entry(key.id.clone()).or_default() += tokens;
		Ok(Hold { key: key.id.clone(), tokens, completion_tokens: completion as usize })
	}

	/// Releases `hold` and counts the `used` tokens of its request (0 if it failed).
	pub fn settle(&self, hold: Hold, used: u64) {
		let mut state = self.state.lock().expect("keys lock");
		if let Some(held) = state.held.get_mut(&hold.key) {
			*held = held.saturating_sub(hold.tokens);
			if *held == 0 {
				state.held.remove(&hold.key);
			}
		}
		let day = today();
		let usage = state.usage.entry(hold.key).or_default();
		if usage.day != day {
			usage.day = day;
			usage.tokens_today = 0;
		}
		usage.tokens_today += used;
		usage.tokens_total += used;
		usage.requests += 1;
		state.dirty = true;
	}

	/// What `key` used (today's count is 0 on a new day).
	pub fn usage(&self, key: &KeyEntry) -> KeyUsage {
		let state = self.state.lock().expect("keys lock");
		let mut usage = state.usage.get(&key.id).cloned().unwrap_or_default();
		if usage.day != today() {
			usage.day = today();
			usage.tokens_today = 0;
		}
		usage
	}

	/// Writes the usage file if anything was counted since the last write.
	pub fn flush(&self) -> Result<()> {
		let usage = {
			let mut state = self.state.lock().expect("keys lock");
			if !state.dirty {
				return Ok(());
			}
			state.dirty = false;
			state.usage.clone()
		};
		let written = write_json(&usage_path(&self.path), &usage);
		if written.is_err() {
			// Written at the next flush.
			self.state.lock().expect("keys lock").dirty = true;
		}
		written
	}
}

#[cfg(test)]
mod tests {
	use super::*;

	#[test]
	fn issued_keys_let_their_bearer_in_and_nobody_else() {
		let dir = tempfile::tempdir().unwrap();
		let path = dir.path().join("keys.json");
		assert!(ApiKeys::open(&path).is_err(), "no keys: a gateway would refuse everyone");
		let (alice, alice_key) = KeyFile::create(&path, "alice", None).unwrap();
		assert!(alice_key.starts_with("bly-") && alice_key.len() == 68);
		let text = std::fs::read_to_string(&path).unwrap();
		assert!(!text.contains(&alice_key[4..]), "the key itself is not kept");
		let keys = ApiKeys::open(&path).unwrap();
		let bearer = format!("Bearer {alice_key}");
		assert_eq!(keys.authorize(Some(&bearer)).unwrap(), alice);
		assert_eq!(keys.authorize(None), Err(AuthError::Missing));
		assert_eq!(keys.authorize(Some(&alice_key)), Err(AuthError::Missing), "no scheme");
		let other = format!("Bearer bly-{}", "0".repeat(64));
		assert_eq!(keys.authorize(Some(&other)), Err(AuthError::Unknown));

		// A key created and one revoked while the gateway runs count at the next request.
		let (_, bob_key) = KeyFile::create(&path, "bob", Some(10)).unwrap();
		assert!(KeyFile::revoke(&path, &alice.id).unwrap());
		assert!(!KeyFile::revoke(&path, "key-none").unwrap());
		// Within the clock's resolution the file's time may not move: its length does.
		assert_eq!(keys.authorize(Some(&bearer)), Err(AuthError::Revoked));
		assert_eq!(keys.authorize(Some(&format!("Bearer {bob_key}"))).unwrap().name, "bob");
	}

	#[test]
	fn quotas_hold_running_requests_and_count_what_was_used() {
		let dir = tempfile::tempdir().unwrap();
		let path = dir.path().join("keys.json");
		let (key, _) = KeyFile::create(&path, "carol", Some(100)).unwrap();
		let keys = ApiKeys::open(&path).unwrap();
		// 30 prompt tokens and up to 50 more: all fit.
		let first = keys.hold(&key, 30, 50).unwrap();
		assert_eq!((first.tokens, first.completion_tokens), (80, 50));
		// 20 left while the first runs: a 15-token prompt gets at most 5 more.
		let second = keys.hold(&key, 15, 50).unwrap();
		assert_eq!(second.completion_tokens, 5);
		assert_eq!(keys.hold(&key, 1, 1), Err(QuotaError { quota: 100, left: 0, needs: 2 }));
		// The first used 40 of its 80, the second failed: 60 left.
		keys.settle(first, 40);
		keys.settle(second, 0);
		let usage = keys.usage(&key);
		assert_eq!((usage.tokens_today, usage.requests, usage.tokens_total), (40, 2, 40));
		assert_eq!(keys.hold(&key, 10, 1_000).unwrap().completion_tokens, 50);

		// Usage survives a restart of the gateway.
		keys.flush().unwrap();
		let again = ApiKeys::open(&path).unwrap();
		assert_eq!(again.usage(&key).tokens_total, 40);
		assert_eq!(load_usage(&path).unwrap()[&key.id].requests, 2);
	}
}
