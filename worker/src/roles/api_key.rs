//! API key role: issue, list and revoke the keys a gateway (or a server answering the OpenAI
//! API) lets in (`gateway --api-keys FILE`); no chain needed. The key file keeps hashes only:
//! a key is shown once, when created.

use std::path::PathBuf;

use anyhow::Result;
use clap::Subcommand;

use super::usage;
use crate::inference::api_keys::{load_usage, KeyFile};

#[derive(clap::Args)]
pub struct Args {
	/// The key file (JSON; created by the first `create`).
	#[arg(long, global = true, default_value = "api-keys.json")]
	file: PathBuf,
	#[command(subcommand)]
	action: Action,
}

#[derive(Subcommand)]
enum Action {
	/// Issue a key and print it (it is not kept: only its hash is).
	Create {
		/// Whom the key is issued to.
		#[arg(long)]
		name: String,
		/// Tokens (prompt and completion) the key may use per UTC day; default no limit.
		#[arg(long)]
		daily_tokens: Option<u64>,
	},
	/// The keys, their quotas and what each used (as the gateway last wrote it).
	List,
	/// Revoke a key by its id: the gateway refuses it from its next request on.
	Revoke { id: String },
}

pub async fn run(args: Args) -> Result<()> {
	match args.action {
		Action::Create { name, daily_tokens } => {
			if daily_tokens == Some(0) {
				return Err(usage("--daily-tokens 0 would let nothing through"));
			}
			let (entry, key) = KeyFile::create(&args.file, &name, daily_tokens)?;
			println!("created {} for {} in {}", entry.id, entry.name, args.file.display());
			println!("key: {key}");
			println!("(shown once: the file keeps only its hash)");
		}
		Action::List => {
			let file = KeyFile::load(&args.file)?;
			let used = load_usage(&args.file)?;
			println!(
				"{:<13} {:<16} {:>12} {:>12} {:>9} {:>12}  status",
				"id", "name", "daily quota", "used today", "requests", "tokens"
			);
			let today = std::time::SystemTime::now()
				.duration_since(std::time::UNIX_EPOCH)
				.map(|d| d.as_secs() / 86_400)
				.unwrap_or(0);
			for k in &file.keys {
				let u = used.get(&k.id).cloned().unwrap_or_default();
				let today_used = if u.day == today { u.tokens_today } else { 0 };
				let quota = k.daily_tokens.map_or("none".into(), |q| q.to_string());
				let status = if k.revoked { "revoked" } else { "active" };
				println!(
					"{:<13} {:<16} {:>12} {:>12} {:>9} {:>12}  {status}",
					k.id, k.name, quota, today_used, u.requests, u.tokens_total
				);
			}
		}
		Action::Revoke { id } => {
			if !KeyFile::revoke(&args.file, &id)? {
				return Err(usage(format!("no key {id} in {}", args.file.display())));
			}
			println!("revoked {id}");
		}
	}
	Ok(())
}
