//! LoRA against Hugging Face `peft` (PyTorch eager, float32): `tests/fixtures/lora_peft/` is a
//! rank-4 adapter on every projection as `peft` saved it, and `tests/fixtures/lora_parity.json`
//! what `peft` computes with it on the Qwen3 parity model (loss, logits, the gradient of every
//! adapter matrix); both written by `scripts/fixtures/lora-parity.py`. The base weights and the
//! adapter values come from [`hf::reference_values`]'s formula, so no base is committed.

use std::path::PathBuf;

use blyan_ml::{
	hf,
	lora::{self, LoraConfig, LoraTarget},
	model::ModelConfig,
	weights::{self, LayerTensors},
	CpuBackend,
};
use burn::{
	backend::Autodiff,
	tensor::{backend::Backend, Int, Tensor, TensorData},
};
use serde_json::Value;

type Ad = Autodiff<CpuBackend>;

fn fixtures() -> PathBuf {
	PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn fixture() -> Value {
	serde_json::from_slice(&std::fs::read(fixtures().join("lora_parity.json")).unwrap()).unwrap()
}

fn floats(v: &Value) -> Vec<f32> {
	v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect()
}

fn tokens<B: Backend>(f: &Value) -> Tensor<B, 2, Int> {
	let rows = f["tokens"].as_array().unwrap();
	let values: Vec<i64> = rows
		.iter()
		.flat_map(|r| r.as_array().unwrap().iter().map(|t| t.as_i64().unwrap()))
		.collect();
	let len = values.len() / rows.len();
	Tensor::from_data(TensorData::new(values, [rows.len(), len]), &Default::default())
}

/// The base model's config and layers, and the adapter as `peft` saved it, read by Blyan.
fn base_and_adapter(f: &Value) -> (ModelConfig, Vec<LayerTensors>, LoraConfig, Vec<LayerTensors>) {
	let config = hf::parse_config(f["config"].to_string().as_bytes()).unwrap();
	let (lora, adapters) = lora::load_peft(&fixtures().join("lora_peft"), &config).unwrap();
	(config.clone(), hf::reference_layers(&config), lora, adapters)
}

/// Max |difference| of `logits` `[batch, seq, vocab]` from the recorded spread and log-sum-exp.
fn logit_difference<B: Backend>(f: &Value, logits: Tensor<B, 3>) -> f32 {
	let [batch, seq, vocab] = logits.dims();
	let values: Vec<f32> = logits.into_data().convert::<f32>().into_vec().unwrap();
	let spread: Vec<usize> =
		f["spread"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as usize).collect();
	let mut worst = 0f32;
	for b in 0..batch {
		for s in 0..seq {
			let row = &values[(b * seq + s) * vocab..(b * seq + s + 1) * vocab];
			let recorded = &f["logits"][b][s];
			for (id, want) in spread.iter().zip(floats(&recorded["logits"])) {
				worst = worst.max((row[*id] - want).abs());
			}
			let max = row.iter().fold(f64::NEG_INFINITY, |m, v| m.max(*v as f64));
			let lse = max + row.iter().map(|v| (*v as f64 - max).exp()).sum::<f64>().ln();
			worst = worst.max((lse - recorded["logsumexp"].as_f64().unwrap()).abs() as f32);
		}
	}
	worst
}

#[test]
fn peft_s_adapter_file_reads_as_the_values_peft_was_given() {
	let f = fixture();
	let (config, _, lora, adapters) = base_and_adapter(&f);
	assert_eq!(
		lora,
		LoraConfig { rank: 4, alpha: 8, targets: LoraTarget::ALL.to_vec(), rslora: false }
	);
	assert_eq!(adapters.len(), config.num_hidden_layers);
	for t in adapters.iter().flatten() {
		let expected = hf::reference_values(&t.name, t.values.len());
		assert_eq!(t.values, expected, "{}", t.name);
	}
}

#[test]
fn forward_backward_and_merge_agree_with_peft() {
	let f = fixture();
	let (config, base, lora, adapters) = base_and_adapter(&f);
	let device = Default::default();
	let model = weights::import_layers::<Ad>(&config, &base, &device).unwrap();
	let model = lora::attach(model, &config, &lora, &adapters).unwrap();
	let ids = tokens::<Ad>(&f);
	let [batch, len] = ids.dims();

	// Logits of the inputs, as peft computed them.
	let inputs = ids.clone().slice([0..batch, 0..len - 1]);
	let logits = model.forward(inputs);
	let worst = logit_difference(&f, logits.clone());
	assert!(worst <= 1e-4, "max |logit difference| {worst}");

	// The loss and every adapter matrix's gradient.
	let loss = model.loss(ids);
	let value = loss.clone().into_scalar();
	let want = f["loss"].as_f64().unwrap() as f32;
	assert!((value - want).abs() <= 1e-5, "loss {value} vs {want}");
	let grads = loss.backward();
	let recorded = f["grads"].as_object().unwrap();
	assert_eq!(recorded.len(), 2 * lora.targets.len() * config.num_hidden_layers);
	let mut worst_grad = 0f32;
	for (block, layer) in model.layers.iter().enumerate() {
		for (target, adapter) in layer.adapters() {
			let adapter = adapter.as_ref().expect("every target adapted");
			for (matrix, param) in [("lora_A", &adapter.a), ("lora_B", &adapter.b)] {
				let name = format!("model.layers.{block}.{}.{matrix}.weight", target.path());
				// burn's `[in, rank]`/`[rank, out]` against peft's transposed layout.
				let grad = param.val().grad(&grads).expect("adapters are trained");
				let got: Vec<f32> =
					grad.transpose().into_data().convert::<f32>().into_vec().unwrap();
				let want = floats(&recorded[&name]["values"]);
				assert_eq!(got.len(), want.len(), "{name}");
				for (g, w) in got.iter().zip(&want) {
					worst_grad = worst_grad.max((g - w).abs() / w.abs().max(1e-2));
				}
			}
		}
		// The frozen base gets no gradient.
		assert!(layer.self_attn.q_proj.weight.val().grad(&grads).is_none());
	}
	assert!(worst_grad <= 1e-3, "max relative gradient difference {worst_grad}");
	println!("against peft: max |logit difference| {worst:.2e}, loss {value} vs {want}, max relative gradient difference {worst_grad:.2e}");

	// Merged into the base, the plain model gives peft's logits.
	let merged = lora::merge(&config, &lora, &base, &adapters).unwrap();
	let merged = weights::import_layers::<CpuBackend>(&config, &merged, &device).unwrap();
	let worst = logit_difference(
		&f,
		merged.forward(tokens::<CpuBackend>(&f).slice([0..batch, 0..len - 1])),
	);
	assert!(worst <= 1e-4, "merged: max |logit difference| {worst}");
}

#[test]
fn an_exported_adapter_is_peft_s_file_again() {
	let f = fixture();
	let (config, base, lora, adapters) = base_and_adapter(&f);
	let model = weights::import_layers::<CpuBackend>(&config, &base, &Default::default()).unwrap();
	let model = lora::attach(model, &config, &lora, &adapters).unwrap();
	let exported = lora::export_adapters(&model, &lora).unwrap();
	assert_eq!(exported, adapters);
	let dir = tempfile::tempdir().unwrap();
	lora::save_peft(dir.path(), &lora, &config, &exported, None).unwrap();
	assert_eq!(lora::load_peft(dir.path(), &config).unwrap(), (lora.clone(), adapters));
	// scripts/check-peft keeps the export for peft to load.
	if let Some(keep) = std::env::var_os("BLYAN_LORA_EXPORT_DIR") {
		lora::save_peft(keep.as_ref(), &lora, &config, &exported, Some("qwen3-parity")).unwrap();
	}
	// Same tensors, same names and bytes as peft wrote them (scripts/check-peft has peft itself
	// load such a directory).
	let read = |p: PathBuf| {
		let bytes = std::fs::read(p).unwrap();
		let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
		let mut names: Vec<(String, Vec<u8>)> =
			st.tensors().into_iter().map(|(n, v)| (n, v.data().to_vec())).collect();
		names.sort();
		names
	};
	assert_eq!(
		read(dir.path().join("adapter_model.safetensors")),
		read(fixtures().join("lora_peft/adapter_model.safetensors"))
	);
}
