// The subxt client in src/lib.rs is generated from metadata/blyan.scale by a proc macro, which
// cargo does not know reads that file: without this, a build of the worker with another feature
// set could reuse code generated from older metadata.
fn main() {
	println!("cargo:rerun-if-changed=metadata/blyan.scale");
}
