//! Scalar activation functions shared by every backend, so all of them compute
//! the same formula (GELU uses the tanh approximation everywhere).

use crate::spec::Activation;

const SQRT_2_OVER_PI: f32 = 0.797_884_6;

#[inline(always)]
pub fn apply(act: Activation, x: f32) -> f32 {
    match act {
        Activation::Relu => x.max(0.0),
        Activation::Gelu => 0.5 * x * (1.0 + (SQRT_2_OVER_PI * (x + 0.044_715 * x * x * x)).tanh()),
        Activation::Sigmoid => 1.0 / (1.0 + (-x).exp()),
        Activation::Tanh => x.tanh(),
    }
}

/// Apply `act` in place to every element.
pub fn apply_slice(act: Activation, xs: &mut [f32]) {
    match act {
        // ReLU is the common case: keep it a tight, vectorisable loop.
        Activation::Relu => xs.iter_mut().for_each(|x| *x = x.max(0.0)),
        _ => xs.iter_mut().for_each(|x| *x = apply(act, *x)),
    }
}

pub fn name(act: Activation) -> &'static str {
    match act {
        Activation::Relu => "relu",
        Activation::Gelu => "gelu",
        Activation::Sigmoid => "sigmoid",
        Activation::Tanh => "tanh",
    }
}
