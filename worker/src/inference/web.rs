//! The web app (`web/`, built to `web/dist` by `npm run build`) as a gateway serves it: its files
//! at `/`, where to reach the chain at `/web/config.json`, and what the gateway's router measured
//! of the stages at `/web/stages.json`. The app reads everything else from the node (over its
//! WebSocket RPC, with `@polkadot/api`) and talks to this gateway's OpenAI API, same origin.

use std::{
	path::{Component, Path, PathBuf},
	sync::Arc,
};

use axum::{
	extract::State,
	http::{header, StatusCode, Uri},
	response::{IntoResponse, Response},
	routing::get,
	Json, Router,
};
use serde_json::json;

use super::chain_router::ChainRouter;

/// What the gateway tells its web app.
pub struct WebApp {
	/// The built app: `index.html` and the files it loads.
	pub dir: PathBuf,
	/// The node's WebSocket RPC as a browser reaches it.
	pub node: String,
	/// The version this gateway serves.
	pub version: u64,
	/// Whether the OpenAI API wants a bearer key.
	pub needs_key: bool,
	pub router: Arc<ChainRouter>,
}

/// Routes of the web app; merged with the gateway's API (whose paths it does not use).
pub fn router(app: Arc<WebApp>) -> Router {
	Router::new()
		.route("/web/config.json", get(config))
		.route("/web/stages.json", get(stages))
		.fallback(get(file))
		.with_state(app)
}

async fn config(State(app): State<Arc<WebApp>>) -> Response {
	Json(json!({
		"node": app.node,
		"version": app.version,
		"model": format!("blyan-{}", app.version),
		"needs_key": app.needs_key,
	}))
	.into_response()
}

async fn stages(State(app): State<Arc<WebApp>>) -> Response {
	let (endpoints, banned) = app.router.measurements();
	let banned: Vec<String> = banned.iter().map(|a| a.to_string()).collect();
	Json(json!({ "endpoints": endpoints, "banned": banned })).into_response()
}

/// A file of the app, `index.html` at `/` (the app routes by the URL's `#fragment`, so no other
/// path needs it: an unknown path, the API's included, stays a 404).
async fn file(State(app): State<Arc<WebApp>>, uri: Uri) -> Response {
	let Some(relative) = safe_relative(uri.path()) else {
		return (StatusCode::NOT_FOUND, "not found").into_response();
	};
	let path = if relative.as_os_str().is_empty() {
		app.dir.join("index.html")
	} else {
		app.dir.join(&relative)
	};
	match tokio::fs::read(&path).await {
		Ok(bytes) => ([(header::CONTENT_TYPE, content_type(&path))], bytes).into_response(),
		Err(e)
			if matches!(
				e.kind(),
				std::io::ErrorKind::NotFound
					| std::io::ErrorKind::IsADirectory
					| std::io::ErrorKind::NotADirectory
			) =>
		{
			(StatusCode::NOT_FOUND, "not found").into_response()
		}
		Err(e) => {
			tracing::warn!("web app file {}: {e}", path.display());
			(StatusCode::INTERNAL_SERVER_ERROR, "cannot read the file").into_response()
		}
	}
}

/// The request path as a path inside the app's directory: only plain names (no `..`, no root,
/// no hidden files), so nothing outside it is ever read.
fn safe_relative(path: &str) -> Option<PathBuf> {
	let relative = Path::new(path.trim_start_matches('/'));
	let mut out = PathBuf::new();
	for part in relative.components() {
		match part {
			Component::Normal(name) if !name.to_string_lossy().starts_with('.') => out.push(name),
			_ => return None,
		}
	}
	Some(out)
}

fn content_type(path: &Path) -> &'static str {
	match path.extension().and_then(|e| e.to_str()) {
		Some("html") => "text/html; charset=utf-8",
		Some("js") => "text/javascript; charset=utf-8",
		Some("css") => "text/css; charset=utf-8",
		Some("json") | Some("map") => "application/json",
		Some("svg") => "image/svg+xml",
		Some("png") => "image/png",
		Some("ico") => "image/x-icon",
		Some("wasm") => "application/wasm",
		_ => "application/octet-stream",
	}
}

#[cfg(test)]
mod tests {
	use super::safe_relative;
	use std::path::PathBuf;

	#[test]
	fn only_plain_names_inside_the_app_are_served() {
		assert_eq!(safe_relative("/"), Some(PathBuf::new()));
		assert_eq!(safe_relative("/app.js"), Some(PathBuf::from("app.js")));
		assert_eq!(safe_relative("/assets/x.css"), Some(PathBuf::from("assets/x.css")));
		assert_eq!(safe_relative("/models"), Some(PathBuf::from("models")));
		assert_eq!(safe_relative("/../Cargo.toml"), None);
		assert_eq!(safe_relative("/a/../../etc/passwd"), None);
		assert_eq!(safe_relative("/.git/config"), None);
		assert_eq!(safe_relative("//etc/passwd"), Some(PathBuf::from("etc/passwd")));
	}
}
