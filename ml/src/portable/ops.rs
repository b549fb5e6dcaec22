//! The ops `PortableCpu` computes itself (see the module documentation of `portable`).

use burn_backend::{
	ops::{
		attention::attention_fallback, AttentionModuleOptions, DeformConv2dBackward,
		DeformConvOptions, MaxPool2dBackward, MaxPool2dWithIndices, ModuleOps, QTensorOps,
	},
	quantization::{QuantScheme, QuantizationParametersPrimitive},
	tensor::{BoolTensor, FloatTensor, IntTensor, QuantizedTensor},
	Scalar, TensorMetadata,
};
use burn_ndarray::NdArrayTensor;
use ndarray::{ArrayD, ArrayViewD, CowArray, IxDyn, Zip};

use super::{gemm, math, Inner, PortableCpu};

/// An f32 tensor's values, read in place: weights loaded from bytes are borrowed by burn-ndarray,
/// and taking them as an owned array would copy them on every use. Other dtypes are a bug here,
/// not bad input: the models are f32 throughout and `PortableCpu` declares f32 only.
fn f32_view(tensor: &NdArrayTensor) -> ArrayViewD<'_, f32> {
	match tensor {
		NdArrayTensor::F32(storage) => storage.view(),
		other => panic!("the portable CPU backend computes f32 only, got {:?}", other.dtype()),
	}
}

fn unary(tensor: NdArrayTensor, f: impl Fn(f32) -> f32) -> NdArrayTensor {
	match tensor {
		NdArrayTensor::F32(storage) if storage.is_unique() => {
			let mut array = storage.into_shared();
			array.mapv_inplace(f);
			NdArrayTensor::from(array)
		}
		// Shared (autodiff keeps inputs for the backward pass) or borrowed: one pass into a new
		// array, not a copy and then a pass over it.
		tensor => NdArrayTensor::from(f32_view(&tensor).map(|x| f(*x)).into_shared()),
	}
}

/// Applies `f` element-wise with numpy broadcasting (burn gives both operands the same rank).
fn binary(lhs: NdArrayTensor, rhs: NdArrayTensor, f: impl Fn(f32, f32) -> f32) -> NdArrayTensor {
	let (lhs, rhs) = (f32_view(&lhs), f32_view(&rhs));
	let shape: Vec<usize> =
		lhs.shape().iter().zip(rhs.shape()).map(|(a, b)| if *a == 1 { *b } else { *a }).collect();
	let (l, r) = (
		lhs.broadcast(IxDyn(&shape)).expect("broadcastable shapes"),
		rhs.broadcast(IxDyn(&shape)).expect("broadcastable shapes"),
	);
	let out: ArrayD<f32> = Zip::from(&l).and(&r).map_collect(|a, b| f(*a, *b));
	NdArrayTensor::from(out.into_shared())
}

pub fn float_matmul(
	lhs: FloatTensor<PortableCpu>,
	rhs: FloatTensor<PortableCpu>,
) -> FloatTensor<PortableCpu> {
	let (lhs, rhs) = (in_memory_order(f32_view(&lhs)), in_memory_order(f32_view(&rhs)));
	let (ls, rs) = (lhs.shape().to_vec(), rhs.shape().to_vec());
	let rank = ls.len();
	assert!(rank >= 2 && rs.len() == rank, "matmul of shapes {ls:?} and {rs:?}");
	let (m, k, n) = (ls[rank - 2], ls[rank - 1], rs[rank - 1]);
	assert_eq!(k, rs[rank - 2], "matmul of shapes {ls:?} and {rs:?}");
	// Batch dimensions broadcast (size 1 against size b).
	let batch: Vec<usize> = (0..rank - 2)
		.map(|d| {
			let (a, b) = (ls[d], rs[d]);
			assert!(a == b || a == 1 || b == 1, "matmul of shapes {ls:?} and {rs:?}");
			if a == 1 {
				b
			} else {
				a
			}
		})
		.collect();
	let batches: usize = batch.iter().product();
	let (a_data, b_data) = (memory(&lhs), memory(&rhs));
	let (a_strides, b_strides) = (strides(&lhs), strides(&rhs));
	let operands = |t: usize| {
		let (mut rest, mut a_offset, mut b_offset) = (t, 0, 0);
		for d in (0..rank - 2).rev() {
			let at = rest % batch[d];
			rest /= batch[d];
			if ls[d] > 1 {
				a_offset += at * a_strides[d];
			}
			if rs[d] > 1 {
				b_offset += at * b_strides[d];
			}
		}
		(
			gemm::Mat::strided(a_data, a_offset, a_strides[rank - 2], a_strides[rank - 1]),
			gemm::Mat::strided(b_data, b_offset, b_strides[rank - 2], b_strides[rank - 1]),
		)
	};
	let mut out = vec![0.0f32; batches * m * n];
	gemm::batched_matmul(&mut out, batches, m, k, n, operands);
	let mut shape = batch;
	shape.extend([m, n]);
	product(&shape, out)
}

/// A product's row-major values as a tensor of `shape`.
fn product(shape: &[usize], values: Vec<f32>) -> NdArrayTensor {
	NdArrayTensor::from(
		ArrayD::from_shape_vec(IxDyn(shape), values).expect("shape matches length").into_shared(),
	)
}

/// `x · weight (+ bias)` for `x` of shape `[.., d_in]` and `weight` `[d_in, d_out]`, the weight
/// read in place. burn's default first reshapes the weight to `x`'s rank, and burn-ndarray
/// reshapes a weight loaded from bytes by copying it: every weight copied on every forward pass
/// (most of a decoding step's time for a 0.6 B model). Same bits as that path: the leading
/// dimensions are rows of one product, and [`gemm`]'s result does not depend on how rows are
/// grouped.
pub fn linear(
	x: FloatTensor<PortableCpu>,
	weight: FloatTensor<PortableCpu>,
	bias: Option<FloatTensor<PortableCpu>>,
) -> FloatTensor<PortableCpu> {
	let x_view = f32_view(&x);
	let xs = x_view.shape().to_vec();
	let x_rows = x_view.as_standard_layout();
	let w = in_memory_order(f32_view(&weight));
	let ws = w.shape().to_vec();
	assert!(ws.len() == 2 && xs.last() == Some(&ws[0]), "linear of shapes {xs:?} and {ws:?}");
	let (k, n) = (ws[0], ws[1]);
	let m: usize = xs[..xs.len() - 1].iter().product();
	let w_strides = strides(&w);
	let a = gemm::Mat::row_major(x_rows.as_slice().expect("standard layout"), k);
	let b = gemm::Mat::strided(memory(&w), 0, w_strides[0], w_strides[1]);
	let mut out = vec![0.0f32; m * n];
	gemm::batched_matmul(&mut out, 1, m, k, n, |_| (a, b));
	let mut shape = xs;
	*shape.last_mut().expect("rank ≥ 1") = n;
	let rank = shape.len();
	let out = product(&shape, out);
	match bias {
		Some(bias) => {
			let mut bias_shape = vec![1; rank - 1];
			bias_shape.push(n);
			let bias = <Inner as burn_backend::ops::FloatTensorOps<Inner>>::float_reshape(
				bias,
				burn_std::Shape::from(bias_shape),
			);
			<Inner as burn_backend::ops::FloatTensorOps<Inner>>::float_add(out, bias)
		}
		None => out,
	}
}

/// `view` itself when its elements fill one slice of memory with non-negative strides (a weight,
/// a transpose, a permutation), so the product reads it in place; else a row-major copy.
fn in_memory_order(view: ArrayViewD<'_, f32>) -> CowArray<'_, f32, IxDyn> {
	if view.strides().iter().all(|s| *s >= 0) && view.as_slice_memory_order().is_some() {
		CowArray::from(view)
	} else {
		let values: Vec<f32> = view.iter().copied().collect();
		CowArray::from(ArrayD::from_shape_vec(view.raw_dim(), values).expect("same shape"))
	}
}

/// The slice [`in_memory_order`] guarantees; element 0 is its first (no negative strides).
fn memory<'a>(array: &'a CowArray<'_, f32, IxDyn>) -> &'a [f32] {
	array.as_slice_memory_order().expect("in memory order")
}

fn strides(array: &CowArray<'_, f32, IxDyn>) -> Vec<usize> {
	array.strides().iter().map(|s| *s as usize).collect()
}

/// `name(tensor)` applies `f` to every element.
macro_rules! unary_ops {
	($($name:ident => $f:path,)*) => {$(
		pub fn $name(tensor: FloatTensor<PortableCpu>) -> FloatTensor<PortableCpu> {
			unary(tensor, $f)
		}
	)*};
}

unary_ops! {
	float_exp => math::expf,
	float_log => libm::logf,
	float_log1p => libm::log1pf,
	float_sin => libm::sinf,
	float_cos => libm::cosf,
	float_tan => libm::tanf,
	float_tanh => libm::tanhf,
	float_sinh => libm::sinhf,
	float_cosh => libm::coshf,
	float_acos => libm::acosf,
	float_acosh => libm::acoshf,
	float_asin => libm::asinf,
	float_asinh => libm::asinhf,
	float_atan => libm::atanf,
	float_atanh => libm::atanhf,
	float_erf => libm::erff,
}

/// `name(lhs, rhs)` applies `f` element-wise, broadcasting.
macro_rules! binary_ops {
	($($name:ident => $f:path,)*) => {$(
		pub fn $name(lhs: FloatTensor<PortableCpu>, rhs: FloatTensor<PortableCpu>) -> FloatTensor<PortableCpu> {
			binary(lhs, rhs, $f)
		}
	)*};
}

binary_ops! {
	float_powf => libm::powf,
	float_atan2 => libm::atan2f,
}

pub fn float_powf_scalar_impl(
	tensor: FloatTensor<PortableCpu>,
	value: Scalar,
) -> FloatTensor<PortableCpu> {
	let exponent: f32 = value.elem();
	unary(tensor, move |x| libm::powf(x, exponent))
}

pub fn float_recip(tensor: FloatTensor<PortableCpu>) -> FloatTensor<PortableCpu> {
	// burn-ndarray may use an approximate vector reciprocal; a division is exact IEEE.
	unary(tensor, |x| 1.0 / x)
}

/// burn-ndarray's attention is burn's composed fallback too; composed here of the portable ops.
pub fn attention(
	query: FloatTensor<PortableCpu>,
	key: FloatTensor<PortableCpu>,
	value: FloatTensor<PortableCpu>,
	mask: Option<BoolTensor<PortableCpu>>,
	attn_bias: Option<FloatTensor<PortableCpu>>,
	options: AttentionModuleOptions,
) -> FloatTensor<PortableCpu> {
	attention_fallback::<PortableCpu>(query, key, value, mask, attn_bias, options)
}

// Convolution, pooling and quantization are burn-ndarray's (no Blyan model uses them); these
// only rewrap its results, whose structs are generic over the backend.

pub fn deform_conv2d_backward(
	x: FloatTensor<PortableCpu>,
	offset: FloatTensor<PortableCpu>,
	weight: FloatTensor<PortableCpu>,
	mask: Option<FloatTensor<PortableCpu>>,
	bias: Option<FloatTensor<PortableCpu>>,
	output_grad: FloatTensor<PortableCpu>,
	options: DeformConvOptions<2>,
) -> DeformConv2dBackward<PortableCpu> {
	let g = <Inner as ModuleOps<Inner>>::deform_conv2d_backward(
		x,
		offset,
		weight,
		mask,
		bias,
		output_grad,
		options,
	);
	DeformConv2dBackward::new(g.x_grad, g.offset_grad, g.weight_grad, g.mask_grad, g.bias_grad)
}

pub fn max_pool2d_with_indices(
	x: FloatTensor<PortableCpu>,
	kernel_size: [usize; 2],
	stride: [usize; 2],
	padding: [usize; 2],
	dilation: [usize; 2],
	ceil_mode: bool,
) -> MaxPool2dWithIndices<PortableCpu> {
	let out = <Inner as ModuleOps<Inner>>::max_pool2d_with_indices(
		x,
		kernel_size,
		stride,
		padding,
		dilation,
		ceil_mode,
	);
	MaxPool2dWithIndices::new(out.output, out.indices)
}

#[allow(clippy::too_many_arguments)]
pub fn max_pool2d_with_indices_backward(
	x: FloatTensor<PortableCpu>,
	kernel_size: [usize; 2],
	stride: [usize; 2],
	padding: [usize; 2],
	dilation: [usize; 2],
	ceil_mode: bool,
	output_grad: FloatTensor<PortableCpu>,
	indices: IntTensor<PortableCpu>,
) -> MaxPool2dBackward<PortableCpu> {
	let out = <Inner as ModuleOps<Inner>>::max_pool2d_with_indices_backward(
		x,
		kernel_size,
		stride,
		padding,
		dilation,
		ceil_mode,
		output_grad,
		indices,
	);
	MaxPool2dBackward::new(out.x_grad)
}

pub fn quantize(
	tensor: FloatTensor<PortableCpu>,
	scheme: &QuantScheme,
	qparams: QuantizationParametersPrimitive<PortableCpu>,
) -> QuantizedTensor<PortableCpu> {
	<Inner as QTensorOps<Inner>>::quantize(
		tensor,
		scheme,
		QuantizationParametersPrimitive { scales: qparams.scales },
	)
}
