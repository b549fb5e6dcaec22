//! Settings (config file, then environment and flags over it) and the signing key.

use std::{
	path::{Path, PathBuf},
	time::Duration,
};

use serde::Deserialize;
use subxt_signer::{sr25519::Keypair, SecretUri};

/// The optional TOML config file (`--config`); every key is also a flag and an environment variable.
/// (No `Debug`: it may hold the secret key.)
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
	pub node: Option<String>,
	pub ipfs: Option<String>,
	pub key: Option<String>,
	pub key_file: Option<PathBuf>,
	pub state_dir: Option<PathBuf>,
	pub memory_mb: Option<u32>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
	#[error("config file {path}: {reason}")]
	File { path: PathBuf, reason: String },
	#[error("no signing key: pass --key <secret URI> (e.g. //Alice on a dev chain) or --key-file <file>")]
	NoKey,
	#[error("key file {path}: {reason}")]
	KeyFile { path: PathBuf, reason: String },
	#[error("the secret key is not a valid secret URI or mnemonic")]
	BadKey,
}

impl FileConfig {
	pub fn load(path: Option<&Path>) -> Result<Self, ConfigError> {
		let Some(path) = path else { return Ok(Self::default()) };
		let text = std::fs::read_to_string(path)
			.map_err(|e| ConfigError::File { path: path.into(), reason: e.to_string() })?;
		let config: Self = toml::from_str(&text)
			.map_err(|e| ConfigError::File { path: path.into(), reason: e.to_string() })?;
		// A config file holding the secret itself is a key file: same rule.
		if config.key.is_some() {
			check_private(path)
				.map_err(|reason| ConfigError::File { path: path.into(), reason })?;
		}
		Ok(config)
	}
}

/// Everything a role needs to reach its services.
#[derive(Clone, Debug)]
pub struct Settings {
	pub node: String,
	pub ipfs: String,
	pub state_dir: PathBuf,
	pub memory_mb: u32,
	pub ipfs_timeout: Duration,
}

/// The key from a secret URI (`//Alice`, a mnemonic, `0x…` seed, with `//hard/soft` paths) or
/// from a file holding one, which must not be readable by others (mode 0600 or stricter).
/// The secret itself is never logged or echoed in errors.
pub fn load_key(uri: Option<&str>, file: Option<&Path>) -> Result<Keypair, ConfigError> {
	let secret = match (uri, file) {
		(Some(uri), _) => uri.to_string(),
		(None, Some(path)) => read_key_file(path)?,
		(None, None) => return Err(ConfigError::NoKey),
	};
	let uri: SecretUri = secret.trim().parse().map_err(|_| ConfigError::BadKey)?;
	Keypair::from_uri(&uri).map_err(|_| ConfigError::BadKey)
}

fn check_private(path: &Path) -> Result<(), String> {
	let meta = std::fs::metadata(path).map_err(|e| e.to_string())?;
	#[cfg(unix)]
	{
		use std::os::unix::fs::PermissionsExt;
		let mode = meta.permissions().mode() & 0o777;
		if mode & 0o077 != 0 {
			return Err(format!("mode {mode:o} lets others read it; run chmod 600"));
		}
	}
	let _ = meta;
	Ok(())
}

fn read_key_file(path: &Path) -> Result<String, ConfigError> {
	let err = |reason: String| ConfigError::KeyFile { path: path.into(), reason };
	check_private(path).map_err(err)?;
	std::fs::read_to_string(path).map_err(|e| err(e.to_string()))
}

/// Writes `secret` to a new key file readable only by its owner.
pub fn write_key_file(path: &Path, secret: &str) -> std::io::Result<()> {
	use std::io::Write;
	let mut options = std::fs::OpenOptions::new();
	options.write(true).create_new(true);
	#[cfg(unix)]
	{
		use std::os::unix::fs::OpenOptionsExt;
		options.mode(0o600);
	}
	options.open(path)?.write_all(secret.as_bytes())
}
