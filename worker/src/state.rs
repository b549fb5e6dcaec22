//! The worker's local state directory: one JSON file per record, written atomically (temp file,
//! then rename), so a crash leaves either the old or the new record, never half of one. It holds
//! what the chain cannot: salts of commitments, trained weights not yet revealed.

use std::{
	fs,
	path::{Path, PathBuf},
};

use serde::{de::DeserializeOwned, Serialize};

#[derive(Clone, Debug)]
pub struct StateDir {
	root: PathBuf,
}

impl StateDir {
	/// Opens (creating) the directory, readable by its owner only: it holds salts and the
	/// creator's validation sets before their reveal.
	pub fn open(root: &Path) -> std::io::Result<Self> {
		fs::create_dir_all(root)?;
		#[cfg(unix)]
		{
			use std::os::unix::fs::PermissionsExt;
			fs::set_permissions(root, fs::Permissions::from_mode(0o700))?;
		}
		Ok(Self { root: root.to_path_buf() })
	}

	pub fn path(&self, parts: &[&str]) -> PathBuf {
		let mut p = self.root.clone();
		for part in parts {
			p.push(part);
		}
		p
	}

	pub fn save<T: Serialize>(&self, kind: &str, id: &str, value: &T) -> std::io::Result<()> {
		let dir = self.path(&[kind]);
		fs::create_dir_all(&dir)?;
		let tmp = dir.join(format!(".{id}.json.tmp"));
		{
			use std::io::Write;
			let mut file = fs::File::create(&tmp)?;
			file.write_all(&serde_json::to_vec_pretty(value).expect("plain records serialise"))?;
			// On disk before the rename makes it the record: a power loss leaves old or new.
			file.sync_all()?;
		}
		fs::rename(tmp, dir.join(format!("{id}.json")))?;
		fs::File::open(&dir)?.sync_all()
	}

	pub fn load<T: DeserializeOwned>(&self, kind: &str, id: &str) -> std::io::Result<Option<T>> {
		match fs::read(self.path(&[kind, &format!("{id}.json")])) {
			Ok(bytes) => serde_json::from_slice(&bytes)
				.map(Some)
				.map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e)),
			Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
			Err(e) => Err(e),
		}
	}

	/// Forgets a record (absent already is fine).
	pub fn remove(&self, kind: &str, id: &str) -> std::io::Result<()> {
		match fs::remove_file(self.path(&[kind, &format!("{id}.json")])) {
			Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
			_ => Ok(()),
		}
	}

	/// Ids of the records of `kind`.
	pub fn list(&self, kind: &str) -> std::io::Result<Vec<String>> {
		let dir = self.path(&[kind]);
		let Ok(entries) = fs::read_dir(&dir) else { return Ok(Vec::new()) };
		let mut ids = Vec::new();
		for entry in entries {
			let name = entry?.file_name().to_string_lossy().into_owned();
			if let Some(id) = name.strip_suffix(".json") {
				if !name.starts_with('.') {
					ids.push(id.to_string());
				}
			}
		}
		ids.sort();
		Ok(ids)
	}
}

/// A fresh random 32-byte salt.
pub fn salt() -> [u8; 32] {
	use rand::RngCore;
	let mut s = [0u8; 32];
	rand::rng().fill_bytes(&mut s);
	s
}
