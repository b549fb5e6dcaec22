//! The learning itself, on the CPU backend: real training lowers the loss, runs are bit-exact,
//! weights survive their on-chain/IPFS form unchanged.

use blyan_worker::ml::{
	self, data,
	model::ModelConfig,
	train::{score, Hyperparams},
	weights::{self, decode_layer, encode_layer, layer_root, weight_root},
	TrainDevice,
};

fn hp() -> Hyperparams {
	Hyperparams {
		steps: 30,
		batch_size: 8,
		seq_len: 48,
		learning_rate: 3e-3,
		weight_decay: 0.0,
		eval_batches: 8,
		schedule: Default::default(),
	}
}

fn roots(layers: &[weights::LayerTensors]) -> Vec<[u8; 32]> {
	layers.iter().map(layer_root).collect()
}

#[test]
fn training_lowers_validation_loss_and_is_bit_exact() {
	let config = ModelConfig::tiny();
	let base = ml::init_layers(&config, 7);
	let train = data::encode(&data::generate_corpus(1, 64 * 1024));
	let validation = data::encode(&data::generate_corpus(2, 16 * 1024));

	let mut losses = Vec::new();
	let trained = ml::train_layers(&config, &base, &train, &hp(), 42, TrainDevice::Cpu, |_, l| {
		losses.push(l)
	})
	.unwrap();
	let again =
		ml::train_layers(&config, &base, &train, &hp(), 42, TrainDevice::Cpu, |_, _| {}).unwrap();
	assert_eq!(roots(&trained), roots(&again), "two runs with the same seed differ");

	let before = ml::evaluate_layers(&config, &base, &validation, &hp()).unwrap().unwrap();
	let after = ml::evaluate_layers(&config, &trained, &validation, &hp()).unwrap().unwrap();
	let after_again = ml::evaluate_layers(&config, &again, &validation, &hp()).unwrap().unwrap();
	assert_eq!(score(after), score(after_again));
	assert!(after < before * 0.9, "validation loss {before} → {after}: no real improvement");
	assert!(
		losses.last().unwrap() < losses.first().unwrap(),
		"training loss did not fall: {losses:?}"
	);
	// A different seed trains differently.
	let other =
		ml::train_layers(&config, &base, &train, &hp(), 43, TrainDevice::Cpu, |_, _| {}).unwrap();
	assert_ne!(roots(&trained), roots(&other));
}

#[test]
fn layers_round_trip_through_safetensors_and_roots_bind_every_value() {
	let config = ModelConfig::tiny();
	let layers = ml::init_layers(&config, 3);
	assert_eq!(layers.len(), config.layer_count());
	for (i, layer) in layers.iter().enumerate() {
		let bytes = encode_layer(layer);
		assert_eq!(encode_layer(layer), bytes, "encoding is deterministic");
		let decoded = decode_layer(i, &bytes).unwrap();
		assert_eq!(&decoded, layer);
		weights::check_layout(&config, i, &decoded).unwrap();
	}
	let mut tampered = layers[1].clone();
	tampered[0].values[0] += 1e-6;
	assert_ne!(layer_root(&tampered), layer_root(&layers[1]));
	assert_ne!(weight_root(&roots(&layers)), weight_root(&roots(&ml::init_layers(&config, 4))));
	// Loading and exporting again changes nothing.
	let device = Default::default();
	let model = weights::import_layers::<ml::CpuBackend>(&config, &layers, &device).unwrap();
	assert_eq!(roots(&weights::export_layers(&model)), roots(&layers));
}

#[test]
fn malformed_layers_are_errors_not_panics() {
	let config = ModelConfig::tiny();
	assert!(decode_layer(0, b"not safetensors").is_err());
	let layers = ml::init_layers(&config, 3);
	let wrong_layer = decode_layer(0, &encode_layer(&layers[1])).unwrap();
	assert!(weights::check_layout(&config, 0, &wrong_layer).is_err());
	assert!(weights::import_layers::<ml::CpuBackend>(&config, &layers[..2], &Default::default())
		.is_err());
	let mut bad = ModelConfig::tiny();
	bad.num_key_value_heads = 3;
	assert!(bad.validate().is_err());
	let hp = Hyperparams { steps: 0, batch_size: 1, seq_len: 8, ..Hyperparams::default() };
	assert_eq!(hp.to_params().unwrap_err(), "hyper-parameters: steps must be in 1..=1000000");
	let hp = Hyperparams { learning_rate: f64::NAN, ..Hyperparams::default() };
	assert!(hp.to_params().is_err());
	// Rates go on chain in whole 10⁻⁹: a finer one is refused, not silently rounded.
	let hp = Hyperparams { weight_decay: 1e-10, ..Hyperparams::default() };
	assert_eq!(
		hp.to_params().unwrap_err(),
		"hyper-parameters: weight_decay must be a multiple of 1e-9"
	);
	let hp = Hyperparams { learning_rate: 3e-4, weight_decay: 0.01, ..Hyperparams::default() };
	let back = Hyperparams::from(&hp.to_params().unwrap());
	assert_eq!((back.learning_rate.to_bits(), back.weight_decay), (3e-4f64.to_bits(), 0.01f32));
}

#[test]
fn a_loss_that_is_not_a_finite_number_scores_invalid_not_perfect() {
	use blyan_worker::ml::train::INVALID_SCORE;
	assert_eq!(score(f64::NAN), INVALID_SCORE);
	assert_eq!(score(f64::INFINITY), INVALID_SCORE);
	assert_eq!(score(-1.0), INVALID_SCORE);
	assert_eq!(score(1.5), 1_500_000_000);
	// Hyper-parameters that do not fit the model or the data are refused up front.
	let config = ModelConfig::tiny();
	let mut hp = hp();
	hp.seq_len = config.max_position_embeddings + 1;
	assert!(hp.check_against(&config, None).is_err());
	assert!(self::hp().check_against(&config, Some(10)).is_err());
	assert!(self::hp().check_against(&config, Some(10_000)).is_ok());
}

#[test]
fn only_bare_cids_are_fetched() {
	use blyan_worker::storage::is_bare_cid;
	assert!(is_bare_cid("QmUrE2oLBVzNw435PZk1ktRQe2NB5xo2Pr3P38fGALixff"));
	assert!(is_bare_cid("bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi"));
	assert!(!is_bare_cid("/ipns/k51qzi5uqu5dlvj2baxnqndepeb86cbk3ng7n3i46uzyxzyqj2xjonzllnv0v8"));
	assert!(!is_bare_cid("example.com"));
	assert!(!is_bare_cid(""));
}
