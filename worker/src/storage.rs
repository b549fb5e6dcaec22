//! Storage role: content-addressed blobs through the kubo HTTP RPC (`/api/v0`), which both kubo
//! and js-ipfs serve. A thin client over reqwest: `ipfs-api-backend-hyper` cannot be resolved from
//! crates.io any more (every version of its dependency `core2` is yanked) and its `add` fails
//! against js-ipfs, which returns `Size` as a number.

use std::time::Duration;

use reqwest::multipart::{Form, Part};
use serde_json::Value;

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
	#[error("IPFS RPC at {url} is unreachable ({reason}); is the daemon running?")]
	Unreachable { url: String, reason: String },
	#[error("IPFS timed out on {what} after {secs} s")]
	Timeout { what: String, secs: u64 },
	#[error("IPFS RPC {endpoint} answered {status}: {message}")]
	Rpc { endpoint: String, status: u16, message: String },
	#[error("{cid} is larger than the {max_bytes} bytes expected of it")]
	TooLarge { cid: String, max_bytes: usize },
	#[error("{0:?} is not a bare CID (paths and names are not content-addressed)")]
	NotACid(String),
	#[error("IPFS RPC {endpoint}: unexpected answer: {answer}")]
	Answer { endpoint: String, answer: String },
}

/// The RPCs a failed exchange may repeat: their effect is the same done once or twice (an `add`
/// of the same bytes gives the same CID; pinning a pinned CID changes nothing; the rest read).
/// One that is not (`pin/rm` would answer "not pinned" the second time) must not be added here.
const REPEATABLE: &[&str] = &["version", "add", "cat", "pin/add", "pin/ls"];

/// A kubo-RPC client bound to one daemon.
#[derive(Clone, Debug)]
pub struct Ipfs {
	base: String,
	http: reqwest::Client,
	timeout: Duration,
}

impl Ipfs {
	/// `url` is the RPC address, e.g. `http://127.0.0.1:5001`. Every call is bounded by `timeout`
	/// (an unknown CID otherwise blocks until the client gives up).
	pub fn new(url: &str, timeout: Duration) -> Self {
		// js-ipfs (Node.js) closes a keep-alive connection after 5 idle seconds; a request sent on
		// it at that moment fails. Idle connections are dropped before the server's deadline, and
		// `send` retries once on a fresh connection for what still races.
		let http = reqwest::Client::builder()
			.pool_idle_timeout(Duration::from_secs(3))
			.build()
			.unwrap_or_default();
		Self { base: url.trim_end_matches('/').to_string(), http, timeout }
	}

	pub fn url(&self) -> &str {
		&self.base
	}

	/// The same daemon, with calls bounded by `timeout` instead.
	pub fn with_timeout(&self, timeout: Duration) -> Self {
		Self { timeout, ..self.clone() }
	}

	async fn call(
		&self,
		endpoint: &str,
		query: &[(&str, &str)],
		form: Option<&(dyn Fn() -> Form + Sync)>,
	) -> Result<Vec<u8>, StorageError> {
		let what = format!(
			"{endpoint} {}",
			query.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(" ")
		);
		let transport = |e| self.transport_error(e, endpoint, &what);
		let response =
			self.send(endpoint, query, || form.as_ref().map(|f| f())).await.map_err(transport)?;
		let status = response.status();
		let body = response.bytes().await.map_err(transport)?;
		if !status.is_success() {
			let message = serde_json::from_slice::<Value>(&body)
				.ok()
				.and_then(|v| v.get("Message").and_then(Value::as_str).map(str::to_string))
				.unwrap_or_else(|| String::from_utf8_lossy(&body).into_owned());
			// `pin/ls` of an unpinned CID is an answer, not a failure.
			if !(endpoint == "pin/ls" && message.contains("not pinned")) {
				count_error(endpoint);
			}
			return Err(StorageError::Rpc {
				endpoint: endpoint.into(),
				status: status.as_u16(),
				message,
			});
		}
		Ok(body.to_vec())
	}

	/// Posts to `endpoint`, once more on a fresh connection if the request could not be sent or
	/// its connection dropped before an answer (a keep-alive connection closed under it, a
	/// refused connect while the daemon restarts) and the endpoint is one that may be repeated
	/// ([`REPEATABLE`]). The retry gets what is left of `timeout`, so the whole call stays within
	/// it; a timeout is not repeated.
	async fn send(
		&self,
		endpoint: &str,
		query: &[(&str, &str)],
		form: impl Fn() -> Option<Form>,
	) -> Result<reqwest::Response, reqwest::Error> {
		let url = format!("{}/api/v0/{endpoint}", self.base);
		let request = |timeout: Duration| {
			let request = self.http.post(&url).query(query).timeout(timeout);
			match form() {
				Some(form) => request.multipart(form),
				None => request,
			}
		};
		let start = std::time::Instant::now();
		match request(self.timeout).send().await {
			Err(e)
				if !e.is_timeout()
					&& (e.is_request() || e.is_connect())
					&& REPEATABLE.contains(&endpoint) =>
			{
				let pause = Duration::from_millis(200);
				let left = self.timeout.saturating_sub(start.elapsed() + pause);
				if left < Duration::from_millis(500) {
					return Err(e);
				}
				tracing::debug!(endpoint, error = %error_chain(&e), "IPFS request not answered; retrying once");
				tokio::time::sleep(pause).await;
				request(left).send().await
			}
			result => result,
		}
	}

	/// A failed exchange with the daemon (counted for operators), as a [`StorageError`].
	fn transport_error(&self, e: reqwest::Error, endpoint: &str, what: &str) -> StorageError {
		count_error(endpoint);
		if e.is_timeout() {
			StorageError::Timeout { what: what.to_string(), secs: self.timeout.as_secs() }
		} else {
			StorageError::Unreachable { url: self.base.clone(), reason: error_chain(&e) }
		}
	}

	fn json(endpoint: &str, body: &[u8]) -> Result<Value, StorageError> {
		serde_json::from_slice(body).map_err(|_| StorageError::Answer {
			endpoint: endpoint.into(),
			answer: String::from_utf8_lossy(body).chars().take(200).collect(),
		})
	}

	/// The daemon's version string (a liveness check).
	pub async fn version(&self) -> Result<String, StorageError> {
		let body = self.call("version", &[], None).await?;
		let v = Self::json("version", &body)?;
		v.get("Version")
			.and_then(Value::as_str)
			.map(str::to_string)
			.ok_or(StorageError::Answer { endpoint: "version".into(), answer: v.to_string() })
	}

	/// Adds `bytes` and returns its CID (CIDv0, the daemon's default). With `pin` the daemon keeps
	/// it; with `only_hash` it only computes the CID and stores nothing.
	pub async fn add(
		&self,
		bytes: Vec<u8>,
		pin: bool,
		only_hash: bool,
	) -> Result<String, StorageError> {
		// js-ipfs refuses a part without a content type.
		// Shared, so that a retried request does not copy a layer's bytes again.
		let bytes = bytes::Bytes::from(bytes);
		let form = || {
			let body = reqwest::Body::from(bytes.clone());
			let part = Part::stream_with_length(body, bytes.len() as u64)
				.file_name("blob")
				.mime_str("application/octet-stream")
				.expect("a valid MIME type");
			Form::new().part("file", part)
		};
		let query = [
			("pin", if pin { "true" } else { "false" }),
			("only-hash", if only_hash { "true" } else { "false" }),
		];
		let body = self.call("add", &query, Some(&form)).await?;
		let v = Self::json("add", &body)?;
		v.get("Hash")
			.and_then(Value::as_str)
			.map(str::to_string)
			.ok_or(StorageError::Answer { endpoint: "add".into(), answer: v.to_string() })
	}

	/// The bytes under `cid`, at most `max_bytes` (a CID on chain can name any amount of data;
	/// reading stops, with an error, past what the caller expects). Only a bare CID is accepted:
	/// a path (`/ipns/…`, DNSLink) names content that can change, and on-chain references must
	/// be immutable.
	pub async fn cat(&self, cid: &str, max_bytes: usize) -> Result<Vec<u8>, StorageError> {
		if !is_bare_cid(cid) {
			return Err(StorageError::NotACid(cid.chars().take(80).collect()));
		}
		let what = format!("cat {cid}");
		let mut response = self
			.send("cat", &[("arg", cid)], || None)
			.await
			.map_err(|e| self.transport_error(e, "cat", &what))?;
		if !response.status().is_success() {
			count_error("cat");
			let status = response.status().as_u16();
			let body = response.bytes().await.unwrap_or_default();
			return Err(StorageError::Rpc {
				endpoint: "cat".into(),
				status,
				message: String::from_utf8_lossy(&body).chars().take(200).collect(),
			});
		}
		let mut out = Vec::new();
		while let Some(chunk) =
			response.chunk().await.map_err(|e| self.transport_error(e, "cat", &what))?
		{
			if out.len() + chunk.len() > max_bytes {
				return Err(StorageError::TooLarge { cid: cid.into(), max_bytes });
			}
			out.extend_from_slice(&chunk);
		}
		Ok(out)
	}

	pub async fn pin_add(&self, cid: &str) -> Result<(), StorageError> {
		self.call("pin/add", &[("arg", cid)], None).await.map(|_| ())
	}

	/// Whether `cid` is pinned on this daemon.
	pub async fn is_pinned(&self, cid: &str) -> Result<bool, StorageError> {
		match self.call("pin/ls", &[("arg", cid)], None).await {
			Ok(body) => Ok(Self::json("pin/ls", &body)?
				.get("Keys")
				.and_then(Value::as_object)
				.is_some_and(|k| !k.is_empty())),
			// Both daemons answer 500 "not pinned" for a CID they hold unpinned or not at all.
			Err(StorageError::Rpc { message, .. }) if message.contains("not pinned") => Ok(false),
			Err(e) => Err(e),
		}
	}
}

/// `e` with its causes (reqwest's own message omits them: \"error sending request\" alone does not
/// say whether the connection was refused, reset or closed).
fn error_chain(e: &dyn std::error::Error) -> String {
	let mut out = e.to_string();
	let mut source = e.source();
	while let Some(cause) = source {
		out.push_str(": ");
		out.push_str(&cause.to_string());
		source = cause.source();
	}
	out
}

/// Failed calls are counted for operators (`blyan_worker_ipfs_errors_total`).
fn count_error(endpoint: &str) {
	crate::metrics::metrics().ipfs_errors.with_label_values(&[endpoint]).inc();
}

/// A CIDv0 (`Qm…`, base58) or a multibase CIDv1 (`b…`, base32; `z…`, base58): letters and digits
/// only, of a plausible length.
pub fn is_bare_cid(cid: &str) -> bool {
	(10..=128).contains(&cid.len()) && cid.bytes().all(|b| b.is_ascii_alphanumeric())
}

#[cfg(test)]
mod tests {
	use super::*;
	use tokio::io::{AsyncReadExt, AsyncWriteExt};
	use tokio::net::TcpListener;

	/// A daemon that hangs up on the first `drops` connections without answering (as js-ipfs does
	/// to a keep-alive connection it times out just as a request arrives), then answers `version`.
	async fn flaky_daemon(drops: usize) -> (String, tokio::task::JoinHandle<usize>) {
		let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
		let url = format!("http://{}", listener.local_addr().unwrap());
		let server = tokio::spawn(async move {
			let mut accepted = 0;
			loop {
				let Ok(Ok((mut socket, _))) =
					tokio::time::timeout(Duration::from_secs(2), listener.accept()).await
				else {
					return accepted;
				};
				accepted += 1;
				let mut request = vec![0u8; 4096];
				let _ = socket.read(&mut request).await;
				if accepted <= drops {
					drop(socket);
					continue;
				}
				let body = r#"{"Version":"0.0.1-test"}"#;
				let answer = format!(
					"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
					body.len()
				);
				let _ = socket.write_all(answer.as_bytes()).await;
			}
		});
		(url, server)
	}

	#[tokio::test]
	async fn a_connection_dropped_before_the_answer_is_retried_once_on_a_fresh_one() {
		let (url, server) = flaky_daemon(1).await;
		let ipfs = Ipfs::new(&url, Duration::from_secs(5));
		assert_eq!(ipfs.version().await.unwrap(), "0.0.1-test");
		assert_eq!(server.await.unwrap(), 2, "one dropped connection, one answered");
	}

	#[tokio::test]
	async fn a_daemon_that_keeps_dropping_is_unreachable_with_the_cause_named() {
		let (url, server) = flaky_daemon(usize::MAX).await;
		let ipfs = Ipfs::new(&url, Duration::from_secs(5));
		match ipfs.version().await {
			Err(StorageError::Unreachable { reason, .. }) => {
				// reqwest's own message is only "error sending request for url (…)".
				assert!(
					reason.contains("error sending request") && reason.matches(": ").count() >= 1,
					"{reason}"
				);
			}
			other => panic!("expected Unreachable, got {other:?}"),
		}
		assert_eq!(server.await.unwrap(), 2, "the request was tried twice, no more");
	}

	#[tokio::test]
	async fn a_refused_connection_is_unreachable() {
		// A port just freed: nothing listens there.
		let port = TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap().port();
		let ipfs = Ipfs::new(&format!("http://127.0.0.1:{port}"), Duration::from_secs(5));
		assert!(matches!(ipfs.version().await, Err(StorageError::Unreachable { .. })));
	}
}
